"""Limits on fetching remote media ourselves (live streams, evidence copies): no private addresses.

A user who can post a stream URL must not make our workers read internal services
(SSRF). Every host we connect to is resolved by us and every address must be public
(``is_global``), or inside ``MODERATION["ALLOWED_NETWORKS"]``, unless
``MODERATION["ALLOW_PRIVATE_ADDRESSES"]`` is on (tests, emulators, intranets). The check
happens at connect time, on the address then connected to: FFmpeg's HTTP(S) goes through
the guarded loopback proxy (``guard_proxy``), other stream schemes get the vetted IP
literal (``pinned_url``), and ``guarded_http`` pins requests' connections the same way, so
neither a redirect, a playlist entry nor a DNS answer that changes between check and
connect reaches a private address.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

from .conf import moderation_settings
from .providers.errors import MediaError

STREAM_SCHEMES = ("http", "https", "rtmp", "rtmps", "rtsp", "srt")
DEFAULT_PORTS = {"http": 80, "https": 443, "rtmp": 1935, "rtmps": 443, "rtsp": 554}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address



def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address literal: a host only this machine can reach."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``ALLOWED_NETWORKS`` parsed (a bad entry is reported by check moderation.E013)."""
    networks = []
    for entry in moderation_settings.ALLOWED_NETWORKS or ():
        try:
            networks.append(ipaddress.ip_network(str(entry), strict=False))
        except ValueError:
            continue
    return networks


def is_allowed(address: Address) -> bool:
    """Public, or in an allowed network. IPv4-mapped IPv6 is judged as the IPv4 it carries."""
    if moderation_settings.ALLOW_PRIVATE_ADDRESSES:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_global and not address.is_multicast:
        return True
    return any(address in network for network in allowed_networks()
               if network.version == address.version)


def vetted_addresses(host: str, port: int | None = None) -> list[str]:
    """Every address ``host`` resolves to, once, all checked; connect only to these.

    Raises ``MediaError``: ``forbidden_address`` (any address private) or
    ``stream_unavailable`` (the name does not resolve).
    """
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise MediaError(f"cannot resolve {host!r}", code="stream_unavailable") from exc
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        if not is_allowed(ipaddress.ip_address(text)):
            raise MediaError(f"{host!r} resolves to a private address ({text})",
                             code="forbidden_address")
        if text not in addresses:
            addresses.append(text)
    return addresses


def check_remote_url(url: str, schemes: tuple[str, ...] = STREAM_SCHEMES) -> None:
    """Scheme allowed, host present and all its addresses allowed (a first, early check;
    the connections themselves are vetted again where they are made)."""
    parts = _parts(url, schemes)
    if not moderation_settings.ALLOW_PRIVATE_ADDRESSES:
        vetted_addresses(parts.hostname or "", _port(parts))


def pinned_url(url: str, schemes: tuple[str, ...] = STREAM_SCHEMES) -> str:
    """``url`` with its host replaced by a vetted IP literal, for protocols FFmpeg cannot
    send through a proxy (rtmp, rtsp, srt): FFmpeg then does not resolve the name again."""
    parts = _parts(url, schemes)
    if moderation_settings.ALLOW_PRIVATE_ADDRESSES:
        return url
    address = vetted_addresses(parts.hostname or "", _port(parts))[0]
    literal = f"[{address}]" if ":" in address else address
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + literal
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _parts(url: str, schemes: tuple[str, ...]):
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes:
        raise MediaError(f"URL scheme {parts.scheme!r} is not allowed", code="unsupported_url")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise MediaError(f"bad port in URL {url!r}", code="unsupported_url") from exc
    if not parts.hostname:
        raise MediaError(f"no host in URL {url!r}", code="unsupported_url")
    return parts


def _port(parts) -> int | None:
    return parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
