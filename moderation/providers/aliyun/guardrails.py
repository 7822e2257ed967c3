"""Alibaba Cloud Content Moderation 2.0 ("AI Guardrails"): synchronous image moderation and
asynchronous video moderation (submit, poll, cancel; parsing in ``guardrails_video``).

Wire protocol per shared/specs/aliyun-protocol.md: RPC ``POST /`` with the operation in
``x-acs-action``, parameters ``Service`` + ``ServiceParameters`` (a JSON *string*) in a
form-urlencoded body (§4.1), signed with ACS3-HMAC-SHA256 (§5) or, optionally, legacy RPC V1
(§6). The service does not receive bytes: it downloads the image from a URL it can reach, so
the media must come with one (see ``media_url.public_url_for``), or be an ``oss://BUCKET/KEY``
URI, which is sent as ``ossBucketName``/``ossObjectName``/``ossRegionId`` (= ``REGION``) and
read by the service from the account's OSS (api-reference §3.2, §3.3).

OPTIONS (``MODERATION["PROVIDERS"][alias]["OPTIONS"]``):

``ACCESS_KEY_ID``, ``ACCESS_KEY_SECRET`` (required), ``SECURITY_TOKEN`` (STS, optional),
``REGION`` (``ap-southeast-1``), ``ENDPOINT`` (default ``green-cip.<REGION>.aliyuncs.com``;
``http://127.0.0.1:PORT`` for the local emulator; scheme optional, default https),
``SERVICE`` (``baselineCheck_global``; free text, consoles clone services under new codes),
``SIGNATURE`` (``acs3`` | ``rpc_v1``), ``TIMEOUT`` ((connect, read) seconds, ``(5, 20)``),
``REFERER`` (sent as ``referer`` with images and videos, for hot-link-protected URLs),
``VIDEO_SERVICE`` (``videoDetection_global``), ``OFFLINE`` (videos: ``offline: true``,
nearline mode; results then answer 288 while queued), ``CRYPT_TYPE`` (callback checksum
``SHA256`` | ``SM3``, sent with a callback), ``UID`` (the account id the callback checksum is
computed with, §2.11). A registration's ``options={"referer": ..., "offline": ...}`` override
``REFERER``/``OFFLINE`` per field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ...labels import make_label
from ..base import CALLBACK, IMAGE, SYNC, VIDEO, Media, ModerationRequest
from ..errors import AuthError, ProviderError
from ..result import RISK_LEVELS, Label, Result, worst_risk
from . import guardrails_video as video
from . import signing
from .callbacks import parse_video_callback
from .client import DEFAULT_REGION, AliyunProvider, image_result

API_VERSION = "2022-03-02"
IMAGE_ACTION = "ImageModeration"
DEFAULT_SERVICE = "baselineCheck_global"
DEFAULT_TIMEOUT = (5.0, 20.0)
SIGNATURES = ("acs3", "rpc_v1")
USER_AGENT = "django-media-moderation (aliyun-guardrails; python-requests)"
LABEL_SERVICE = "guardrails"
_TRUE = frozenset({"1", "true", "yes", "on"})


def _flag(value: Any) -> bool:
    """An on/off option given as a bool or as text (settings read from the environment)."""
    return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE


def default_endpoint(region: str) -> str:
    """``green-cip.<region>.aliyuncs.com``: the documented 2.0 pattern (API reference §1.2).

    Not the SDK's resolver (§1.1), whose map is older and sends e.g. us-east-1 to Singapore.
    """
    return f"green-cip.{region}.aliyuncs.com"


def service_parameters(
    image_url: str, data_id: str = "", referer: str = "", region: str = DEFAULT_REGION
) -> str:
    """The ``ServiceParameters`` JSON text of ImageModeration (API reference §3.2): ``imageUrl``
    or, for ``oss://BUCKET/KEY``, the OSS trio in ``region``; empty keys are left out. Sent
    byte-for-byte, the service parses it (§4.1)."""
    params = video.media_source(image_url, region, "imageUrl")
    if data_id:
        params["dataId"] = data_id
    if referer:
        params["referer"] = referer
    return json.dumps(params, ensure_ascii=False, separators=(",", ":"))


def _risk(value: Any) -> str | None:
    """A response RiskLevel (``high|medium|low|none``, §4.2) in our vocabulary, else None."""
    level = str(value or "").strip().lower()
    return level if level in RISK_LEVELS else None


def parse_image_response(body: Mapping[str, Any], service: str) -> Result:
    """A successful ImageModeration body (Appendix A) as a one-frame Result.

    Labels go through ``make_label`` so the app's label table applies; ``Confidence`` is absent
    for some labels (``nonLabel``), which then count as certain. The job's risk is the
    service's ``Data.RiskLevel`` (console thresholds, API reference §3.7) when it sends one,
    else the worst label risk. ``raw`` keeps the body verbatim.
    """
    data = body.get("Data")
    if not isinstance(data, Mapping):
        raise ProviderError("ImageModeration answered Code 200 without Data", code="bad_response")
    labels: list[Label] = []
    for item in data.get("Result") or []:
        if not isinstance(item, Mapping) or not item.get("Label"):
            continue
        confidence = item.get("Confidence")
        labels.append(
            make_label(
                str(item["Label"]),
                100.0 if confidence is None else float(confidence),
                service=LABEL_SERVICE,
                scene=service,
                description=str(item.get("Description") or ""),
            )
        )
    risk = _risk(data.get("RiskLevel")) or worst_risk(label.risk_level for label in labels)
    return image_result(labels, risk, body)


class GuardrailsProvider(AliyunProvider):
    """Content Moderation 2.0 over HTTPS with ``requests`` (no Alibaba SDK needed)."""

    product = "green-cip"

    # callback: video results are pushed when CALLBACK_BASE_URL is set (§3.6)
    capabilities = frozenset({IMAGE, VIDEO, SYNC, CALLBACK})
    default_timeout = DEFAULT_TIMEOUT
    default_endpoint = staticmethod(default_endpoint)

    # --- options -----------------------------------------------------------------------------

    @property
    def service(self) -> str:
        return str(self._opt("SERVICE", DEFAULT_SERVICE))

    @property
    def video_service(self) -> str:
        return str(self._opt("VIDEO_SERVICE", video.DEFAULT_VIDEO_SERVICE))

    def referer(self, request: ModerationRequest) -> str:
        """``referer`` for hot-link-protected storages: the registration's, else REFERER."""
        return str(request.options.get("referer") or self._opt("REFERER"))

    def offline(self, request: ModerationRequest) -> bool:
        """Nearline video mode: the registration's ``offline`` option, else OFFLINE."""
        if request.options.get("offline") is not None:
            return _flag(request.options["offline"])
        return _flag(self._opt("OFFLINE", False))

    def media_url(self, media: Media) -> str:
        """``oss://BUCKET/KEY`` as given (the service reads the object itself), else the
        public http(s) URL the pipeline provided (``no_public_url`` without one)."""
        if media.url and video.oss_location(media.url) is not None:
            return media.url
        return self.public_url(media)

    # --- moderation --------------------------------------------------------------------------

    def submit(self, media: Media, request: ModerationRequest) -> Result:
        """An image: ``ImageModeration``, finished at once. A video: ``VideoModeration``,
        ``in_progress`` with the service's task id (poll with :meth:`fetch`)."""
        url = self.media_url(media)
        if media.kind == VIDEO:
            callback = request.callback_url
            params = video.submit_parameters(
                url,
                request.data_id,
                callback=callback,
                seed=request.seed if callback else "",
                crypt_type=str(self._opt("CRYPT_TYPE", "SHA256")) if callback else "",
                referer=self.referer(request),
                offline=self.offline(request),
                region=self.region,
            )
            body = self.call(video.SUBMIT_ACTION, self._video_form(params))
            return video.parse_submit(body)
        params = service_parameters(url, request.data_id, self.referer(request), self.region)
        body = self.call(IMAGE_ACTION, {"Service": self.service, "ServiceParameters": params})
        return parse_image_response(body, self.service)

    def fetch(self, task_id: str, request: ModerationRequest | None = None) -> Result:
        """``VideoModerationResult``: ``in_progress`` on Code 280 (running) or 288 (nearline,
        still queued), else the finished result; a result past its retention raises
        ``Expired`` (``errors.ERRORS``)."""
        body = self.call(
            video.RESULT_ACTION,
            self._video_form(video.task_parameters(task_id)),
            accept=video.WAITING,
        )
        return video.parse_video_result(body, self.video_service, task_id)

    def cancel(self, task_id: str) -> None:
        """``VideoModerationCancel``: stop an unfinished (or live) video task (§4.2)."""
        self.call(video.CANCEL_ACTION, self._video_form(video.task_parameters(task_id)))

    def parse_callback(self, content: dict[str, Any]) -> Result:
        """A verified video callback ``content`` (§3.6) as a finished Result."""
        return parse_video_callback(content, self.video_service)

    def _video_form(self, params: str) -> dict[str, str]:
        return {"Service": self.video_service, "ServiceParameters": params}

    def call(
        self, action: str, form: Mapping[str, str], *, accept: tuple[int, ...] = ()
    ) -> dict[str, Any]:
        """POST one signed RPC operation with a form body (§4.1); the JSON body on success
        (business Code 200, or one of ``accept`` such as 280 "processing").

        Raises the error that ``errors.ERRORS`` maps the answer to, or ``ProviderError``
        (``timeout``/``connection``) when there is no answer.
        """
        url, headers, body = self._signed(action, form)
        return self.post(url, body, headers, accept=accept)

    def _signed(self, action: str, form: Mapping[str, str]) -> tuple[str, dict[str, str], bytes]:
        """(URL, headers, body) of a signed request; the headers are sent exactly as signed."""
        key_id, secret, token = self.credentials()
        algorithm = str(self._opt("SIGNATURE", "acs3")).lower()
        if algorithm not in SIGNATURES:
            raise AuthError(f"SIGNATURE must be one of {SIGNATURES}", code="invalid_option")
        scheme, host = self.endpoint
        body = signing.form_encode(dict(sorted(form.items()))).encode()  # keys sorted, §4.1
        headers = {
            "host": host,
            "user-agent": USER_AGENT,
            "content-type": signing.FORM_CONTENT_TYPE,
        }
        if algorithm == "acs3":
            signed = signing.sign_acs3(
                "POST", "/", {}, headers, body, key_id, secret,
                action=action, version=API_VERSION, security_token=token,
            )
            return f"{scheme}://{host}/", signed, body
        # §6: auth in the query, body parameters signed too; no x-acs-date/nonce headers.
        query = signing.sign_rpc_v1(
            "POST", {"Action": action, "Version": API_VERSION}, key_id, secret,
            security_token=token, body_params=form,
        )
        headers.update({
            "x-acs-version": API_VERSION,
            "x-acs-action": action,
            "x-acs-credentials-provider": "static_sts" if token else "static_ak",
        })
        return f"{scheme}://{host}/?{signing.form_encode(query)}", headers, body
