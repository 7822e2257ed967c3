"""ROA HMAC-SHA1 signing: Content Moderation 1.0, ``Authorization: acs AK:SIG``
(shared/specs/aliyun-protocol.md §3)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from .common import (
    HMAC_SHA1,
    SIGNATURE_VERSION,
    _b64_hmac_sha1,
    _default_header,
    _header,
    _set_header,
    content_md5,
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
