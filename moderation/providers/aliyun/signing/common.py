"""What the three signers share (shared/specs/aliyun-protocol.md): the wire encodings,
digests and clocks, and case-insensitive header helpers. The server side (the emulator's
gateway) has its own implementation in :mod:`moderation.emulator.verify`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qsl, quote, urlencode

HMAC_SHA1 = "HMAC-SHA1"
SIGNATURE_VERSION = "1.0"
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # x-acs-date (§4.1) and Timestamp (§6)
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


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
    """Decode a query string or form body with form rules (``+`` → space, ``%XX`` → UTF-8),
    the inverse of :func:`form_encode`: the decoded values are what a signature covers."""
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
