"""A guarded HTTP proxy on loopback, through which FFmpeg makes every HTTP(S) fetch.

FFmpeg follows redirects and fetches HLS variant playlists, segments and keys by itself,
on any host a (hostile) server names. Given ``http_proxy`` (an AVOption that the HLS
demuxer hands on to every nested request), FFmpeg sends each request to this proxy as an
absolute ``http://`` URL. The proxy resolves the host itself, vets every address
(``remote.vetted_addresses``) and connects to a vetted address: no DNS-rebinding window
between check and connect. A refused hop answers 403 and is recorded, so the stream job
ends with ``forbidden_address`` instead of a stream that silently lost segments.

FFmpeg speaks only plain http, to this proxy: its protocol allow-list is ``http,tcp,crypto``.
https is originated here: an ``https://host[:port]`` URL is handed to FFmpeg as
``http://host.tls.guard.invalid:port`` (``to_guarded_url``), and the proxy rewrites
``https://`` URLs the same way in ``Location`` headers and in playlists. FFmpeg's own
https would need ``tls`` and ``httpproxy`` on the allow-list, and an HLS playlist naming
``httpproxy://internal-host/`` would then make FFmpeg connect there directly (the HLS
demuxer admits any protocol whose name starts with "http"). Upstream TLS is not verified,
as FFmpeg's ``tls_verify`` defaults to off.

One request per upstream connection (``Connection: close``), so every request is vetted;
one proxy per opened stream (a thread, 0.2 ms to start and stop): the refusals belong to
that job and nothing is shared between jobs.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import re
import socket
import ssl
from urllib.parse import urlsplit

from .loopback import LoopbackServer, close_quietly
from .providers.errors import MediaError
from .remote import vetted_addresses

TLS_SUFFIX = ".tls.guard.invalid"  # .invalid never resolves: it only marks "https upstream"
MAX_HEAD = 64 * 1024  # request line + headers
MAX_PLAYLIST = 4 * 1024 * 1024
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
BUFFER = 256 * 1024
HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "proxy-authorization",
              "transfer-encoding", "te", "upgrade", "host", "accept-encoding")
_HTTPS = re.compile(rb"https://([A-Za-z0-9.\-]+)(?::(\d+))?", re.IGNORECASE)


def to_guarded_url(url: str) -> str:
    """``url`` as FFmpeg is given it: https becomes http to a marked host."""
    return _HTTPS.sub(_mark, url.encode("latin-1"), count=1).decode("latin-1")


def _mark(match: re.Match[bytes]) -> bytes:
    return b"http://%s%s:%s" % (match.group(1), TLS_SUFFIX.encode(), match.group(2) or b"443")


class GuardProxy(LoopbackServer):
    """Listens on 127.0.0.1 (a free port) until closed; ``url`` goes into ``http_proxy``."""

    thread_name = "moderation-guard-proxy"
    backlog = 64

    def __init__(self) -> None:
        scrub_no_proxy()
        self.refused: list[str] = []
        self.requests = 0
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}"

    # -- serving --

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        self._track(client)
        try:
            client.settimeout(CONNECT_TIMEOUT)
            head = _read_head(client)
            if head is None:
                return
            method, target = _request_line(head)
            with self._lock:
                self.requests += 1
            parts = urlsplit(target)
            if method not in ("GET", "HEAD") or parts.scheme != "http" or not parts.hostname:
                _answer(client, 405, "only GET and HEAD of absolute http:// URLs")
                return
            host, tls = parts.hostname, parts.hostname.endswith(TLS_SUFFIX)
            if tls:
                host = host[:-len(TLS_SUFFIX)]
            port = parts.port or (443 if tls else 80)
            upstream = self._connect(client, host, port)
            if upstream is None:
                return
            if tls:
                raw, upstream = upstream, _client_tls().wrap_socket(upstream,
                                                                    server_hostname=host)
                self._untrack(raw)
                self._track(upstream)
            self._exchange(client, upstream, method, parts, host, port, tls, head)
        except (OSError, ValueError, http.client.HTTPException):
            return
        finally:
            for conn in (client, upstream):
                if conn is not None:
                    self._untrack(conn)
                    close_quietly(conn)

    def _connect(self, client: socket.socket, host: str, port: int) -> socket.socket | None:
        """A connection to a vetted address of ``host``, or None after answering 403/502."""
        try:
            addresses = vetted_addresses(host, port)
        except MediaError as exc:
            if exc.code == "forbidden_address":
                with self._lock:
                    self.refused.append(f"{host}:{port} ({exc})")
                _answer(client, 403, str(exc))
            else:
                _answer(client, 502, str(exc))
            return None
        for address in addresses:
            try:
                upstream = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT)
            except OSError:
                continue
            self._track(upstream)
            return upstream
        _answer(client, 502, f"cannot connect to {host}:{port}")
        return None

    def _exchange(self, client: socket.socket, upstream: socket.socket, method: str,
                  parts, host: str, port: int, tls: bool, head: bytes) -> None:
        """One request upstream, its answer back (https URLs in it rewritten)."""
        upstream.settimeout(READ_TIMEOUT)
        conn = http.client.HTTPConnection(host, port, timeout=READ_TIMEOUT)
        conn.sock = upstream
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        name = f"[{host}]" if ":" in host else host
        conn.putheader("Host", name if port == (443 if tls else 80) else f"{name}:{port}")
        for key, value in _headers(head):
            if key.lower() not in HOP_BY_HOP:
                conn.putheader(key, value)
        conn.putheader("Accept-Encoding", "identity")
        conn.putheader("Connection", "close")
        conn.endheaders()
        answer = conn.getresponse()
        headers = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
        headers = [(k, to_guarded_url(v) if k.lower() == "location" else v) for k, v in headers]
        first = answer.read1(BUFFER) if method != "HEAD" else b""
        if first.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"#EXTM3U"):
            body = first + answer.read(MAX_PLAYLIST - len(first) + 1)
            if len(body) > MAX_PLAYLIST:
                raise ValueError("playlist too large")
            body = _HTTPS.sub(_mark, body)
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
            _send_head(client, answer, headers)
            client.sendall(body)
            return
        _send_head(client, answer, headers)
        data = first
        while data and not self._closed.is_set():
            client.sendall(data)
            data = answer.read1(BUFFER)


@functools.cache
def _client_tls() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # as FFmpeg's tls_verify=0 default
    return context


def scrub_no_proxy() -> None:
    """FFmpeg connects directly, bypassing ``http_proxy``, to hosts that match the
    ``no_proxy`` environment variable (it reads only the lower-case name). Move its value to
    ``NO_PROXY``, which Python's libraries read just the same, so FFmpeg never sees it."""
    value = os.environ.pop("no_proxy", None)
    if value and not os.environ.get("NO_PROXY"):
        os.environ["NO_PROXY"] = value


def _read_head(client: socket.socket) -> bytes | None:
    """The request head; a request body is not expected (GET/HEAD) and not read."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(8192)
        if not chunk:
            return None
        data += chunk
        if len(data) > MAX_HEAD:
            _answer(client, 431, "request head too large")
            return None
    return data.partition(b"\r\n\r\n")[0]


def _request_line(head: bytes) -> tuple[str, str]:
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    method, target, version = line.split(" ", 2)
    if not version.startswith("HTTP/"):
        raise ValueError(line)
    return method.upper(), target


def _headers(head: bytes) -> list[tuple[str, str]]:
    pairs = []
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip():
            pairs.append((key.strip(), value.strip()))
    return pairs


def _send_head(client: socket.socket, answer: http.client.HTTPResponse,
               headers: list[tuple[str, str]]) -> None:
    lines = [f"HTTP/1.1 {answer.status} {answer.reason}",
             *(f"{k}: {v}" for k, v in headers), "Connection: close", "", ""]
    client.sendall("\r\n".join(lines).encode("latin-1"))


def _answer(client: socket.socket, status: int, reason: str) -> None:
    body = f"moderation network guard: {reason}\n".encode()
    titles = {400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed",
              431: "Request Header Fields Too Large", 502: "Bad Gateway"}
    head = (f"HTTP/1.1 {status} {titles.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    with contextlib.suppress(OSError):
        client.sendall(head.encode() + body)


