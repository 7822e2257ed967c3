"""What the three signature algorithms share (shared/specs/aliyun-protocol.md): the §8.1
gateway errors, the verified-request result, the nonce cache, the wire encodings, digests
and clocks, case-insensitive header helpers and the checks common to every verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode

Algorithm = Literal["roa", "acs3", "rpc_v1"]
# Given an AccessKey id, its secret, or None when the id is unknown.
SecretLookup = Callable[[str], str | None]
# Given (AccessKey id, nonce): True the first time, False for a replay (see NonceCache).
NonceCheck = Callable[[str, str], bool]

HMAC_SHA1 = "HMAC-SHA1"
SIGNATURE_VERSION = "1.0"
MAX_SKEW = timedelta(minutes=15)  # §3.1 step 5, §5.1 step 7, §8.1
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # x-acs-date (§4.1) and Timestamp (§6)
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


# --- errors and results --------------------------------------------------------------------

# §8.1: HTTP status and conventional message per gateway code.
_GATEWAY_ERRORS: dict[str, tuple[int, str]] = {
    "IncompleteSignature": (400, "The request signature does not conform to Aliyun standards."),
    "InvalidAccessKeyId.NotFound": (404, "Specified access key is not found."),
    "SignatureDoesNotMatch": (400, "Specified signature is not matched with our calculation."),
    "InvalidTimeStamp.Format": (400, "Specified time stamp or date value is not well formatted."),
    "InvalidTimeStamp.Expired": (400, "Specified time stamp or date value is expired."),
    "SignatureNonceUsed": (400, "Specified signature nonce was used already."),
    "InvalidContentMD5": (400, "The Content-MD5 you specified does not match the request body."),
}


class SignatureError(Exception):
    """A request the API gateway would refuse; the emulator answers ``http_status`` with
    ``{"Code": code, "Message": message, ...}`` (§8.1)."""

    def __init__(self, code: str, message: str, http_status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


def gateway_error(code: str, detail: str = "") -> SignatureError:
    """The §8.1 error ``code`` with its status and conventional message (plus ``detail``)."""
    status, message = _GATEWAY_ERRORS[code]
    return SignatureError(code, f"{message} {detail}" if detail else message, status)


def _missing(name: str) -> SignatureError:
    """§8.1 ``MissingParameter``: a required header or parameter is absent."""
    message = (
        f'The input parameter "{name}" that is mandatory for processing this request '
        "is not supplied."
    )
    return SignatureError("MissingParameter", message, 400)


def _mismatch(string_to_sign: str) -> SignatureError:
    """§8.1 ``SignatureDoesNotMatch``; the message ends with the server's string to sign, which
    the 1.0 core SDK compares with its own (emulator notes §4)."""
    status, message = _GATEWAY_ERRORS["SignatureDoesNotMatch"]
    return SignatureError(
        "SignatureDoesNotMatch", f"{message} server string to sign is:{string_to_sign}", status
    )


@dataclass(frozen=True)
class VerifiedRequest:
    """What a verifier vouches for: who signed, how, and the signed action/version (which the
    emulator routes on, since 2.0 and IMM share ``POST /``; §9)."""

    access_key_id: str
    algorithm: Algorithm
    action: str | None = None
    version: str | None = None
    security_token: str | None = None
    nonce: str | None = None


class NonceCache:
    """Remembers (AccessKey id, nonce) pairs for ``ttl`` to refuse replays (§5.1 step 7).

    Use an instance as the ``nonces`` argument of the verifiers. The default ttl covers the
    whole ±15 min freshness window, so a replay is caught for as long as its date is accepted.
    Thread-safe; memory is bounded by the request rate times ``ttl``.
    """

    def __init__(
        self, ttl: timedelta = 2 * MAX_SKEW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl.total_seconds()
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, access_key_id: str, nonce: str) -> bool:
        """True if the nonce is new (it is then remembered), False for a replay."""
        key = (access_key_id, nonce)
        with self._lock:
            now = self._clock()
            self._forget_before(now - self._ttl)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True

    def _forget_before(self, horizon: float) -> None:
        while self._seen and next(iter(self._seen.values())) < horizon:
            self._seen.popitem(last=False)


# --- encodings, digests and clocks -------------------------------------------------------


def percent_encode(value: str) -> str:
    """RFC 3986 encoding inside ACS3 (§5 step 3) and RPC V1 (§6 step 2) signatures.

    Only ``A-Z a-z 0-9 - _ . ~`` stay literal (space → ``%20``, ``*`` → ``%2A``,
    ``+`` → ``%2B``, ``/`` → ``%2F``, UTF-8, upper-case hex): what the older SDKs get from
    URL-encoding and then rewriting ``+`` → ``%20``, ``*`` → ``%2A``, ``%7E`` → ``~``.
    """
    return quote(value, safe="~")


def form_encode(params: Mapping[str, str]) -> str:
    """``application/x-www-form-urlencoded`` as the SDKs put it on the wire (§2.1, §4.1).

    Insertion order (sort first for a 2.0 form body), space → ``+``, ``~`` literal,
    ``*`` → ``%2A``. This is the wire encoding only; signatures never see it.
    """
    return urlencode(params)


def form_decode(raw: str) -> dict[str, str]:
    """Decode a query string or form body with form rules (``+`` → space, ``%XX`` → UTF-8):
    the decoded values are what every verifier signs over (§3.1 step 3, §5.1 step 5)."""
    return dict(parse_qsl(raw, keep_blank_values=True))


def content_md5(body: bytes) -> str:
    """``Content-MD5``: base64 of the binary MD5 of the body (§2.1)."""
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def content_sha256(body: bytes | None) -> str:
    """``x-acs-content-sha256``: lower-case hex SHA-256 of the body, of b"" if none (§5 step 1)."""
    return hashlib.sha256(body or b"").hexdigest()


def http_date(moment: datetime | None = None) -> str:
    """RFC 1123 ``Date`` header value (§3 step 1), e.g. ``Mon, 03 Mar 2025 08:15:30 GMT``."""
    return format_datetime(_utc(moment).replace(microsecond=0), usegmt=True)


def iso_timestamp(moment: datetime | None = None) -> str:
    """``x-acs-date`` / ``Timestamp`` value, UTC ``YYYY-MM-DDTHH:MM:SSZ`` (§4.1, §6)."""
    return _utc(moment).strftime(ISO_FORMAT)


def new_nonce() -> str:
    """A fresh nonce in the SDK's shape: 32 lower-case hex characters (§4.1)."""
    return uuid.uuid4().hex


def _utc(moment: datetime | None) -> datetime:
    """``moment`` (default: now) as an aware UTC datetime; naive values are taken as UTC."""
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _b64_hmac_sha1(key: str, message: str) -> str:
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# --- header mappings -----------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (§3.1 step 2); the last spelling wins."""
    wanted = name.lower()
    found = None
    for key, value in headers.items():
        if key.lower() == wanted:
            found = value
    return found


def _set_header(headers: dict[str, str], name: str, value: str) -> None:
    """Set ``name``, dropping any other spelling of it so the header is sent once."""
    for key in [k for k in headers if k.lower() == name.lower()]:
        del headers[key]
    headers[name] = value


def _default_header(headers: dict[str, str], name: str, value: str) -> None:
    """Set ``name`` unless the caller already gave it (in any spelling)."""
    if _header(headers, name) is None:
        headers[name] = value


# --- shared verifier checks ----------------------------------------------------------------


def _incomplete(detail: str) -> SignatureError:
    return gateway_error("IncompleteSignature", f"({detail})")


def _parse_http_date(value: str) -> datetime:
    try:
        return _utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        raise gateway_error("InvalidTimeStamp.Format", f"(Date: {value!r})") from None


def _parse_iso(value: str, name: str) -> datetime:
    try:
        return datetime.strptime(value.strip(), ISO_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise gateway_error("InvalidTimeStamp.Format", f"({name}: {value!r})") from None


def _check_fresh(signed_at: datetime, now: datetime | None, max_skew: timedelta | None) -> None:
    """§8.1 ``InvalidTimeStamp.Expired`` outside ±``max_skew`` (None turns the check off)."""
    if max_skew is not None and abs(_utc(now) - signed_at) > max_skew:
        raise gateway_error("InvalidTimeStamp.Expired", f"(signed at {iso_timestamp(signed_at)})")


def _secret_for(lookup_secret: SecretLookup, access_key_id: str) -> str:
    secret = lookup_secret(access_key_id)
    if secret is None:
        raise gateway_error("InvalidAccessKeyId.NotFound", f"({access_key_id})")
    return secret


def _check_signature(given: str, expected: str, string_to_sign: str) -> None:
    """Constant-time comparison (§3.1 step 4, §5.1 step 6)."""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise _mismatch(string_to_sign)


def _check_nonce(nonces: NonceCheck | None, access_key_id: str, nonce: str | None) -> None:
    """§8.1 ``SignatureNonceUsed``; run after the signature so forgeries burn no nonces."""
    if nonces is not None and nonce and not nonces(access_key_id, nonce):
        raise gateway_error("SignatureNonceUsed", f"({nonce})")
