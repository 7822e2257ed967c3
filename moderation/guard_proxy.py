"""A guarded HTTP forward proxy on loopback, through which FFmpeg makes every HTTP(S) fetch.

FFmpeg follows redirects and fetches HLS variant playlists, segments and keys by itself,
on any host a (hostile) server names. Given ``http_proxy`` (an AVOption that the HLS
demuxer hands on to every nested request), FFmpeg sends plain http as absolute-form
requests and tunnels https with ``CONNECT`` (its ``httpproxy`` protocol), so each hop
reaches this proxy first. The proxy resolves the target host itself, vets every address
(``remote.vetted_addresses``) and connects to a vetted address: no DNS-rebinding window
between check and connect. A refused hop answers 403 and is recorded, so the stream job
can end with ``forbidden_address`` instead of a stream that silently lost segments.

One proxy per opened stream (a listening socket and a thread, well under a millisecond to
start): the refusals belong to that job and nothing is shared between jobs. A plain http
request is forwarded with ``Connection: close`` (one request per connection, each vetted);
a ``CONNECT`` tunnel carries TLS to the one vetted upstream it was opened for.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
from urllib.parse import urlsplit

from .providers.errors import MediaError
from .remote import vetted_addresses

MAX_HEAD = 64 * 1024  # request line + headers
CONNECT_TIMEOUT = 10.0
BUFFER = 256 * 1024


class GuardProxy:
    """Listens on 127.0.0.1 (a free port) until closed; ``url`` goes into ``http_proxy``."""

    def __init__(self) -> None:
        scrub_no_proxy()
        self.refused: list[str] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._server.settimeout(0.2)
        self._connections: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name="moderation-guard-proxy",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes accept() at once
        self._thread.join(2)
        self._server.close()
        with self._lock:
            for conn in list(self._connections):
                _close(conn)

    def __enter__(self) -> GuardProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving --

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        self._track(client)
        try:
            client.settimeout(CONNECT_TIMEOUT)
            head, rest = _read_head(client)
            if head is None:
                return
            method, target, version = _request_line(head)
            with self._lock:
                self.requests += 1
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = self._connect(client, host, int(port) if port.isdigit() else 0)
                if upstream is None:
                    return
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                parts = urlsplit(target)
                if parts.scheme != "http" or not parts.hostname:
                    _answer(client, 400, "only absolute http:// requests and CONNECT")
                    return
                upstream = self._connect(client, parts.hostname, parts.port or 80)
                if upstream is None:
                    return
                path = parts.path or "/"
                if parts.query:
                    path += "?" + parts.query
                line = f"{method} {path} {version}\r\n".encode("latin-1")
                upstream.sendall(line + _one_request(head) + rest)
                rest = b""
            if rest:
                upstream.sendall(rest)
            self._relay(client, upstream)
        except (OSError, ValueError):
            return
        finally:
            for conn in (client, upstream):
                if conn is not None:
                    self._untrack(conn)
                    _close(conn)

    def _connect(self, client: socket.socket, host: str, port: int) -> socket.socket | None:
        """A connection to a vetted address of ``host``, or None after answering 403/502."""
        if not host or not 0 < port < 65536:
            _answer(client, 400, "bad target")
            return None
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

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        for conn in (client, upstream):
            conn.settimeout(None)
        peers = {client: upstream, upstream: client}
        while not self._closed.is_set():
            readable, _, _ = select.select(list(peers), [], [], 0.5)
            for conn in readable:
                data = conn.recv(BUFFER)
                if not data:
                    return
                peers[conn].sendall(data)

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)


def scrub_no_proxy() -> None:
    """FFmpeg connects directly, bypassing ``http_proxy``, to hosts that match the
    ``no_proxy`` environment variable (it reads only the lower-case name). Move its value to
    ``NO_PROXY``, which Python's libraries read just the same, so FFmpeg never sees it."""
    value = os.environ.pop("no_proxy", None)
    if value and not os.environ.get("NO_PROXY"):
        os.environ["NO_PROXY"] = value


def _read_head(client: socket.socket) -> tuple[bytes | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(8192)
        if not chunk:
            return None, b""
        data += chunk
        if len(data) > MAX_HEAD:
            _answer(client, 431, "request head too large")
            return None, b""
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def _one_request(head: bytes) -> bytes:
    """The header lines with ``Connection: close``: one request per connection, so that
    every request (its target host) reaches the proxy and is vetted, none rides unseen on a
    kept-alive connection."""
    hop_by_hop = (b"connection:", b"keep-alive:", b"proxy-connection:", b"proxy-authorization:")
    lines = head.split(b"\r\n")[1:]
    kept = [line for line in lines if line and not line.lower().startswith(hop_by_hop)]
    return b"\r\n".join([*kept, b"Connection: close", b"", b""])


def _request_line(head: bytes) -> tuple[str, str, str]:
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    method, target, version = line.split(" ", 2)
    if not version.startswith("HTTP/"):
        raise ValueError(line)
    return method.upper(), target, version


def _answer(client: socket.socket, status: int, reason: str) -> None:
    body = f"moderation network guard: {reason}\n".encode()
    titles = {400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large",
              502: "Bad Gateway"}
    head = (f"HTTP/1.1 {status} {titles.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    with contextlib.suppress(OSError):
        client.sendall(head.encode() + body)


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.close()
