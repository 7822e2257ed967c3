"""The protocol-neutral half of the emulator's asynchronous video operations.

1.0 ``VideoAsyncScan``, 2.0 ``VideoModeration`` and IMM ``CreateVideoModerationTask`` all do
the same things behind their own wording: fetch the video (URL or the OSS stand-in) into a
temporary file, analyse it with the offline engine on a background thread, keep the answer
for the retention time, serve its frame images and audio clips under ``/_emulator/``, and push
a signed callback when asked. :class:`VideoTasks` does those; each protocol module parses its
request and *renders* the engine's :class:`~moderation.providers.Result` in its own vocabulary
(a :data:`Render` function).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, Protocol

import requests

from ..providers import MediaError, Result
from ..providers.aliyun.checksum import callback_checksum
from .app import LimitExceeded
from .config import ENGINE_OPTIONS, EmulatorConfig
from .guardrails import (
    ALGO_FAILED,
    BAD_FORMAT,
    BAD_REQUEST,
    TOO_LARGE,
    BusinessError,
    _invalid,
    copy_oss_object,
    download,
)
from .tasks import DONE, Task, TaskStore

logger = logging.getLogger(__name__)

SCENES = ["porn", "qrcode", "ad"]
MAX_VIDEO_BYTES = 500 << 20  # 2.0 file limit, aliyun-api-reference.md §3.3
TEMP_PREFIX = "/_emulator/"
_TEMP_PATH = re.compile(r"^/_emulator/(frames|slices)/([\w-]+)/(\d+\.(?:jpg|wav))$")
_TOO_LARGE_CODES = frozenset({"file_too_large"})

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Files = dict[str, tuple[bytes, str]]
#: (task, engine result, base URL of temporary files) -> (answer data, files it names)
Render = Callable[[Task, Result, str], tuple[dict[str, Any], Files]]


class Download(Protocol):
    """:func:`.guardrails.download` or a protocol's variant of it."""

    def __call__(self, url: str, referer: str | None, config: EmulatorConfig, out: BinaryIO, *,
                 max_bytes: int, what: str = ...) -> None: ...


def download_video(config: EmulatorConfig, url: str | None, bucket: str | None = None,
                   key: str | None = None, url_name: str = "url", referer: str | None = None,
                   fetch: Download = download) -> str:
    """The video in a temporary file (the caller's task owns it), from ``url`` (downloaded by
    ``fetch`` with ``referer``: each protocol words a refused download its own way) or from
    ``<oss_root>/<key>``. Streamed to disk chunk by chunk, at most :data:`MAX_VIDEO_BYTES`,
    never whole in memory; download problems are the §2.6 business errors, and a failed
    download leaves no file behind."""
    if not url and not (bucket and key):
        raise BusinessError(BAD_REQUEST, f"{url_name} or an OSS object is required")
    handle, path = tempfile.mkstemp(prefix="emulator-video-", suffix=".bin")
    try:
        with os.fdopen(handle, "wb") as out:
            if url:
                try:
                    fetch(url, referer, config, out, max_bytes=MAX_VIDEO_BYTES, what="video")
                except BusinessError as exc:
                    if exc.message == "parameter invalid(imageUrl)":
                        raise _invalid(url_name) from None
                    raise
            else:
                copy_oss_object(key or "", config, out, MAX_VIDEO_BYTES)
    except BaseException:
        os.unlink(path)
        raise
    return path


class VideoTasks:
    """Per-emulator state shared by every video protocol: one task store, one worker
    thread (analyses run one at a time, like a small account's queue), temporary files."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = TaskStore(config.result_retention)
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="emulator-video")

    def close(self) -> None:
        """Stop taking work; a running analysis finishes in its (daemon) thread."""
        self.executor.shutdown(wait=False, cancel_futures=True)

    def start(self, task: Task, path: str, base_url: str, render: Render) -> None:
        """Store ``task`` as running and queue the analysis of ``path`` (deleted after).

        Past ``config.max_running_tasks`` the task is refused (:class:`LimitExceeded`, the
        protocol's "slow down") and its file deleted.
        """
        limit = self.config.max_running_tasks
        if limit and self.store.running() >= limit:
            os.unlink(path)
            raise LimitExceeded(f"{limit} video tasks are already running")
        self.store.add(task)
        self.executor.submit(self._analyse, task, path, base_url, render)

    def _analyse(self, task: Task, path: str, base_url: str, render: Render) -> None:
        """Run on the worker thread: moderate, then record the answer or a §2.6 code."""
        from ..providers.local.video import analyse_video  # noqa: PLC0415 - numpy, local extra

        try:
            result = analyse_video(path, scenes=SCENES, audio=True, options=ENGINE_OPTIONS)
            data, files = render(task, result, f"{base_url}{TEMP_PREFIX}")
            self.store.finish(task.task_id, data=data, files=files)
        except MediaError as exc:
            code = TOO_LARGE if exc.code in _TOO_LARGE_CODES else BAD_FORMAT
            self.store.finish(task.task_id, error=(code, exc.message))
        except Exception as exc:  # the worker thread must survive any engine failure
            if self.store.get(task.task_id) is None:
                return  # cancelled meanwhile (or the emulator is going away): nobody asks
            logger.warning("emulator analysis of %s failed: %r", task.task_id, exc)
            self.store.finish(task.task_id, error=(ALGO_FAILED, "algorithm failed"))
        finally:
            os.unlink(path)
        finished = self.store.get(task.task_id)
        if task.callback and finished is not None and finished.state == DONE:
            threading.Thread(target=self.deliver, args=(finished,), daemon=True,
                             name=f"emulator-callback-{task.task_id}").start()

    def deliver(self, task: Task) -> bool:
        """POST ``checksum`` + ``content`` to the task's callback URL (aliyun-api-reference
        §2.11, §3.6); retry on any answer but 200 per ``config.callback_retries``. True when
        acknowledged."""
        content = json.dumps(task.data, ensure_ascii=False, separators=(",", ":"))
        form = {"checksum": callback_checksum(self.config.uid, task.seed, content,
                                              task.crypt_type),
                "content": content}
        session = requests.Session()
        session.trust_env = False  # loopback callbacks never go through a proxy
        try:
            for delay in (0.0, *self.config.callback_retries):
                time.sleep(delay)
                try:
                    answer = session.post(task.callback, data=form, allow_redirects=False,
                                          timeout=self.config.callback_timeout)
                    if answer.status_code == 200:
                        return True
                    logger.info("callback of %s answered %s", task.task_id, answer.status_code)
                except requests.RequestException as exc:
                    logger.info("callback of %s failed: %s", task.task_id, exc)
            logger.warning("callback of %s given up", task.task_id)
            return False
        finally:
            session.close()

    # --- temporary files -----------------------------------------------------------------

    def wsgi(self, app: WsgiApp) -> WsgiApp:
        """``app`` with ``GET /_emulator/{frames|slices}/<task>/<n>.{jpg|wav}`` in front."""

        def serve(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO") or "/"
            if not path.startswith(TEMP_PREFIX):
                return app(environ, start_response)
            found = self.temp_file(path) if environ.get("REQUEST_METHOD") == "GET" else None
            if found is None:
                start_response("404 Not Found", [("Content-Type", "text/plain"),
                                                 ("Content-Length", "9")])
                return [b"not found"]
            data, content_type = found
            start_response("200 OK", [("Content-Type", content_type),
                                      ("Content-Length", str(len(data)))])
            return [data]

        return serve

    def temp_file(self, path: str) -> tuple[bytes, str] | None:
        """(bytes, content type) of a served file, None when unknown or expired."""
        match = _TEMP_PATH.match(path)
        task = self.store.get(match.group(2)) if match else None
        if match is None or task is None:
            return None
        return task.files.get(f"{match.group(1)}/{match.group(3)}")
