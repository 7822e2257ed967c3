"""The emulator's API gateway: checks request signatures as Alibaba Cloud does.

A server-side implementation written apart from the client's signer
(:mod:`moderation.providers.aliyun.signing`) on purpose: the two share no code, only the wire
and the official-SDK test vectors (shared/specs/aliyun-signature-vectors.json, checked by
tests/providers/aliyun/test_aliyun_signing.py), so a mistake in one is caught by the other
instead of being mirrored. Standard library only.

Three algorithms (shared/specs/aliyun-protocol.md):

* ROA HMAC-SHA1 (§3, §3.1): Content Moderation 1.0, ``Authorization: acs AK:SIG``;
* ACS3-HMAC-SHA256 (§5, §5.1): the SDK default for 2.0 and IMM;
* RPC V1 HMAC-SHA1 (§6): ``Signature`` in the query (GET, or POST as tea-openapi sends it)
  or in a form body (POST as ``@alicloud/pop-core`` sends it).

Failures raise :class:`SignatureError` with the code, message and HTTP status the gateway
answers (§8.1). Inputs are plain values: headers any mapping (names in any case), queries
and form bodies *decoded* (:func:`form_decode`), bodies raw bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import parse_qsl

Algorithm = Literal["roa", "acs3", "rpc_v1"]
#: Given an AccessKey id, its secret, or None when the id is unknown.
SecretLookup = Callable[[str], str | None]
#: Given (AccessKey id, nonce): True the first time, False for a replay (see NonceCache).
NonceCheck = Callable[[str, str], bool]

MAX_SKEW = timedelta(minutes=15)  # §3.1 step 5, §5.1 step 7, §8.1
ACS3 = "ACS3-HMAC-SHA256"
HMAC_SHA1 = "HMAC-SHA1"
V1_VERSION = "1.0"
FORM_TYPE = "application/x-www-form-urlencoded"
#: §5.1 step 3: a V3 request must send and sign at least these.
ACS3_MUST_SIGN = (
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
)
#: §6: what a V1 request always carries besides ``Signature``.
V1_REQUIRED = ("AccessKeyId", "SignatureMethod", "SignatureNonce", "SignatureVersion",
               "Timestamp")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")

# --- errors and results --------------------------------------------------------------------

#: §8.1: HTTP status and conventional message per gateway code.
GATEWAY_ERRORS: dict[str, tuple[int, str]] = {
    "IncompleteSignature": (400, "The request signature does not conform to Aliyun standards."),
    "InvalidAccessKeyId.NotFound": (404, "Specified access key is not found."),
    "SignatureDoesNotMatch": (400, "Specified signature is not matched with our calculation."),
    "InvalidTimeStamp.Format": (400, "Specified time stamp or date value is not well formatted."),
    "InvalidTimeStamp.Expired": (400, "Specified time stamp or date value is expired."),
    "SignatureNonceUsed": (400, "Specified signature nonce was used already."),
    "InvalidContentMD5": (400, "The Content-MD5 you specified does not match the request body."),
}


class SignatureError(Exception):
    """A request the gateway refuses; answered ``http_status`` with
    ``{"Code": code, "Message": message, ...}`` (§8.1)."""

    def __init__(self, code: str, message: str, http_status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


def gateway_error(code: str, detail: str = "") -> SignatureError:
    """The §8.1 error ``code`` with its status and conventional message (plus ``detail``)."""
    status, message = GATEWAY_ERRORS[code]
    return SignatureError(code, f"{message} {detail}" if detail else message, status)


def missing_parameter(name: str) -> SignatureError:
    """§8.1 ``MissingParameter``: a required header or parameter is absent."""
    return SignatureError(
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not '
        "supplied.",
        400,
    )


def _incomplete(detail: str) -> SignatureError:
    return gateway_error("IncompleteSignature", f"({detail})")


def _mismatch(string_to_sign: str) -> SignatureError:
    """``SignatureDoesNotMatch`` ending with the server's string to sign, which the 1.0 core
    SDK compares with its own to explain the failure (emulator notes §4)."""
    status, message = GATEWAY_ERRORS["SignatureDoesNotMatch"]
    return SignatureError("SignatureDoesNotMatch",
                          f"{message} server string to sign is:{string_to_sign}", status)


@dataclass(frozen=True)
class VerifiedRequest:
    """What the gateway vouches for: who signed, how, and the signed action/version (the
    emulator routes on them, since 2.0 and IMM share one path; §9)."""

    access_key_id: str
    algorithm: Algorithm
    action: str | None = None
    version: str | None = None
    security_token: str | None = None
    nonce: str | None = None


class NonceCache:
    """Remembers (AccessKey id, nonce) pairs for ``ttl`` to refuse replays (§5.1 step 7).

    The default ttl spans the whole ±15 min freshness window, so a replay is refused for as
    long as its date is accepted. Thread-safe; memory is bounded by request rate times ttl.
    """

    def __init__(self, ttl: timedelta = 2 * MAX_SKEW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl.total_seconds()
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, access_key_id: str, nonce: str) -> bool:
        key = (access_key_id, nonce)
        with self._lock:
            now = self._clock()
            while self._seen and next(iter(self._seen.values())) < now - self._ttl:
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


# --- wire helpers --------------------------------------------------------------------------


def form_decode(raw: str) -> dict[str, str]:
    """A query string or form body decoded with form rules (``+`` is a space): the values
    every verifier signs over (§3.1 step 3, §5.1 step 5)."""
    return dict(parse_qsl(raw, keep_blank_values=True))


class _Headers:
    """Case-insensitive view of received headers; the last spelling of a name wins."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.raw = headers
        self.last = {name.lower(): value for name, value in headers.items()}

    def get(self, name: str) -> str | None:
        return self.last.get(name.lower())


def form_params(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    """Decoded form-body parameters (2.0 body operations §4.1, pop-core POST), or none when
    the body is not ``application/x-www-form-urlencoded``."""
    content_type = (_Headers(headers).get("content-type") or "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE or not body:
        return {}
    return form_decode(body.decode("utf-8", "replace"))


def rfc3986(value: str) -> str:
    """Percent-encode all but ``A-Z a-z 0-9 - _ . ~``, UTF-8, upper-case hex (§5 step 3,
    §6 step 2)."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in value.encode("utf-8"))


def _hmac_sha1_b64(key: str, message: str) -> str:
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parse_http_date(value: str) -> datetime:
    try:
        return _utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        raise gateway_error("InvalidTimeStamp.Format", f"(Date: {value!r})") from None


def _parse_iso(value: str, name: str) -> datetime:
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise gateway_error("InvalidTimeStamp.Format", f"({name}: {value!r})") from None


def _check_fresh(signed_at: datetime, now: datetime | None, max_skew: timedelta | None) -> None:
    if max_skew is not None and abs(_utc(now) - signed_at) > max_skew:
        stamp = signed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        raise gateway_error("InvalidTimeStamp.Expired", f"(signed at {stamp})")


def _secret(lookup: SecretLookup, access_key_id: str) -> str:
    secret = lookup(access_key_id)
    if secret is None:
        raise gateway_error("InvalidAccessKeyId.NotFound", f"({access_key_id})")
    return secret


def _compare(given: str, expected: str, string_to_sign: str) -> None:
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise _mismatch(string_to_sign)


def _check_nonce(nonces: NonceCheck | None, access_key_id: str, nonce: str | None) -> None:
    """After the signature, so that forged requests burn no nonces."""
    if nonces is not None and nonce and not nonces(access_key_id, nonce):
        raise gateway_error("SignatureNonceUsed", f"({nonce})")


# --- ROA HMAC-SHA1 (§3.1) ------------------------------------------------------------------


def roa_string_to_sign(method: str, path: str, query: Mapping[str, str],
                       headers: Mapping[str, str]) -> str:
    """The §3 step 2 string: method, Accept, Content-MD5, Content-Type, Date (empty lines when
    absent), every ``x-acs-*`` header lower-cased and sorted, then the path with the decoded
    query sorted by name and not encoded."""
    view = _Headers(headers)
    lines = [method.upper()]
    lines += [view.get(name) or "" for name in ("accept", "content-md5", "content-type", "date")]
    acs = sorted((name, value) for name, value in view.last.items() if name.startswith("x-acs-"))
    resource = path
    if query:
        resource += "?" + "&".join(f"{name}={query[name]}" for name in sorted(query))
    return "\n".join(lines) + "\n" + "".join(f"{n}:{v}\n" for n, v in acs) + resource


def verify_roa(method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
               body: bytes, lookup_secret: SecretLookup, *, now: datetime | None = None,
               max_skew: timedelta | None = MAX_SKEW,
               nonces: NonceCheck | None = None) -> VerifiedRequest:
    """Check a ROA request (§3.1). ``Content-MD5`` is checked when sent; a missing one is an
    empty line of the string to sign, as the protocol has it (the TypeScript SDK sends none).

    Raises ``IncompleteSignature``, ``MissingParameter`` (no ``Date``),
    ``InvalidTimeStamp.Format``/``.Expired``, ``InvalidAccessKeyId.NotFound``,
    ``InvalidContentMD5``, ``SignatureDoesNotMatch``, ``SignatureNonceUsed``.
    """
    view = _Headers(headers)
    authorization = view.get("authorization")
    if not authorization:
        raise _incomplete("missing Authorization header")
    if not authorization.startswith("acs "):
        raise _incomplete("Authorization must start with 'acs '")
    access_key_id, colon, signature = authorization[4:].rpartition(":")
    if not (colon and access_key_id and signature):
        raise _incomplete("Authorization must be 'acs <AccessKeyId>:<Signature>'")
    date = view.get("date")
    if date is None:
        raise missing_parameter("Date")
    _check_fresh(_parse_http_date(date), now, max_skew)
    secret = _secret(lookup_secret, access_key_id)
    declared_md5 = view.get("content-md5")
    if declared_md5 is not None:
        actual = base64.b64encode(hashlib.md5(body).digest()).decode()
        if declared_md5.strip() != actual:
            raise gateway_error("InvalidContentMD5")
    string_to_sign = roa_string_to_sign(method, path, query, headers)
    _compare(signature, _hmac_sha1_b64(secret, string_to_sign), string_to_sign)
    nonce = view.get("x-acs-signature-nonce")
    _check_nonce(nonces, access_key_id, nonce)
    return VerifiedRequest(access_key_id, "roa", action=view.get("x-acs-action"),
                           version=view.get("x-acs-version"),
                           security_token=view.get("x-acs-security-token"), nonce=nonce)


# --- ACS3-HMAC-SHA256 (§5.1) ---------------------------------------------------------------


def acs3_canonical_request(method: str, path: str, query: Mapping[str, str],
                           headers: Mapping[str, str], signed: Iterable[str],
                           hashed_payload: str) -> str:
    """§5 step 6 over the declared ``signed`` names: method, path, the query sorted by name
    (values RFC 3986-encoded, names as they are), each signed header's trimmed values (several
    spellings joined by ``,`` after sorting), the names, the payload hash."""
    names = sorted({name.lower() for name in signed})
    values: dict[str, list[str]] = {}
    for name, value in headers.items():
        values.setdefault(name.lower(), []).append(value.strip())
    canonical_query = "&".join(f"{name}={rfc3986(query[name])}" for name in sorted(query))
    canonical_headers = "".join(f"{n}:{','.join(sorted(values.get(n, [])))}\n" for n in names)
    return "\n".join([method.upper(), path, canonical_query, canonical_headers,
                      ";".join(names), hashed_payload])


def _acs3_authorization(value: str | None) -> tuple[str, tuple[str, ...], str]:
    """(AccessKey id, signed header names, signature) from the §5 step 9 header."""
    if not value:
        raise _incomplete("missing Authorization header")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ACS3:
        raise _incomplete(f"unsupported signature algorithm {algorithm!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, _, item = part.strip().partition("=")
        fields[key] = item
    credential, signature = fields.get("Credential", ""), fields.get("Signature", "")
    signed = tuple(n.strip().lower() for n in fields.get("SignedHeaders", "").split(";")
                   if n.strip())
    if not (credential and signed and signature):
        raise _incomplete("Authorization needs Credential, SignedHeaders and Signature")
    return credential, signed, signature


def verify_acs3(method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
                body: bytes, lookup_secret: SecretLookup, *, now: datetime | None = None,
                max_skew: timedelta | None = MAX_SKEW,
                nonces: NonceCheck | None = None) -> VerifiedRequest:
    """Check an ACS3-HMAC-SHA256 request (§5.1) over the headers the client declared, their
    values as received.

    Raises ``IncompleteSignature`` (Authorization missing or malformed, another algorithm, a
    required header unsigned, a signed header not sent), ``MissingParameter``,
    ``InvalidTimeStamp.Format``/``.Expired``, ``InvalidAccessKeyId.NotFound``,
    ``SignatureDoesNotMatch`` (signature or body hash), ``SignatureNonceUsed``.
    """
    view = _Headers(headers)
    access_key_id, signed, signature = _acs3_authorization(view.get("authorization"))
    for name in ACS3_MUST_SIGN:
        if view.get(name) is None:
            raise missing_parameter(name)
        if name not in signed:
            raise _incomplete(f"{name} must be listed in SignedHeaders")
    for name in signed:
        if view.get(name) is None:
            raise _incomplete(f"signed header {name} was not sent")
    _check_fresh(_parse_iso(view.get("x-acs-date") or "", "x-acs-date"), now, max_skew)
    secret = _secret(lookup_secret, access_key_id)
    hashed = hashlib.sha256(body).hexdigest()
    if (view.get("x-acs-content-sha256") or "").strip() != hashed:
        raise gateway_error("SignatureDoesNotMatch",
                            "(x-acs-content-sha256 is not the SHA-256 of the request body)")
    canonical = acs3_canonical_request(method, path, query, headers, signed, hashed)
    string_to_sign = f"{ACS3}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    _compare(signature, expected, string_to_sign)
    nonce = view.get("x-acs-signature-nonce")
    _check_nonce(nonces, access_key_id, nonce)
    return VerifiedRequest(access_key_id, "acs3", action=view.get("x-acs-action"),
                           version=view.get("x-acs-version"),
                           security_token=view.get("x-acs-security-token"), nonce=nonce)


# --- RPC V1 HMAC-SHA1 (§6) -----------------------------------------------------------------


def rpc_v1_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&`` + the encoded canonical query: every parameter but ``Signature``,
    sorted by name, ``enc(name)=enc(value)`` joined by ``&``, encoded once more (§6)."""
    pairs = "&".join(f"{rfc3986(name)}={rfc3986(params[name])}"
                     for name in sorted(params) if name != "Signature")
    return f"{method.upper()}&%2F&{rfc3986(pairs)}"


def verify_rpc_v1(method: str, params: Mapping[str, str], lookup_secret: SecretLookup, *,
                  now: datetime | None = None, max_skew: timedelta | None = MAX_SKEW,
                  nonces: NonceCheck | None = None) -> VerifiedRequest:
    """Check a V1 request (§6); ``params`` = the decoded query *and* form-body parameters
    merged (the body is signed too; :func:`verify_request` merges them).

    Raises ``IncompleteSignature`` (no ``Signature``, another method), ``MissingParameter``,
    ``InvalidTimeStamp.Format``/``.Expired`` (``Timestamp``), ``InvalidAccessKeyId.NotFound``,
    ``SignatureDoesNotMatch``, ``SignatureNonceUsed``.
    """
    signature = params.get("Signature")
    if not signature:
        raise _incomplete("missing Signature parameter")
    for name in V1_REQUIRED:
        if not params.get(name):
            raise missing_parameter(name)
    if params["SignatureMethod"] != HMAC_SHA1 or params["SignatureVersion"] != V1_VERSION:
        raise _incomplete("only SignatureMethod=HMAC-SHA1, SignatureVersion=1.0 are supported")
    _check_fresh(_parse_iso(params["Timestamp"], "Timestamp"), now, max_skew)
    access_key_id = params["AccessKeyId"]
    secret = _secret(lookup_secret, access_key_id)
    string_to_sign = rpc_v1_string_to_sign(method, params)
    _compare(signature, _hmac_sha1_b64(secret + "&", string_to_sign), string_to_sign)
    _check_nonce(nonces, access_key_id, params["SignatureNonce"])
    return VerifiedRequest(access_key_id, "rpc_v1", action=params.get("Action"),
                           version=params.get("Version"),
                           security_token=params.get("SecurityToken"),
                           nonce=params["SignatureNonce"])


# --- one entry point -----------------------------------------------------------------------


def detect_algorithm(headers: Mapping[str, str], query: Mapping[str, str],
                     form: Mapping[str, str] | None = None) -> Algorithm:
    """Which verifier applies (§9 step 3): the ``Authorization`` prefix, else a ``Signature``
    parameter in the query or the form body. ``IncompleteSignature`` when unsigned."""
    authorization = (_Headers(headers).get("authorization") or "").strip()
    if authorization.startswith("acs "):
        return "roa"
    if authorization.startswith("ACS3-"):
        return "acs3"
    if authorization:
        raise _incomplete("unrecognised Authorization scheme")
    if "Signature" in query or (form and "Signature" in form):
        return "rpc_v1"
    raise _incomplete("missing Authorization header")


def verify_request(method: str, path: str, query: Mapping[str, str],
                   headers: Mapping[str, str], body: bytes, lookup_secret: SecretLookup, *,
                   now: datetime | None = None, max_skew: timedelta | None = MAX_SKEW,
                   nonces: NonceCheck | None = None) -> VerifiedRequest:
    """Verify any request on the emulator's port: ROA (1.0, ``/green/...``), ACS3 or V1 (2.0
    and IMM at ``/``), V1 with the form-body parameters merged into the query's (§9)."""
    form = form_params(headers, body)
    algorithm = detect_algorithm(headers, query, form)
    if algorithm == "rpc_v1":
        return verify_rpc_v1(method, {**query, **form}, lookup_secret, now=now,
                             max_skew=max_skew, nonces=nonces)
    verify = verify_roa if algorithm == "roa" else verify_acs3
    return verify(method, path, query, headers, body, lookup_secret, now=now,
                  max_skew=max_skew, nonces=nonces)
