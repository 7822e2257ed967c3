from __future__ import annotations

import functools
import io
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

import moderation
from moderation.emulator.config import EmulatorConfig
from moderation.emulator.server import RunningEmulator
from moderation.emulator.server import start as start_emulator
from moderation.providers import get_provider
from moderation.registry import registry
from moderation.testing import scripted_provider

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "demo_project" / "sample_media"


def png_bytes(color=(200, 30, 30), size=(64, 48)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Start from an empty task queue (Redis keeps tasks between runs)."""
    from django_q.brokers import get_broker

    with django_db_blocker.unblock():
        get_broker().purge_queue()


@pytest.fixture
def image_file():
    """A small real PNG as a Django file (a new one each call)."""

    def make(name="pic.png", color=(200, 30, 30)):
        return ContentFile(png_bytes(color), name=name)

    return make


@pytest.fixture
def scripted():
    """Route the 'scripted' provider alias (alone) to ScriptedProvider; yields the class."""
    with scripted_provider(only=True, RETRY_BACKOFF=0.01) as provider:
        yield provider


@pytest.fixture
def register():
    """Register a model for the length of a test."""
    done = []

    def _register(model, fields=("image",), **options):
        if model in registry:
            moderation.unregister(model)
        reg = moderation.register(model, list(fields), **options)
        done.append(model)
        return reg

    yield _register
    for model in done:
        if model in registry:
            moderation.unregister(model)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in accepted:
        conn.close()
    server.close()


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY",
                   "all_proxy")


@pytest.fixture
def no_proxy(monkeypatch):
    """Loopback calls must not go through an HTTP(S)_PROXY: the Alibaba SDKs would send
    them there (emulator notes §1.2)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@contextmanager
def serving(directory, on_request: Callable[[str], None] | None = None) -> Iterator[str]:
    """Serve ``directory`` over HTTP on loopback from a thread; yields the base URL.
    ``on_request`` sees each requested path (e.g. to count HLS segment fetches)."""

    class QuietFiles(SimpleHTTPRequestHandler):
        def log_request(self, code="-", size="-"):
            if on_request is not None:
                on_request(self.path)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(QuietFiles, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def image_server() -> Iterator[str]:
    """demo_project/sample_media on loopback (for ``imageUrl`` / ``tasks[].url``)."""
    with serving(SAMPLES) as url:
        yield url


@pytest.fixture(scope="module")
def media_server() -> Iterator[str]:
    """tests/media on loopback (for a video ``url``)."""
    with serving(ROOT / "tests" / "media") as url:
        yield url


@pytest.fixture
def start_qcluster():
    """Start a real ``manage.py qcluster`` on the test database and broker; the test's
    MODERATION settings can be passed along (``start_qcluster(moderation={...})``).

    On teardown the cluster gets SIGTERM and must stop within 30 s leaving no process
    behind (a worker that used the engine's process pool included)."""
    import json
    import signal
    import subprocess
    import sys

    from django.conf import settings
    from django.db import connection

    started = []

    def start(moderation: dict | None = None, workers: int = 1):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DEMO_DB_NAME": str(connection.settings_dict["NAME"]),
            "MODERATION_TEST_ROOT": settings.TEST_ROOT,
            "DEMO_Q_WORKERS": str(workers),
        }
        if moderation:
            env["MODERATION_TEST_SETTINGS"] = json.dumps(moderation)
        log = open(Path(settings.TEST_ROOT) / f"qcluster-{len(started)}.log", "w+b")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started.append((proc, log))
        return proc

    yield start
    for proc, log in started:
        proc.send_signal(signal.SIGTERM)  # the cluster stops its own workers
        stuck = False
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stuck = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.seek(0)
        print(log.read().decode(errors="replace")[-4000:])
        log.close()
        # Live processes only: exited children reparented to a non-reaping init show as zombies.
        leftovers = subprocess.run(["pgrep", "-a", "-r", "R,S,D,T", "-g", str(proc.pid)],
                                   capture_output=True, text=True)
        if leftovers.stdout.strip():
            os.killpg(proc.pid, signal.SIGKILL)
        assert not stuck, "the qcluster did not stop within 30 s of SIGTERM"
        assert not leftovers.stdout.strip(), f"processes left behind: {leftovers.stdout}"


def poll_until_finished(fetch, limit: float = 120.0):
    """Call ``fetch()`` until its Result is finished (bounded): (result, how many answers
    said "still working"). Fails the test after ``limit`` seconds."""
    import time

    deadline, pending = time.monotonic() + limit, 0
    while time.monotonic() < deadline:
        result = fetch()
        if result.finished:
            return result, pending
        assert result.status == "in_progress" and result.task_id
        pending += 1
        time.sleep(0.25)
    pytest.fail(f"the provider task did not finish in {limit} s")


def wait_for(condition, timeout: float = 240.0) -> bool:
    """Poll ``condition()`` every half second until true (True) or ``timeout`` (False)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def emulator_fixture(*, scope: str = "function", uses: tuple[str, ...] = (),
                     oss: Callable[[Path], object] | str | None = None,
                     before: Callable[[], object] | None = None,
                     clear_providers: bool = False, **config: object):
    """The one factory for the Alibaba emulator fixtures: ``emulator = emulator_fixture(...)``
    in a test module gives it a fixture that serves ``EmulatorConfig(**config)`` on loopback
    for a test (``scope="function"``) or a module, and stops it after.

    Its OSS root is the test's ``tmp_path`` (function scope) or a fresh ``oss`` directory
    (module scope); ``oss`` is either a callable that fills that directory or the name of a
    fixture that returns the directory to use. ``uses`` names fixtures to request first
    (``no_proxy``), ``before`` runs before the emulator starts, and ``clear_providers``
    clears the cached provider instances after it stops.
    """

    @pytest.fixture(scope=scope, name="emulator")
    def emulator(request, tmp_path_factory) -> Iterator[RunningEmulator]:
        for name in uses:
            request.getfixturevalue(name)
        if isinstance(oss, str):
            root = request.getfixturevalue(oss)
        else:
            root = (request.getfixturevalue("tmp_path") if scope == "function"
                    else tmp_path_factory.mktemp("oss"))
            if oss is not None:
                oss(root)
        if before is not None:
            before()
        with start_emulator(EmulatorConfig(oss_root=root, **config)) as running:
            yield running
        if clear_providers:
            get_provider.cache_clear()

    return emulator


def pytest_collection_modifyitems(items):
    """Tests marked ``integration`` (a real qcluster) or ``browser`` (Chromium) are ``slow``
    too, so ``pytest -m "not slow"`` (the everyday run) leaves them out."""
    for item in items:
        if item.get_closest_marker("integration") or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)
