"""Signing and verifying Alibaba Cloud API requests (shared/specs/aliyun-protocol.md).

One module for both ends of the wire: our HTTP client signs with ``sign_*`` and the local
emulator checks with ``verify_*``, so the two cannot drift apart. Three algorithms:

* ROA HMAC-SHA1 (§3, §3.1): Content Moderation 1.0, ``Authorization: acs AK:SIG``.
* ACS3-HMAC-SHA256 (§5, §5.1): the SDK default for Content Moderation 2.0 and IMM.
* RPC V1 HMAC-SHA1 (§6): the legacy ``signature_algorithm="v2"`` option of 2.0 and IMM.

Verifiers raise :class:`SignatureError` carrying the code, message and HTTP status the
gateway answers with (§8.1). Pure functions over plain values, standard library only:
headers are any mapping (looked up case-insensitively), queries and form bodies are
mappings of *decoded* strings (see :func:`form_decode`), bodies are raw bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Literal, NamedTuple
from urllib.parse import parse_qsl, quote, urlencode

Algorithm = Literal["roa", "acs3", "rpc_v1"]
# Given an AccessKey id, its secret, or None when the id is unknown.
SecretLookup = Callable[[str], str | None]
# Given (AccessKey id, nonce): True the first time, False for a replay (see NonceCache).
NonceCheck = Callable[[str, str], bool]

ROA_VERSION = "2018-05-09"
ACS3_ALGORITHM = "ACS3-HMAC-SHA256"
HMAC_SHA1 = "HMAC-SHA1"
SIGNATURE_VERSION = "1.0"
MAX_SKEW = timedelta(minutes=15)  # §3.1 step 5, §5.1 step 7, §8.1
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # x-acs-date (§4.1) and Timestamp (§6)
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

# §5.1 step 3: a V3 request must sign at least these.
ACS3_REQUIRED_SIGNED = (
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
)
# §6: what tea-openapi always puts in the query of a V1 request (besides Signature).
RPC_REQUIRED = ("AccessKeyId", "SignatureMethod", "SignatureNonce", "SignatureVersion", "Timestamp")
_RPC_RESERVED = frozenset(
    {*RPC_REQUIRED, "Action", "Format", "Version", "SecurityToken", "Signature"}
)


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


# --- ROA HMAC-SHA1 (Content Moderation 1.0) ------------------------------------------------


def roa_canonicalized_headers(headers: Mapping[str, str]) -> str:
    """Every ``x-acs-*`` header as ``name:value\\n``, names lower-cased and sorted, values
    verbatim (§3 step 2)."""
    acs = {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-acs-")}
    return "".join(f"{name}:{acs[name]}\n" for name in sorted(acs))


def roa_canonicalized_resource(path: str, query: Mapping[str, str]) -> str:
    """The path, then ``?`` and the decoded query sorted by name as raw ``name=value`` pairs:
    no percent-encoding at all (§3 step 2)."""
    if not query:
        return path
    return path + "?" + "&".join(f"{name}={query[name]}" for name in sorted(query))


def roa_string_to_sign(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
) -> str:
    """METHOD, Accept, Content-MD5, Content-Type and Date lines (empty when absent), then the
    canonicalized headers and resource, no trailing newline (§3 step 2)."""
    fixed = (_header(headers, name) or "" for name in ("Accept", "Content-MD5", "Content-Type"))
    lines = [method.upper(), *fixed, _header(headers, "Date") or ""]
    return (
        "\n".join(lines)
        + "\n"
        + roa_canonicalized_headers(headers)
        + roa_canonicalized_resource(path, query)
    )


def roa_signature(access_key_secret: str, string_to_sign: str) -> str:
    """base64(HMAC-SHA1(secret, string to sign)) (§3 step 3)."""
    return _b64_hmac_sha1(access_key_secret, string_to_sign)


def sign_roa(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes | None,
    access_key_id: str,
    access_key_secret: str,
    *,
    date: datetime | None = None,
    nonce: str | None = None,
    security_token: str | None = None,
) -> dict[str, str]:
    """``headers`` plus every header aliyun-python-sdk-core adds to a ROA request (§2.1, §3).

    Adds ``Accept``, ``x-acs-version`` (unless given), ``Content-MD5`` and a default
    ``Content-Type: application/octet-stream`` when there is a body (also ``b""``; ``None``
    means no body), ``Date``, ``x-acs-signature-method``/``-version``, ``x-acs-security-token``
    for STS, and ``Authorization: acs ID:SIG``. The caller supplies ``x-acs-action``,
    ``x-acs-region-id`` and ``RegionId`` in ``query``. The Python SDK sends *no*
    ``x-acs-signature-nonce`` (§2.1), so one is added only when ``nonce`` is given.
    """
    signed = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    _default_header(signed, "Accept", "application/json")
    _default_header(signed, "x-acs-version", ROA_VERSION)
    if body is not None:
        _set_header(signed, "Content-MD5", content_md5(body))
        _default_header(signed, "Content-Type", "application/octet-stream")
    _set_header(signed, "Date", http_date(date))
    _set_header(signed, "x-acs-signature-method", HMAC_SHA1)
    _set_header(signed, "x-acs-signature-version", SIGNATURE_VERSION)
    if nonce:
        _set_header(signed, "x-acs-signature-nonce", nonce)
    if security_token:
        _set_header(signed, "x-acs-security-token", security_token)
    signature = roa_signature(access_key_secret, roa_string_to_sign(method, path, query, signed))
    signed["Authorization"] = f"acs {access_key_id}:{signature}"
    return signed


def _parse_roa_authorization(value: str | None) -> tuple[str, str]:
    """``acs <AccessKeyId>:<signature>``, split at the last colon (§3.1 step 1)."""
    if not value:
        raise _incomplete("missing Authorization header")
    if not value.startswith("acs "):
        raise _incomplete("Authorization must start with 'acs '")
    access_key_id, colon, signature = value[4:].rpartition(":")
    if not (colon and access_key_id and signature):
        raise _incomplete("Authorization must be 'acs <AccessKeyId>:<Signature>'")
    return access_key_id, signature


def _check_content_md5(headers: Mapping[str, str], body: bytes) -> None:
    """The body must be the one the signed ``Content-MD5`` describes (§3.1 step 5); the
    SDK always sends one with a body, and without it the body would not be covered at all."""
    declared = _header(headers, "Content-MD5")
    if declared is None:
        if body:
            raise _missing("Content-MD5")
        return
    if declared.strip() != content_md5(body):
        raise gateway_error("InvalidContentMD5")


def verify_roa(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    lookup_secret: SecretLookup,
    *,
    now: datetime | None = None,
    max_skew: timedelta | None = MAX_SKEW,
    nonces: NonceCheck | None = None,
) -> VerifiedRequest:
    """Check a ROA-signed request as the gateway would (§3.1); ``query`` holds decoded values.

    Raises :class:`SignatureError`: ``IncompleteSignature`` (Authorization missing or
    malformed), ``MissingParameter`` (no ``Date``; a body without ``Content-MD5``),
    ``InvalidTimeStamp.Format``/``.Expired`` (``Date`` unreadable or outside ±``max_skew``
    of ``now``), ``InvalidAccessKeyId.NotFound``, ``InvalidContentMD5``,
    ``SignatureDoesNotMatch``, ``SignatureNonceUsed`` (only if the optional nonce repeats).
    """
    access_key_id, signature = _parse_roa_authorization(_header(headers, "Authorization"))
    date = _header(headers, "Date")
    if date is None:
        raise _missing("Date")
    _check_fresh(_parse_http_date(date), now, max_skew)
    secret = _secret_for(lookup_secret, access_key_id)
    _check_content_md5(headers, body)
    string_to_sign = roa_string_to_sign(method, path, query, headers)
    _check_signature(signature, roa_signature(secret, string_to_sign), string_to_sign)
    nonce = _header(headers, "x-acs-signature-nonce")
    _check_nonce(nonces, access_key_id, nonce)
    return VerifiedRequest(
        access_key_id,
        "roa",
        action=_header(headers, "x-acs-action"),
        version=_header(headers, "x-acs-version"),
        security_token=_header(headers, "x-acs-security-token"),
        nonce=nonce,
    )


# --- ACS3-HMAC-SHA256 (Content Moderation 2.0, IMM) ----------------------------------------


def acs3_canonical_query(query: Mapping[str, str | None]) -> str:
    """Non-null parameters sorted by raw name as ``name=percent_encode(value)`` joined by
    ``&``; names are not encoded (§5 step 3)."""
    names = sorted(name for name, value in query.items() if value is not None)
    return "&".join(f"{name}={percent_encode(query[name] or '')}" for name in names)


def acs3_canonical_headers(headers: Mapping[str, str], names: Iterable[str]) -> str:
    """``name:value\\n`` for each of ``names`` (lower-case, in the order given) with trimmed
    values; several spellings of one name are joined by ``,`` after sorting (§5 step 4)."""
    values: dict[str, list[str]] = {}
    for key, value in headers.items():
        values.setdefault(key.lower(), []).append(value.strip())
    return "".join(f"{name}:{','.join(sorted(values[name]))}\n" for name in names)


def acs3_signed_header_names(headers: Iterable[str]) -> list[str]:
    """The sorted, lower-cased, de-duplicated header names: the SDK signs *every* header it
    holds at signing time, ``accept`` and ``user-agent`` included (§5 steps 4-5)."""
    return sorted({name.lower() for name in headers})


def acs3_canonical_request(
    method: str,
    path: str,
    query: Mapping[str, str | None],
    headers: Mapping[str, str],
    hashed_payload: str,
    signed_headers: Iterable[str] | None = None,
) -> str:
    """The six-part canonical request of §5 step 6 over ``signed_headers`` (default: all of
    ``headers``, as the signer does; the verifier passes the names the client declared)."""
    names = acs3_signed_header_names(headers if signed_headers is None else signed_headers)
    return "\n".join(
        [
            method.upper(),
            path,
            acs3_canonical_query(query),
            acs3_canonical_headers(headers, names),
            ";".join(names),
            hashed_payload,
        ]
    )


def acs3_string_to_sign(canonical_request: str) -> str:
    """``ACS3-HMAC-SHA256\\n`` + hex SHA-256 of the canonical request (§5 step 7)."""
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{ACS3_ALGORITHM}\n{digest}"


def acs3_signature(access_key_secret: str, string_to_sign: str) -> str:
    """Lower-case hex HMAC-SHA256(secret, string to sign) (§5 step 8)."""
    key = access_key_secret.encode()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def acs3_authorization(access_key_id: str, signed_headers: Iterable[str], signature: str) -> str:
    """The ``Authorization`` value of §5 step 9 (no spaces after the commas)."""
    return (
        f"{ACS3_ALGORITHM} Credential={access_key_id},"
        f"SignedHeaders={';'.join(signed_headers)},Signature={signature}"
    )


def sign_acs3(
    method: str,
    path: str,
    query: Mapping[str, str | None],
    headers: Mapping[str, str],
    body: bytes | None,
    access_key_id: str,
    access_key_secret: str,
    *,
    action: str,
    version: str,
    date: datetime | None = None,
    nonce: str | None = None,
    security_token: str | None = None,
) -> dict[str, str]:
    """``headers`` plus what tea-openapi and alibabacloud-credentials add (§4.1, §5).

    ``headers`` must hold ``host`` (endpoint ``host[:port]``; it is signed, §5.1 step 8) and
    whatever else will be sent and so signed (``user-agent``, ``content-type`` for a form
    body). Added: ``x-acs-version``, ``x-acs-action``, ``x-acs-date``,
    ``x-acs-signature-nonce``, ``accept: application/json`` (unless given),
    ``x-acs-content-sha256``, ``x-acs-credentials-provider`` (``static_ak``/``static_sts``),
    ``x-acs-accesskey-id`` + ``x-acs-security-token`` for STS, and ``Authorization``.
    Send exactly the returned headers: each of them is signed.
    """
    if _header(headers, "host") is None:
        raise ValueError("ACS3 signs the Host header: pass headers['host'] = endpoint host[:port]")
    signed = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    _set_header(signed, "x-acs-version", version)
    _set_header(signed, "x-acs-action", action)
    _set_header(signed, "x-acs-date", iso_timestamp(date))
    _set_header(signed, "x-acs-signature-nonce", nonce or new_nonce())
    _default_header(signed, "accept", "application/json")
    _set_header(signed, "x-acs-content-sha256", content_sha256(body))
    provider = "static_sts" if security_token else "static_ak"
    _default_header(signed, "x-acs-credentials-provider", provider)
    if security_token:
        _set_header(signed, "x-acs-accesskey-id", access_key_id)
        _set_header(signed, "x-acs-security-token", security_token)
    names = acs3_signed_header_names(signed)
    canonical = acs3_canonical_request(method, path, query, signed, content_sha256(body), names)
    signature = acs3_signature(access_key_secret, acs3_string_to_sign(canonical))
    signed["Authorization"] = acs3_authorization(access_key_id, names, signature)
    return signed


class _Acs3Authorization(NamedTuple):
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def _parse_acs3_authorization(value: str | None) -> _Acs3Authorization:
    """``ACS3-HMAC-SHA256 Credential=..,SignedHeaders=a;b,Signature=..`` (§5.1 step 1)."""
    if not value:
        raise _incomplete("missing Authorization header")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ACS3_ALGORITHM:
        raise _incomplete(f"unsupported signature algorithm {algorithm!r}")
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    credential, names, signature = (
        fields.get(key, "") for key in ("Credential", "SignedHeaders", "Signature")
    )
    signed_headers = tuple(name.strip().lower() for name in names.split(";") if name.strip())
    if not (credential and signed_headers and signature):
        raise _incomplete("Authorization needs Credential, SignedHeaders and Signature")
    return _Acs3Authorization(credential, signed_headers, signature)


def _check_acs3_signed_headers(signed: tuple[str, ...], headers: Mapping[str, str]) -> None:
    """§5.1 step 3: the freshness/replay/body headers must be present *and* signed, and every
    declared name must have arrived (step 4: no names added or dropped)."""
    present = {name.lower() for name in headers}
    for name in ACS3_REQUIRED_SIGNED:
        if name not in present:
            raise _missing(name)
        if name not in signed:
            raise _incomplete(f"{name} must be listed in SignedHeaders")
    for name in signed:
        if name not in present:
            raise _incomplete(f"signed header {name} was not sent")


def _check_content_sha256(headers: Mapping[str, str], body: bytes) -> str:
    """§5.1 step 2. There is no dedicated gateway code; a body other than the one whose hash
    was signed makes the server's canonical request differ, so this is SignatureDoesNotMatch.
    """
    hashed = content_sha256(body)
    if (_header(headers, "x-acs-content-sha256") or "").strip() != hashed:
        detail = "(x-acs-content-sha256 is not the SHA-256 of the request body)"
        raise gateway_error("SignatureDoesNotMatch", detail)
    return hashed


def verify_acs3(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    lookup_secret: SecretLookup,
    *,
    now: datetime | None = None,
    max_skew: timedelta | None = MAX_SKEW,
    nonces: NonceCheck | None = None,
) -> VerifiedRequest:
    """Check an ACS3-HMAC-SHA256 request (§5.1) over the ``SignedHeaders`` the client declared,
    with header values exactly as received; ``query`` holds decoded values.

    Raises :class:`SignatureError`: ``IncompleteSignature`` (Authorization missing/malformed,
    another algorithm, a required header unsigned, a signed header not sent),
    ``MissingParameter`` (a required header absent), ``InvalidTimeStamp.Format``/``.Expired``
    (``x-acs-date``), ``InvalidAccessKeyId.NotFound``, ``SignatureDoesNotMatch`` (signature
    or body hash), ``SignatureNonceUsed`` (with ``nonces``).
    """
    auth = _parse_acs3_authorization(_header(headers, "Authorization"))
    _check_acs3_signed_headers(auth.signed_headers, headers)
    _check_fresh(_parse_iso(_header(headers, "x-acs-date") or "", "x-acs-date"), now, max_skew)
    secret = _secret_for(lookup_secret, auth.access_key_id)
    hashed = _check_content_sha256(headers, body)
    canonical = acs3_canonical_request(method, path, query, headers, hashed, auth.signed_headers)
    string_to_sign = acs3_string_to_sign(canonical)
    _check_signature(auth.signature, acs3_signature(secret, string_to_sign), string_to_sign)
    nonce = _header(headers, "x-acs-signature-nonce")
    _check_nonce(nonces, auth.access_key_id, nonce)
    return VerifiedRequest(
        auth.access_key_id,
        "acs3",
        action=_header(headers, "x-acs-action"),
        version=_header(headers, "x-acs-version"),
        security_token=_header(headers, "x-acs-security-token"),
        nonce=nonce,
    )


# --- RPC V1 HMAC-SHA1 (legacy option of 2.0 and IMM) ---------------------------------------


def rpc_v1_canonicalized_query(params: Mapping[str, str]) -> str:
    """All parameters but ``Signature``, sorted by name, as ``enc(name)=enc(value)`` joined by
    ``&`` with :func:`percent_encode` (§6 steps 1-2)."""
    names = sorted(name for name in params if name != "Signature")
    return "&".join(f"{percent_encode(name)}={percent_encode(params[name])}" for name in names)


def rpc_v1_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&enc(canonicalized query)`` over query and body parameters merged; the
    second encoding turns ``=``, ``&``, ``%`` into ``%3D``, ``%26``, ``%25`` (§6 step 3)."""
    return f"{method.upper()}&%2F&{percent_encode(rpc_v1_canonicalized_query(params))}"


def rpc_v1_signature(access_key_secret: str, string_to_sign: str) -> str:
    """base64(HMAC-SHA1(secret + ``&``, string to sign)) (§6 step 4)."""
    return _b64_hmac_sha1(access_key_secret + "&", string_to_sign)


def sign_rpc_v1(
    method: str,
    params: Mapping[str, str],
    access_key_id: str,
    access_key_secret: str,
    *,
    timestamp: datetime | None = None,
    nonce: str | None = None,
    security_token: str | None = None,
    body_params: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The full query-parameter dict of a V1 request, in tea-openapi's order (§6).

    ``params`` holds ``Action``, ``Version`` and the operation's query parameters. Returns
    ``Action, Format, Version, Timestamp, SignatureNonce``, the operation parameters,
    ``SecurityToken`` (STS), ``SignatureMethod, SignatureVersion, AccessKeyId, Signature``.
    ``body_params`` (the operation's form-body parameters) are signed but not returned: they
    travel in the body (:func:`form_encode`, sorted).
    """
    if "Action" not in params or "Version" not in params:
        raise ValueError("RPC V1 parameters need Action and Version")
    query = {
        "Action": params["Action"],
        "Format": params.get("Format", "json"),
        "Version": params["Version"],
        "Timestamp": iso_timestamp(timestamp),
        "SignatureNonce": nonce or new_nonce(),
    }
    query.update((k, v) for k, v in params.items() if k not in _RPC_RESERVED)
    if security_token:
        query["SecurityToken"] = security_token
    query.update(
        SignatureMethod=HMAC_SHA1, SignatureVersion=SIGNATURE_VERSION, AccessKeyId=access_key_id
    )
    string_to_sign = rpc_v1_string_to_sign(method, {**query, **(body_params or {})})
    query["Signature"] = rpc_v1_signature(access_key_secret, string_to_sign)
    return query


def _check_rpc_v1_params(params: Mapping[str, str]) -> str:
    """The Signature plus the §6 parameters the SDK always sends; returns the signature."""
    signature = params.get("Signature")
    if not signature:
        raise _incomplete("missing Signature parameter")
    for name in RPC_REQUIRED:
        if not params.get(name):
            raise _missing(name)
    if params["SignatureMethod"] != HMAC_SHA1 or params["SignatureVersion"] != SIGNATURE_VERSION:
        raise _incomplete("only SignatureMethod=HMAC-SHA1, SignatureVersion=1.0 are supported")
    return signature


def verify_rpc_v1(
    method: str,
    params: Mapping[str, str],
    lookup_secret: SecretLookup,
    *,
    now: datetime | None = None,
    max_skew: timedelta | None = MAX_SKEW,
    nonces: NonceCheck | None = None,
) -> VerifiedRequest:
    """Check a V1-signed request (§6). ``params`` = decoded query *merged with* the decoded
    form-body parameters (the body is signed too; :func:`verify_request` does the merge).

    Raises :class:`SignatureError`: ``IncompleteSignature`` (no ``Signature``, another
    method), ``MissingParameter``, ``InvalidTimeStamp.Format``/``.Expired`` (``Timestamp``),
    ``InvalidAccessKeyId.NotFound``, ``SignatureDoesNotMatch``, ``SignatureNonceUsed``.
    """
    signature = _check_rpc_v1_params(params)
    _check_fresh(_parse_iso(params["Timestamp"], "Timestamp"), now, max_skew)
    access_key_id = params["AccessKeyId"]
    secret = _secret_for(lookup_secret, access_key_id)
    string_to_sign = rpc_v1_string_to_sign(method, params)
    _check_signature(signature, rpc_v1_signature(secret, string_to_sign), string_to_sign)
    _check_nonce(nonces, access_key_id, params["SignatureNonce"])
    return VerifiedRequest(
        access_key_id,
        "rpc_v1",
        action=params.get("Action"),
        version=params.get("Version"),
        security_token=params.get("SecurityToken"),
        nonce=params["SignatureNonce"],
    )


# --- one entry point for the emulator ------------------------------------------------------


def detect_algorithm(headers: Mapping[str, str], query: Mapping[str, str]) -> Algorithm:
    """Which verifier applies, from the ``Authorization`` prefix or a ``Signature`` query
    parameter (§9 step 3). Raises ``IncompleteSignature`` when the request is unsigned."""
    authorization = (_header(headers, "Authorization") or "").strip()
    if authorization.startswith("acs "):
        return "roa"
    if authorization.startswith("ACS3-"):
        return "acs3"
    if authorization:
        raise _incomplete("unrecognised Authorization scheme")
    if "Signature" in query:
        return "rpc_v1"
    raise _incomplete("missing Authorization header")


def _form_params(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    """Decoded form-body parameters, or none when the body is not a form."""
    content_type = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE or not body:
        return {}
    return form_decode(body.decode("utf-8", "replace"))


def verify_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    lookup_secret: SecretLookup,
    *,
    now: datetime | None = None,
    max_skew: timedelta | None = MAX_SKEW,
    nonces: NonceCheck | None = None,
) -> VerifiedRequest:
    """Verify any request on the emulator's one port: 1.0 under ``/green/...`` (ROA), 2.0 and
    IMM at ``POST /`` (ACS3, or V1 with body parameters merged in); §9."""
    algorithm = detect_algorithm(headers, query)
    if algorithm == "rpc_v1":
        params = {**query, **_form_params(headers, body)}
        return verify_rpc_v1(
            method, params, lookup_secret, now=now, max_skew=max_skew, nonces=nonces
        )
    verify = verify_roa if algorithm == "roa" else verify_acs3
    return verify(
        method,
        path,
        query,
        headers,
        body,
        lookup_secret,
        now=now,
        max_skew=max_skew,
        nonces=nonces,
    )
