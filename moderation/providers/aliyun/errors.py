"""Alibaba Cloud error answers -> the app's provider errors, in one table.

Two kinds of failure come back (shared/specs/aliyun-protocol.md §8): gateway errors (non-2xx
HTTP, a string ``Code`` such as ``SignatureDoesNotMatch``, §8.1) and business errors (HTTP 200,
a numeric ``Code`` in the body, §2.6/§4.3/§8.2). Both are looked up in :data:`ERRORS`, which the
2.0 (guardrails), 1.0 (green) and IMM providers share. What each error class does to a job is in
``moderation/providers/errors.py``; the rule of thumb here:

* the file or its URL is bad -> :class:`MediaError` (failed, not retried);
* credentials, permissions, endpoint or clock are wrong -> :class:`AuthError` (surfaced);
* the provider asks us to slow down -> :class:`Throttled` (retried, attempt given back, so
  never put a permanent failure here: it would be retried forever);
* the result is gone -> :class:`Expired`;
* anything transient or unknown -> :class:`ProviderError` (retried with backoff).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import requests

from ..errors import AuthError, Expired, MediaError, ModerationError, ProviderError, Throttled

ErrorRule = tuple[type[ModerationError], str]

#: Code (int: business code in the body; str: gateway code) -> (error class, job error code).
ERRORS: dict[int | str, ErrorRule] = {
    # --- business codes, HTTP 200 (§2.6, §4.3; the 2.0 4xx meanings from the API reference §3.5)
    280: (ProviderError, "processing"),  # not expected from a synchronous call; ask again later
    # 2.0 ``offline`` (nearline) video task still queued; VideoModerationResult accepts it
    # like 280 (guardrails_video.WAITING). Not in the specs: from the task brief.
    288: (ProviderError, "queued"),
    400: (MediaError, "bad_request"),  # a required parameter is empty
    401: (MediaError, "invalid_parameter"),  # e.g. "parameter invalid(imageUrl)"
    402: (MediaError, "parameter_too_long"),
    403: (Throttled, "qps_exceeded"),  # 2.0: QPS limit (1.0 used 403 for an unreachable URL)
    404: (MediaError, "download_failed"),
    405: (MediaError, "download_timeout"),
    406: (MediaError, "file_too_large"),
    407: (MediaError, "unsupported_format"),
    408: (AuthError, "no_permission"),  # not authorised, not activated, RAM permission missing
    409: (Expired, "expired"),  # undocumented; kept from the provider design note
    411: (AuthError, "no_permission"),  # comes with HTTP 403 (§4.3)
    480: (MediaError, "download_failed"),  # DOWNLOAD_FAILED: size/resolution limits (§2.6)
    500: (ProviderError, "server_error"),
    503: (ProviderError, "service_unavailable"),
    580: (ProviderError, "server_error"),
    581: (ProviderError, "server_timeout"),
    585: (ProviderError, "server_error"),
    586: (ProviderError, "server_error"),
    587: (ProviderError, "server_error"),
    588: (Throttled, "quota_exceeded"),
    589: (MediaError, "file_too_large"),
    590: (MediaError, "unsupported_format"),
    591: (ProviderError, "server_busy"),
    592: (MediaError, "download_timeout"),
    594: (Expired, "expired"),
    595: (MediaError, "frame_extraction_failed"),
    596: (AuthError, "permission_denied"),
    # --- gateway codes, non-2xx HTTP (§8.1)
    "SignatureDoesNotMatch": (AuthError, "signature_mismatch"),
    "InvalidAccessKeySecret": (AuthError, "signature_mismatch"),
    "IncompleteSignature": (AuthError, "signature_incomplete"),
    "InvalidAccessKeyId.NotFound": (AuthError, "invalid_access_key"),
    "InvalidAccessKeyId.Inactive": (AuthError, "invalid_access_key"),
    # STS tokens (credentials.py); an expired one is retried, by then the chain has a new one
    "InvalidSecurityToken.MismatchWithAccessKey": (AuthError, "invalid_security_token"),
    "InvalidSecurityToken.Malformed": (AuthError, "invalid_security_token"),
    "InvalidSecurityToken.Expired": (ProviderError, "security_token_expired"),
    "InvalidTimeStamp.Expired": (AuthError, "clock_skew"),
    "InvalidTimeStamp.Format": (AuthError, "clock_skew"),
    "Forbidden.RAM": (AuthError, "no_permission"),
    "NoPermission": (AuthError, "no_permission"),
    "InvalidAction.NotFound": (AuthError, "invalid_endpoint"),  # wrong ENDPOINT or product
    "InvalidApi.NotFound": (AuthError, "invalid_endpoint"),
    "MissingParameter": (ProviderError, "bad_request"),
    "SignatureNonceUsed": (ProviderError, "nonce_reused"),  # a retry gets a fresh nonce
    "Throttling": (Throttled, "throttled"),  # and every "Throttling.*", see error_for()
    "InternalError": (ProviderError, "server_error"),
    "ServiceUnavailable": (ProviderError, "service_unavailable"),
}

#: Where Content Moderation 1.0 means something else by the same business code (§2.6):
#: a per-task 403 there is "the image URL was refused", not a QPS limit, and must fail the
#: job rather than be retried forever as throttling.
V1_OVERRIDES: dict[int | str, ErrorRule] = {
    403: (MediaError, "download_forbidden"),
}

_XML_CODE = re.compile(r"<Code>\s*([^<]+?)\s*</Code>")
_XML_MESSAGE = re.compile(r"<Message>\s*([^<]*?)\s*</Message>")
MAX_MESSAGE = 500  # provider messages can quote a whole string-to-sign


def _field(body: Mapping[str, Any], *names: str) -> Any:
    """The first present key: 2.0/IMM answer Upper-camel, 1.0 lower-camel (§1, §8.1)."""
    return next((body[name] for name in names if body.get(name) not in (None, "")), None)


def _as_code(value: Any) -> int | str | None:
    """Business codes are ints (sometimes sent as digit strings); gateway codes are text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        return int(text) if text.isdigit() else text
    return None


def _rule_for(code: int | str | None, http_status: int,
              overrides: Mapping[int | str, ErrorRule] | None = None) -> ErrorRule:
    """Protocol override, table entry, the ``Throttling.*`` family, then HTTP status."""
    if code is not None and overrides and code in overrides:
        return overrides[code]
    if code is not None and code in ERRORS:
        return ERRORS[code]
    if isinstance(code, str) and code.startswith("Throttling"):
        return ERRORS["Throttling"]
    if http_status == 429:
        return ERRORS["Throttling"]
    if http_status in (401, 403):
        return (AuthError, "no_permission")
    if http_status >= 500:
        return (ProviderError, "server_error")
    label = f"code_{code}" if isinstance(code, int) else f"http_{http_status}"
    return (ProviderError, label)


def error_for(
    code: int | str | None,
    message: str = "",
    *,
    http_status: int = 200,
    request_id: str = "",
    retry_after: str = "",
    overrides: Mapping[int | str, ErrorRule] | None = None,
) -> ModerationError:
    """The error to raise for one failed answer; the message names code, status and request id
    so an operator can quote them to Alibaba support."""
    cls, job_code = _rule_for(code, http_status, overrides)
    wait = _retry_after_seconds(retry_after)
    if wait:  # §8.1: the SDKs treat any positive x-acs-retry-after as throttling
        cls, job_code = Throttled, "throttled"
    text = f"Alibaba Cloud answered {code or 'an error'} (HTTP {http_status})"
    if message:
        text += f": {message[:MAX_MESSAGE]}"
    if request_id:
        text += f" [request id {request_id}]"
    if cls is Throttled:
        return Throttled(text, code=job_code, retry_after=wait)
    return cls(text, code=job_code)


def _retry_after_seconds(value: str) -> float | None:
    """``x-acs-retry-after`` is in milliseconds (§8.1); None when absent, zero or garbage."""
    try:
        millis = float(value.strip() or 0)
    except ValueError:
        return None
    return millis / 1000 if millis > 0 else None


def error_from_response(
    http_status: int, body: Any, headers: Mapping[str, str] | None = None, text: str = "",
    *, overrides: Mapping[int | str, ErrorRule] | None = None,
) -> ModerationError | None:
    """None for a success (2xx and business code 200), else the error to raise.

    ``body`` is the parsed JSON (None when the body was not JSON: then a gateway error is read
    from XML ``<Error><Code>`` if present, §8.1, and a 2xx is a broken answer).
    """
    headers = headers or {}
    retry_after = str(headers.get("x-acs-retry-after", "") or "")
    if isinstance(body, Mapping):
        code = _as_code(_field(body, "Code", "code"))
        message = str(_field(body, "Message", "Msg", "message", "msg") or "")
        request_id = str(_field(body, "RequestId", "requestId") or "")
    else:
        found = _XML_CODE.search(text or "")
        code = found.group(1) if found else None
        found_message = _XML_MESSAGE.search(text or "")
        message = found_message.group(1) if found_message else ""
        request_id = ""
    if 200 <= http_status < 300:
        if not isinstance(body, Mapping):
            return ProviderError(
                f"Alibaba Cloud sent a non-JSON answer (HTTP {http_status})", code="bad_response"
            )
        if code == 200:
            return None
        if code is None:
            return ProviderError(
                f"Alibaba Cloud answered without a Code (HTTP {http_status})", code="bad_response"
            )
    return error_for(
        code, message, http_status=http_status, request_id=request_id, retry_after=retry_after,
        overrides=overrides,
    )


def transport_error(exc: requests.RequestException) -> ProviderError:
    """A request that got no answer: timeouts and refused/reset connections are retried."""
    if isinstance(exc, requests.Timeout):  # before ConnectionError: ConnectTimeout is both
        return ProviderError(f"Alibaba Cloud did not answer in time: {exc}", code="timeout")
    return ProviderError(f"Could not reach Alibaba Cloud: {exc}", code="connection")
