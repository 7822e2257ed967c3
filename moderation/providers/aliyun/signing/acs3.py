"""ACS3-HMAC-SHA256 signing: the SDK default for Content Moderation 2.0 and IMM
(shared/specs/aliyun-protocol.md §4.1, §5)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime

from .common import (
    _default_header,
    _header,
    _set_header,
    content_sha256,
    iso_timestamp,
    new_nonce,
    percent_encode,
)

ACS3_ALGORITHM = "ACS3-HMAC-SHA256"



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
    ``headers``, as the SDK does)."""
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
