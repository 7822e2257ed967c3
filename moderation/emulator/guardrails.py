"""Content Moderation 2.0 (AI Guardrails, API version 2022-03-02) handlers of the emulator.

So far: the synchronous ``ImageModeration`` (aliyun-protocol.md §4.1-§4.2, Appendix A;
aliyun-api-reference.md §3.2). The image comes from ``imageUrl`` (downloaded here, with
``referer`` as the Referer header) or from ``ossBucketName``/``ossObjectName`` (read from the
emulator's ``oss_root``; ``ossRegionId`` is accepted, there is one region), goes through
the offline ``local`` provider, and is answered with the documented 2.0 body. Problems with
the request or the image are business errors: HTTP 200 with the code in ``Code`` (§4.3,
§8.2), in 2.0's own codes (api-reference §3.5: 404-407 for bad media; :func:`v2_error`
translates the shared download steps' §2.6 codes).
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import shutil
import socket
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests

from ..labels import rule_for
from ..providers import (
    Label,
    Media,
    MediaError,
    ModerationError,
    ModerationRequest,
    Result,
    get_provider,
)
from .app import Call, Reply, Routes
from .config import ENGINE_OPTIONS, EmulatorConfig

logger = logging.getLogger(__name__)

VERSION = "2022-03-02"
SCENES = ["porn", "qrcode", "ad"]  # what the local engine checks for a baseline service
URL_SCHEMES = ("http", "https")
MAX_REDIRECTS = 3
NO_RISK = "nonLabel"

# §2.6 / §4.3 business codes the image path produces.
BAD_REQUEST = 400
NOT_ALLOWED = 401  # also "parameter invalid(<name>)" in 2.0 examples (api-reference §3.5)
FORBIDDEN = 403
NOT_FOUND = 404
DOWNLOAD_FAILED = 480
ALGO_FAILED = 586
TOO_LARGE = 589
BAD_FORMAT = 590
DOWNLOAD_TIMEOUT = 592

#: 1.0-family codes of the shared download and media steps -> 2.0's own (api-reference §3.5:
#: 404 not downloadable, 405 download timed out, 406 too large, 407 unsupported format,
#: 500 internal error).
V2_CODES = {
    DOWNLOAD_FAILED: NOT_FOUND,
    FORBIDDEN: NOT_FOUND,
    DOWNLOAD_TIMEOUT: 405,
    TOO_LARGE: 406,
    BAD_FORMAT: 407,
    ALGO_FAILED: 500,
}
CHUNK_BYTES = 64 * 1024

# local-provider MediaError codes that mean "too large"; every other one is a format problem.
_TOO_LARGE_CODES = frozenset({"file_too_large", "image_too_large"})


class BusinessError(Exception):
    """A 2.0 business error: answered with HTTP 200 and ``Code`` in the body (§8.2)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(name: str) -> BusinessError:
    """The documented 2.0 wording for a bad parameter: ``parameter invalid(imageUrl)``."""
    return BusinessError(NOT_ALLOWED, f"parameter invalid({name})")


# --- the operation -------------------------------------------------------------------------


def image_moderation(call: Call) -> Reply:
    """``ImageModeration``: ``Service`` + ``ServiceParameters`` (a JSON string) in the form
    body, as the SDK sends them (§4.1); answers ``Code``/``Msg``/``RequestId``/``Data``."""
    try:
        if not call.params.get("Service"):
            raise BusinessError(BAD_REQUEST, "Service is required")
        parameters = _service_parameters(call.params.get("ServiceParameters"))
        data = load_image(parameters, call.config)
        data_id = _optional_str(parameters, "dataId")
        result = moderate(data, data_id)
    except BusinessError as exc:
        exc = v2_error(exc)
        return Reply(200, {"Code": exc.code, "Msg": exc.message, "RequestId": call.request_id})
    body = {
        "Code": 200,
        "Data": image_data(result, data_id),
        "Msg": "OK",
        "RequestId": call.request_id,
    }
    return Reply(200, body)


ROUTES: Routes = {("ImageModeration", VERSION): image_moderation}


def _service_parameters(raw: str | None) -> dict[str, Any]:
    """``ServiceParameters`` is an opaque string holding a JSON object (§4.1)."""
    if not raw:
        raise BusinessError(BAD_REQUEST, "ServiceParameters is required")
    try:
        parameters = json.loads(raw)
    except ValueError:
        raise _invalid("ServiceParameters") from None
    if not isinstance(parameters, dict):
        raise _invalid("ServiceParameters")
    return parameters


def _optional_str(parameters: dict[str, Any], name: str) -> str | None:
    value = parameters.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(name)
    return value


# --- getting the image ---------------------------------------------------------------------


def load_image(parameters: dict[str, Any], config: EmulatorConfig) -> bytes:
    """The image bytes from ``imageUrl``, else from ``ossBucketName``+``ossObjectName``
    (api-reference §3.2: one of the two is required)."""
    url = _optional_str(parameters, "imageUrl")
    if url:
        return fetch_url_v2(url, _optional_str(parameters, "referer"), config)
    bucket = _optional_str(parameters, "ossBucketName")
    key = _optional_str(parameters, "ossObjectName")
    _optional_str(parameters, "ossRegionId")  # type-checked; the emulator has one region
    if bucket or key:
        if not bucket:
            raise _invalid("ossBucketName")
        if not key:
            raise _invalid("ossObjectName")
        return read_oss_object(key, config)
    raise BusinessError(BAD_REQUEST, "imageUrl or ossBucketName/ossObjectName is required")


def oss_path(key: str, config: EmulatorConfig, max_bytes: int, what: str = "image") -> Path:
    """The file of ``<oss_root>/<key>`` for every bucket; keys that leave ``oss_root``
    (``..``, absolute paths, symlinks out) are invalid parameters, never files outside the
    root; a missing object is 404, one above ``max_bytes`` 589."""
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or "\\" in key or ".." in parts:
        raise _invalid("ossObjectName")
    root = Path(config.oss_root).resolve()
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root):
        raise _invalid("ossObjectName")
    if not path.is_file():
        raise BusinessError(NOT_FOUND, f"the OSS object {key!r} does not exist")
    if path.stat().st_size > max_bytes:
        raise BusinessError(TOO_LARGE, f"the {what} is larger than {max_bytes} bytes")
    return path


def read_oss_object(key: str, config: EmulatorConfig) -> bytes:
    """An image from the OSS stand-in (at most ``config.max_image_bytes``)."""
    return oss_path(key, config, config.max_image_bytes).read_bytes()


def copy_oss_object(key: str, config: EmulatorConfig, out: BinaryIO, max_bytes: int,
                    what: str = "video") -> None:
    """Stream an object of the OSS stand-in into ``out``, never whole in memory."""
    with oss_path(key, config, max_bytes, what).open("rb") as source:
        shutil.copyfileobj(source, out, CHUNK_BYTES)


def download(url: str, referer: str | None, config: EmulatorConfig, out: BinaryIO, *,
             max_bytes: int, what: str = "image") -> None:
    """Download ``url`` into ``out`` like the service does (api-reference §3.2): chunk by
    chunk, at most ``max_bytes``, ``config.download_timeout`` per connect and read.
    Redirects are followed by hand so each hop's address is checked. Failures are §2.6
    codes whose messages name ``what`` (image or video) and never carry exception text."""
    session = requests.Session()
    session.trust_env = False  # never send loopback downloads through an HTTP(S)_PROXY
    headers = {"Referer": referer} if referer else {}
    try:
        for _ in range(MAX_REDIRECTS + 1):
            _check_url(url, config)
            response = session.get(
                url,
                headers=headers,
                timeout=config.download_timeout,
                stream=True,
                allow_redirects=False,
            )
            if not response.is_redirect:
                with response:
                    _copy_body(response, out, max_bytes, what)
                return
            response.close()
            url = urljoin(url, response.headers["location"])
        raise BusinessError(DOWNLOAD_FAILED, f"more than {MAX_REDIRECTS} redirects")
    except requests.Timeout:
        raise BusinessError(DOWNLOAD_TIMEOUT, f"the {what} download timed out") from None
    except requests.RequestException as exc:
        logger.info("emulator download of %s failed: %r", url, exc)
        raise BusinessError(DOWNLOAD_FAILED, f"the {what} could not be downloaded") from None
    finally:
        session.close()


def fetch_url(url: str, referer: str | None, config: EmulatorConfig) -> bytes:
    """An image download (at most ``config.max_image_bytes``) as bytes; see :func:`download`."""
    buffer = io.BytesIO()
    download(url, referer, config, buffer, max_bytes=config.max_image_bytes)
    return buffer.getvalue()


def download_v2(url: str, referer: str | None, config: EmulatorConfig, out: BinaryIO, *,
                max_bytes: int, what: str = "image") -> None:
    """:func:`download` with a refused download (HTTP 401/403, e.g. hot-link protection
    without the right ``referer``) worded as 2.0's "could not be downloaded": 2.0 uses 403
    for "QPS exceeded", which clients retry as throttling; 1.0 (``green``) keeps 403
    FORBIDDEN for the same refusal (§2.6). Other codes are turned into 2.0's by
    :func:`v2_error` where the answer is made."""
    try:
        download(url, referer, config, out, max_bytes=max_bytes, what=what)
    except BusinessError as exc:
        if exc.code != FORBIDDEN:
            raise
        raise BusinessError(NOT_FOUND, f"{exc.message}; hot-link protection? send referer"
                            ) from None


def fetch_url_v2(url: str, referer: str | None, config: EmulatorConfig) -> bytes:
    """:func:`fetch_url` with :func:`download_v2`'s wording."""
    buffer = io.BytesIO()
    download_v2(url, referer, config, buffer, max_bytes=config.max_image_bytes)
    return buffer.getvalue()


def v2_error(exc: BusinessError) -> BusinessError:
    """``exc`` in 2.0's own codes (api-reference §3.5): the download and media steps speak
    1.0's family (§2.6), which 2.0 does not use for bad media."""
    code = V2_CODES.get(exc.code, exc.code)
    return exc if code == exc.code else BusinessError(code, exc.message)


def _check_url(url: str, config: EmulatorConfig) -> None:
    """http(s) only, and only public addresses (plus loopback/private when the config allows)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _invalid("imageUrl") from None
    if parts.scheme.lower() not in URL_SCHEMES or not parts.hostname:
        raise _invalid("imageUrl")
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise BusinessError(DOWNLOAD_FAILED, f"cannot resolve {parts.hostname!r}") from None
    for info in infos:
        if not _address_allowed(ipaddress.ip_address(info[4][0]), config):
            raise BusinessError(NOT_ALLOWED, f"{parts.hostname!r} is not a public address")


def _address_allowed(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, config: EmulatorConfig
) -> bool:
    if address.is_global:
        return True
    if address.is_loopback:
        return config.allow_loopback_urls
    return config.allow_private_urls and address.is_private


def _copy_body(response: requests.Response, out: BinaryIO, max_bytes: int, what: str) -> None:
    """Write the body of a 200 to ``out``, at most ``max_bytes``; HTTP errors become §2.6
    codes."""
    status = response.status_code
    if status in (404, 410):
        raise BusinessError(NOT_FOUND, f"the {what} was not found (HTTP {status})")
    if status in (401, 403):
        raise BusinessError(FORBIDDEN, f"the {what} URL is not reachable (HTTP {status})")
    if status != 200:
        raise BusinessError(DOWNLOAD_FAILED, f"the {what} download failed (HTTP {status})")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BusinessError(TOO_LARGE, f"the {what} is larger than {max_bytes} bytes")
    total = 0
    for chunk in response.iter_content(CHUNK_BYTES):
        total += len(chunk)
        if total > max_bytes:
            raise BusinessError(TOO_LARGE, f"the {what} is larger than {max_bytes} bytes")
        out.write(chunk)


# --- moderating and answering --------------------------------------------------------------


def moderate(data: bytes, data_id: str | None) -> Result:
    """Run the bytes through the offline ``local`` provider; its errors become §2.6 codes."""
    media = Media(
        name=data_id or "image", kind="image", opener=partial(io.BytesIO, data), size=len(data)
    )
    try:
        # In this thread (like the green 1.0 handlers): an animated image would otherwise
        # start the engine's pool of worker processes while the client's read timeout runs.
        return get_provider("local").submit(
            media, ModerationRequest(scenes=list(SCENES), data_id=data_id or "",
                                     options=dict(ENGINE_OPTIONS))
        )
    except MediaError as exc:
        code = TOO_LARGE if exc.code in _TOO_LARGE_CODES else BAD_FORMAT
        raise BusinessError(code, exc.message) from None
    except ModerationError as exc:
        raise BusinessError(ALGO_FAILED, exc.message) from None


def image_data(result: Result, data_id: str | None) -> dict[str, Any]:
    """``Data`` of Appendix A: ``DataId`` (echoed), ``Result[]``, ``RiskLevel`` (the worst
    label's level, ``none`` for ``nonLabel``; api-reference §3.7)."""
    items = [result_item(label) for label in result.labels] or [result_item(Label(NO_RISK))]
    data: dict[str, Any] = {"Result": items, "RiskLevel": result.risk_level}
    if data_id is not None:
        data["DataId"] = data_id
    return data


def result_item(label: Label) -> dict[str, Any]:
    """One ``Result[]`` element. ``Confidence`` (0-100, 2 decimals) is absent for
    ``nonLabel`` (§4.2); ``Description`` is the human text of the label table."""
    item: dict[str, Any] = {"Label": label.label}
    if label.label != NO_RISK:
        item["Confidence"] = round(float(label.confidence), 2)
    item["Description"] = rule_for(label.label).description or label.description
    item["RiskLevel"] = label.risk_level
    return item
