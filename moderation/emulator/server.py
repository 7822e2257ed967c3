"""Serve the emulator on loopback with the standard library, for tests and the command.

A threaded :mod:`wsgiref` server in a daemon thread: no extra dependency, several SDK calls
at once, and ``stop()`` releases the port. Plain HTTP only; aim the 2.0 SDK at it with
``Config(endpoint=running.endpoint, protocol="http")`` (emulator notes §1.2).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from . import green, guardrails
from .app import SERVER_URL_KEY, EmulatorApp, Faults, Routes
from .config import EmulatorConfig
from .green_video import routes as green_routes
from .guardrails_video import VideoService
from .imm import routes as imm_routes
from .video_tasks import VideoTasks, WsgiApp

logger = logging.getLogger(__name__)


def default_routes(tasks: VideoTasks | None = None) -> Routes:
    """Every operation the emulator implements, keyed by (action, version) or, for 1.0,
    (path, version); the asynchronous operations need the per-emulator :class:`VideoTasks`
    that holds their tasks, so without one only the stateless operations (1.0 sync scans
    and feedback, 2.0 ``ImageModeration``) are served."""
    routes: dict = {**green.ROUTES, **guardrails.ROUTES}
    if tasks is not None:
        routes.update(VideoService(tasks.config, tasks).routes())
        routes.update(imm_routes(tasks))
        routes.update(green_routes(tasks))
    return routes


def make_app(config: EmulatorConfig, routes: Routes | None = None) -> EmulatorApp:
    """The WSGI app with the given routes (default: the stateless ones); usable under any
    WSGI server. :func:`start` adds the video operations and their temporary files."""
    return EmulatorApp(config, default_routes() if routes is None else routes)


def make_full_app(config: EmulatorConfig) -> tuple[WsgiApp, VideoTasks, EmulatorApp]:
    """Every default operation, video included: the WSGI app to serve, the video state to
    close on stop, and the emulator app itself (its ``faults`` and counters)."""
    tasks = VideoTasks(config)
    emulator = EmulatorApp(config, default_routes(tasks))
    return tasks.wsgi(emulator), tasks, emulator


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went silent past read_timeout: a line in the log, not a traceback.
        if isinstance(sys.exc_info()[1], TimeoutError):
            logger.info("emulator: %s sent nothing for the read timeout; connection closed",
                        client_address[0])
            return
        super().handle_error(request, client_address)


class _Handler(WSGIRequestHandler):
    """Logs through :mod:`logging`, and keeps the environ true to the wire."""

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        # wsgiref fills in "text/plain" when no Content-Type was sent; a query-only SDK
        # request has none (§4.1), and the form parser must not see one.
        if self.headers.get("content-type") is None:
            environ.pop("CONTENT_TYPE", None)
        # The address this client actually connected to: temporary-file URLs are built on it,
        # not on the Host header, which a client may send without the port (or not at all).
        host, port = self.connection.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        environ[SERVER_URL_KEY] = f"http://{host}:{port}"
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


@dataclass
class RunningEmulator:
    """A started emulator: ``url`` for raw HTTP, ``endpoint`` (host:port) for the SDKs."""

    config: EmulatorConfig
    server: WSGIServer
    thread: threading.Thread
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    app: EmulatorApp | None = None
    tasks: VideoTasks | None = None

    @property
    def faults(self) -> Faults:
        """Script trouble for the next requests: ``running.faults.add(Fault("error"))``."""
        assert self.app is not None
        return self.app.faults

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(5)
        self.server.server_close()
        while self.on_stop:
            self.on_stop.pop()()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(config: EmulatorConfig, routes: Routes | None = None) -> RunningEmulator:
    """Serve ``config`` on ``config.host``:``config.port`` (0 picks a free port) in a daemon
    thread and return at once; the port is bound when this returns."""
    closers: list[Callable[[], None]] = []
    tasks: VideoTasks | None = None
    if routes is None:
        app, tasks, emulator = make_full_app(config)
        closers.append(tasks.close)
    else:
        app = emulator = make_app(config, routes)
    server = make_server(
        config.host,
        config.port,
        app,
        server_class=_ThreadingServer,
        # StreamRequestHandler applies ``timeout`` to the connection's socket.
        handler_class=type("_Handler", (_Handler,), {"timeout": config.read_timeout}),
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name=f"moderation-emulator-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return RunningEmulator(config, server, thread, closers, emulator, tasks)
