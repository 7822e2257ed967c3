"""The network guard for RTSP: a loopback relay to the vetted address that refuses redirects.

FFmpeg's RTSP client follows a ``3xx`` answer to any ``Location`` (it reconnects there
itself, resolving the new name), and with UDP transport it sends packets to the ``source=``
a server names. So an RTSP stream is read over TCP only (``rtsp_transport=tcp``: media
interleaved on the one control connection) and that connection goes through this relay:
FFmpeg connects to 127.0.0.1, the relay to the address vetted when the job opened the
stream (no second resolution), and it reads the server's messages: a redirect is recorded
as refused and the connection closed, so FFmpeg never learns the new location. Request
URIs are rewritten back to the original host on the way out.

Messages are split as RFC 2326 frames them: interleaved binary (``$``, channel, 16-bit
length) or a text head up to an empty line plus ``Content-Length`` bytes of body.
"""

from __future__ import annotations

import re
import select
import socket

from .loopback import LoopbackServer, close_quietly

MAX_HEAD = 64 * 1024
CONNECT_TIMEOUT = 10.0
BUFFER = 256 * 1024
_LENGTH = re.compile(rb"^content-length:\s*(\d+)\s*$", re.IGNORECASE | re.MULTILINE)
_STATUS = re.compile(rb"^RTSP/\d\.\d (\d{3})")
_LOCATION = re.compile(rb"^location:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class Refused(Exception):
    pass


class MessageSplitter:
    """One direction of an RTSP connection: bytes in, bytes to forward out; each text head
    passes through ``on_head`` (which may rewrite it or raise ``Refused``)."""

    def __init__(self, on_head):
        self.on_head = on_head
        self.buffer = b""
        self.pending = 0  # bytes of a body or interleaved frame still to pass unchanged

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        self.buffer += data
        while self.buffer:
            if self.pending:
                taken = self.buffer[:self.pending]
                out += taken
                self.buffer = self.buffer[len(taken):]
                self.pending -= len(taken)
            elif self.buffer[:1] == b"$":
                if len(self.buffer) < 4:
                    break
                self.pending = 4 + int.from_bytes(self.buffer[2:4], "big")
            else:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buffer) > MAX_HEAD:
                        raise Refused("RTSP message head too large")
                    break
                head, self.buffer = self.buffer[:end + 4], self.buffer[end + 4:]
                length = _LENGTH.search(head)
                out += self.on_head(head)
                self.pending = int(length.group(1)) if length else 0
        return bytes(out)


class RtspGuard(LoopbackServer):
    """Listens on 127.0.0.1 and relays each connection to ``address``:``port`` (vetted)."""

    thread_name = "moderation-guard-rtsp"

    def __init__(self, address: str, port: int, original_netloc: str):
        self.address, self.port, self.original = address, port, original_netloc.encode()
        self.refused: list[str] = []
        super().__init__()

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.local_port}"

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            upstream = socket.create_connection((self.address, self.port),
                                                timeout=CONNECT_TIMEOUT)
            self._track(client)
            self._track(upstream)
            for conn in (client, upstream):
                conn.settimeout(None)
            self._relay(client, upstream)
        except (OSError, Refused):
            return
        finally:
            for tracked in (client, upstream):
                if tracked is not None:
                    self._untrack(tracked)
                    close_quietly(conn)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        outgoing = MessageSplitter(self._request)
        incoming = MessageSplitter(self._answer)
        routes = {client: (upstream, outgoing), upstream: (client, incoming)}
        while not self._closed.is_set():
            readable, _, _ = select.select(list(routes), [], [], 0.5)
            for conn in readable:
                data = conn.recv(BUFFER)
                if not data:
                    return
                peer, splitter = routes[conn]
                peer.sendall(splitter.feed(data))

    def _request(self, head: bytes) -> bytes:
        """Request URIs name the server, not this relay."""
        return head.replace(b"rtsp://" + self.netloc.encode(), b"rtsp://" + self.original)

    def _answer(self, head: bytes) -> bytes:
        status = _STATUS.match(head)
        if status and 300 <= int(status.group(1)) < 400:
            location = _LOCATION.search(head)
            target = location.group(1).decode("latin-1") if location else "?"
            self.refused.append(f"RTSP redirect to {target[:200]}")
            raise Refused(target)
        return head
