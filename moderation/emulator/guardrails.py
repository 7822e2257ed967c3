"""Content Moderation 2.0 (AI Guardrails, API version 2022-03-02) handlers of the emulator.

So far: the synchronous ``ImageModeration`` (aliyun-protocol.md §4.1-§4.2, Appendix A;
aliyun-api-reference.md §3.2). The image comes from ``imageUrl`` (downloaded here, with
``referer`` as the Referer header) or from ``ossBucketName``/``ossObjectName`` (read from the
emulator's ``oss_root``; ``ossRegionId`` is accepted, there is one region), goes through
the offline ``local`` provider, and is answered with the documented 2.0 body. Problems with
the request or the image are business errors: HTTP 200 with the code in ``Code`` (§4.3,
§8.2), using the numeric family of §2.6.
"""

from __future__ import annotations

import io
import ipaddress
import json
import socket
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any
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
from .config import EmulatorConfig

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


def read_oss_object(key: str, config: EmulatorConfig) -> bytes:
    """``<oss_root>/<key>`` for every bucket; keys that leave ``oss_root`` (``..``, absolute
    paths, symlinks out) are invalid parameters, never files outside the root."""
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or "\\" in key or ".." in parts:
        raise _invalid("ossObjectName")
    root = Path(config.oss_root).resolve()
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root):
        raise _invalid("ossObjectName")
    if not path.is_file():
        raise BusinessError(NOT_FOUND, f"the OSS object {key!r} does not exist")
    if path.stat().st_size > config.max_image_bytes:
        raise BusinessError(TOO_LARGE, f"the image is larger than {config.max_image_bytes} bytes")
    return path.read_bytes()


def fetch_url(url: str, referer: str | None, config: EmulatorConfig) -> bytes:
    """Download ``url`` like the service does (api-reference §3.2), within the emulator's
    timeout and size limit. Redirects are followed by hand so each hop's address is checked."""
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
                    return _read_body(response, config.max_image_bytes)
            response.close()
            url = urljoin(url, response.headers["location"])
        raise BusinessError(DOWNLOAD_FAILED, f"more than {MAX_REDIRECTS} redirects")
    except requests.Timeout:
        raise BusinessError(DOWNLOAD_TIMEOUT, "the image download timed out") from None
    except requests.RequestException as exc:
        raise BusinessError(DOWNLOAD_FAILED, f"the image could not be downloaded ({exc})") from None
    finally:
        session.close()


def fetch_url_v2(url: str, referer: str | None, config: EmulatorConfig) -> bytes:
    """:func:`fetch_url` in 2.0 codes: a refused download (HTTP 401/403, e.g. hot-link
    protection without the right ``referer``) is 404 "could not be downloaded"
    (api-reference §3.5). 2.0 uses 403 for "QPS exceeded", which clients retry as throttling;
    1.0 (``green``) keeps 403 FORBIDDEN for the same refusal (§2.6)."""
    try:
        return fetch_url(url, referer, config)
    except BusinessError as exc:
        if exc.code != FORBIDDEN:
            raise
        raise BusinessError(NOT_FOUND, f"{exc.message}; hot-link protection? send referer"
                            ) from None


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


def _read_body(response: requests.Response, max_bytes: int) -> bytes:
    """The body of a 200, at most ``max_bytes``; HTTP errors become §2.6 codes."""
    if response.status_code in (404, 410):
        raise BusinessError(NOT_FOUND, f"the image was not found (HTTP {response.status_code})")
    if response.status_code in (401, 403):
        raise BusinessError(
            FORBIDDEN, f"the image URL is not reachable (HTTP {response.status_code})"
        )
    if response.status_code != 200:
        raise BusinessError(
            DOWNLOAD_FAILED, f"the image download failed (HTTP {response.status_code})"
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BusinessError(TOO_LARGE, f"the image is larger than {max_bytes} bytes")
    chunks, total = [], 0
    for chunk in response.iter_content(64 * 1024):
        total += len(chunk)
        if total > max_bytes:
            raise BusinessError(TOO_LARGE, f"the image is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# --- moderating and answering --------------------------------------------------------------


def moderate(data: bytes, data_id: str | None) -> Result:
    """Run the bytes through the offline ``local`` provider; its errors become §2.6 codes."""
    media = Media(
        name=data_id or "image", kind="image", opener=partial(io.BytesIO, data), size=len(data)
    )
    try:
        return get_provider("local").submit(
            media, ModerationRequest(scenes=list(SCENES), data_id=data_id or "")
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
