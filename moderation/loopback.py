"""A server on 127.0.0.1 (a free port) that the network guard puts between FFmpeg and the
world: a thread accepts connections until ``close()``, each is served in a thread of its
own by the subclass's ``_serve``, and every socket it ``_track``s is closed with it (so a
stream that ends never leaves a relay reading on)."""

from __future__ import annotations

import contextlib
import socket
import threading


class LoopbackServer:
    thread_name = "moderation-loopback"
    backlog = 8

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0), backlog=self.backlog)
        self._server.settimeout(0.2)
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name=self.thread_name,
                                        daemon=True)
        self._thread.start()

    @property
    def local_port(self) -> int:
        return self._server.getsockname()[1]

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes accept() at once
        self._thread.join(2)
        self._server.close()
        with self._lock:
            for conn in list(self._sockets):
                close_quietly(conn)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        raise NotImplementedError

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._sockets.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(conn)


def close_quietly(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.close()
