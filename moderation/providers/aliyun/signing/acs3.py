"""ACS3-HMAC-SHA256 signing and verification: the SDK default for Content Moderation 2.0
and IMM (shared/specs/aliyun-protocol.md §4.1, §5, §5.1)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

from .common import (
    MAX_SKEW,
    NonceCheck,
    SecretLookup,
    VerifiedRequest,
    _check_fresh,
    _check_nonce,
    _check_signature,
    _default_header,
    _header,
    _incomplete,
    _missing,
    _parse_iso,
    _secret_for,
    _set_header,
    content_sha256,
    gateway_error,
    iso_timestamp,
    new_nonce,
    percent_encode,
)

ACS3_ALGORITHM = "ACS3-HMAC-SHA256"

# §5.1 step 3: a V3 request must sign at least these.
ACS3_REQUIRED_SIGNED = (
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
)


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
