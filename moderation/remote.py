"""Limits on fetching remote media ourselves (live streams, URLs): no private addresses.

A user who can post a stream URL must not make our workers read internal services
(SSRF). Hosts are resolved and every address must be public unless
``MODERATION["ALLOW_PRIVATE_ADDRESSES"]`` is on (tests, emulators, intranets).
Known limit: the decoder resolves the name again when it connects (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from .conf import moderation_settings
from .providers.errors import MediaError

STREAM_SCHEMES = ("http", "https", "rtmp", "rtmps", "rtsp", "srt")


def check_remote_url(url: str, schemes: tuple[str, ...] = STREAM_SCHEMES) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes:
        raise MediaError(f"URL scheme {parts.scheme!r} is not allowed", code="unsupported_url")
    if not parts.hostname:
        raise MediaError(f"no host in URL {url!r}", code="unsupported_url")
    if moderation_settings.ALLOW_PRIVATE_ADDRESSES:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise MediaError(f"cannot resolve {parts.hostname!r}", code="stream_unavailable") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise MediaError(f"{parts.hostname!r} resolves to a private address ({address})",
                             code="forbidden_address")
