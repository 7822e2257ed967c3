"""ROA HMAC-SHA1 signing and verification: Content Moderation 1.0,
``Authorization: acs AK:SIG`` (shared/specs/aliyun-protocol.md §3, §3.1)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from .common import (
    HMAC_SHA1,
    MAX_SKEW,
    SIGNATURE_VERSION,
    NonceCheck,
    SecretLookup,
    VerifiedRequest,
    _b64_hmac_sha1,
    _check_fresh,
    _check_nonce,
    _check_signature,
    _default_header,
    _header,
    _incomplete,
    _missing,
    _parse_http_date,
    _secret_for,
    _set_header,
    content_md5,
    gateway_error,
    http_date,
)

ROA_VERSION = "2018-05-09"


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
