"""Content Moderation 1.0 asynchronous handlers of the emulator: image and video async scans,
their results, and cancel (aliyun-protocol.md §2.2-§2.6; aliyun-api-reference.md §2.4, §2.6).

Built on :class:`.video_tasks.VideoTasks`, shared with 2.0 and IMM: ``VideoAsyncScan``
downloads each task's ``url`` (public or loopback, §2.6 download codes per task) and queues the
local video engine; ``ImageAsyncScan`` queues the image scan of :mod:`.green` on the same
worker. ``.../results`` take a JSON array of task ids and answer one ``data[]`` element per id:
280 while it runs, the finished element (the same one a callback carries), or 594 once it is
unknown or past ``EmulatorConfig.green_retention`` (1 h for 1.0; tests shorten it). Frame
images are served under ``/_emulator/`` and expire with their task.

Emulated limits: a live stream (``live: true``) must be an http(s) URL of a finite recording,
read whole and answered when it ends (no partial results); ``tasks[].frames`` are accepted only
by ``/green/video/syncscan``; ``interval``/``maxFrames`` are not honoured (the engine samples
with its own defaults); only live tasks can be cancelled, as documented (§2.3).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from ..providers import Result
from ..providers.aliyun.checksum import CRYPT_TYPES
from ..providers.aliyun.green_video import AUDIO_SCENE
from .app import Call, Reply, Routes
from .green import (
    BAD_REQUEST,
    MAX_TASKS,
    MESSAGES,
    VERSION,
    BusinessError,
    audio_results,
    envelope,
    failed,
    frame_results,
    image_scenes,
    parse_object,
    parse_tasks,
    scan_task,
    task_head,
    video_scenes,
)
from .guardrails import _check_url, _invalid
from .tasks import RUNNING, Task, new_task_id
from .video_tasks import Files, VideoTasks, download_video

PROCESSING = 280
EXPIRED = 594  # §2.6 "task/taskId expired"
IMAGE, VIDEO = "image", "video"


def routes(tasks: VideoTasks) -> Routes:
    """The 1.0 asynchronous operations over the emulator's shared task store."""
    return GreenAsync(tasks).routes()


class GreenAsync:
    """ImageAsyncScan / VideoAsyncScan and their results, over one :class:`VideoTasks`."""

    def __init__(self, tasks: VideoTasks) -> None:
        self.tasks = tasks
        self.config = tasks.config

    def routes(self) -> Routes:
        return {
            ("/green/image/asyncscan", VERSION): self.image_async_scan,
            ("/green/image/results", VERSION): self.image_results,
            ("/green/video/asyncscan", VERSION): self.video_async_scan,
            ("/green/video/results", VERSION): self.video_results,
            ("/green/video/cancelscan", VERSION): self.video_cancel,
        }

    # --- submit ------------------------------------------------------------------------

    def image_async_scan(self, call: Call) -> Reply:
        """Queue each task's image scan; answer ``{code, msg, dataId, taskId, url}`` each."""
        try:
            body = parse_object(call.request.body)
            scenes, tasks, push = image_scenes(body), parse_tasks(body), self._callback(body)
        except BusinessError as exc:
            return Reply(200, envelope(call, exc.code, exc.message))
        data = []
        for entry in tasks:
            task = self._task(entry, new_task_id("img"), IMAGE, push, scenes=scenes)
            item = {**task_head(entry, task.task_id), "url": entry.get("url")}
            if not isinstance(entry.get("url"), str) or not entry["url"]:
                data.append(failed(item, BAD_REQUEST, "tasks[].url is required"))
                continue
            self.tasks.store.add(task)
            self.tasks.executor.submit(self._scan_image, task, entry)
            data.append(item)
        return Reply(200, {**envelope(call), "data": data})

    def video_async_scan(self, call: Call) -> Reply:
        """Download each task's video and queue it; per-task codes for download problems."""
        try:
            body = parse_object(call.request.body)
            scenes, tasks, push = video_scenes(body.get("scenes")), parse_tasks(body), \
                self._callback(body)
            audio = _audio_scenes(body.get("audioScenes"))
            live = body.get("live", False)
            if not isinstance(live, bool):
                raise _invalid("live")
        except BusinessError as exc:
            return Reply(200, envelope(call, exc.code, exc.message))
        base_url = call.request.base_url
        data = []
        for entry in tasks:
            task = self._task(entry, new_task_id("vi"), VIDEO, push, scenes=scenes,
                              audio=audio, live=live)
            item = task_head(entry, task.task_id)
            url = entry.get("url")
            if isinstance(url, str):
                item["url"] = url
            try:
                if entry.get("frames") is not None:
                    raise BusinessError(BAD_REQUEST, "tasks[].frames: use /green/video/syncscan")
                path = download_video(self.config, url if isinstance(url, str) else None)
            except BusinessError as exc:
                data.append(failed(item, exc.code, exc.message))
                continue
            self.tasks.start(task, path, base_url, render_video)
            data.append(item)
        return Reply(200, {**envelope(call), "data": data})

    # --- results and cancel --------------------------------------------------------------

    def image_results(self, call: Call) -> Reply:
        return self._results(call, IMAGE)

    def video_results(self, call: Call) -> Reply:
        return self._results(call, VIDEO)

    def _results(self, call: Call, kind: str) -> Reply:
        """One element per task id: 280 running, the finished element, its error, or 594."""
        try:
            task_ids = _task_ids(call.request.body)
        except BusinessError as exc:
            return Reply(200, envelope(call, exc.code, exc.message))
        return Reply(200, {**envelope(call), "data": [self._state(i, kind) for i in task_ids]})

    def video_cancel(self, call: Call) -> Reply:
        """Stop live tasks; a file task cannot be cancelled (400), an unknown one is 594."""
        try:
            task_ids = _task_ids(call.request.body)
        except BusinessError as exc:
            return Reply(200, envelope(call, exc.code, exc.message))
        data = []
        for task_id in task_ids:
            task = self._find(task_id, VIDEO)
            if task is None:
                data.append(_gone(task_id))
            elif not task.extra.get("live"):
                data.append(failed(_head(task), BAD_REQUEST, "only live tasks can be cancelled"))
            else:
                self.tasks.store.remove(task_id)
                data.append(_head(task))
        return Reply(200, {**envelope(call), "data": data})

    # --- steps -------------------------------------------------------------------------

    def _find(self, task_id: str, kind: str) -> Task | None:
        task = self.tasks.store.get(task_id)
        return task if task is not None and task.extra.get("kind") == kind else None

    def _state(self, task_id: str, kind: str) -> dict[str, Any]:
        task = self._find(task_id, kind)
        if task is None:
            return _gone(task_id)
        if task.state == RUNNING:
            return {**_head(task), "code": PROCESSING, "msg": MESSAGES[PROCESSING]}
        if task.error is not None:
            return failed(_head(task), *task.error)
        return task.data

    def _task(self, entry: dict[str, Any], task_id: str, kind: str, push: dict[str, str],
              **extra: Any) -> Task:
        data_id = entry.get("dataId") if isinstance(entry.get("dataId"), str) else None
        return Task(task_id, data_id, "green",
                    retention=self.config.green_retention.total_seconds(),
                    extra={"kind": kind, "url": entry.get("url"), **extra}, **push)

    def _scan_image(self, task: Task, entry: dict[str, Any]) -> None:
        """On the worker thread: the sync scan's element, kept as the task's answer."""
        item = scan_task(entry, task.extra["scenes"], self.config, task.task_id)
        if item["code"] == 200:
            self.tasks.store.finish(task.task_id, data=item)
        else:
            self.tasks.store.finish(task.task_id, error=(item["code"], item["msg"]))
        finished = self.tasks.store.get(task.task_id)
        if task.callback and finished is not None and finished.error is None:
            threading.Thread(target=self.tasks.deliver, args=(finished,), daemon=True,
                             name=f"emulator-callback-{task.task_id}").start()

    def _callback(self, body: dict[str, Any]) -> dict[str, str]:
        """The callback trio, checked: an http(s) URL we may reach, a seed, SHA256 or SM3."""
        callback = body.get("callback") or ""
        if not callback:
            return {}
        if not isinstance(callback, str):
            raise _invalid("callback")
        try:
            _check_url(callback, self.config)
        except BusinessError:
            raise _invalid("callback") from None
        seed = body.get("seed")
        if not isinstance(seed, str) or not seed:
            raise BusinessError(BAD_REQUEST, "seed is required with callback")
        crypt_type = str(body.get("cryptType") or "SHA256").upper()
        if crypt_type not in CRYPT_TYPES:
            raise _invalid("cryptType")
        return {"callback": callback, "seed": seed, "crypt_type": crypt_type}


# --- bodies --------------------------------------------------------------------------------


def _task_ids(raw: bytes) -> list[str]:
    """A results/cancel body: a JSON array of 1..100 task id strings (§2.3)."""
    try:
        ids = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        ids = None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise BusinessError(BAD_REQUEST, "the body must be a JSON array of taskIds")
    if len(ids) > MAX_TASKS:
        raise BusinessError(BAD_REQUEST, f"at most {MAX_TASKS} taskIds")
    return ids


def _audio_scenes(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, list) or not all(v == AUDIO_SCENE for v in value):
        raise BusinessError(BAD_REQUEST, f"audioScenes may only be [\"{AUDIO_SCENE}\"]")
    return bool(value)


def _head(task: Task) -> dict[str, Any]:
    item = task_head({"dataId": task.data_id} if task.data_id is not None else {},
                     task.task_id)
    if isinstance(task.extra.get("url"), str):
        item["url"] = task.extra["url"]
    return item


def _gone(task_id: str) -> dict[str, Any]:
    return {"code": EXPIRED, "msg": MESSAGES[EXPIRED], "taskId": task_id}


def render_video(task: Task, result: Result, temp_base: str) -> tuple[dict[str, Any], Files]:
    """The finished ``data[]`` element of a video task (also the callback ``content``) and
    the frame images its temporary URLs name. Only frames that hit a scene get a URL."""
    files: Files = {}

    def url_of(number: int, frame: Any) -> str | None:
        if not isinstance(frame.image, bytes):
            return None
        files[f"frames/{number}.jpg"] = (frame.image, "image/jpeg")
        return f"{temp_base}frames/{task.task_id}/{number}.jpg"

    item = _head(task)
    item["results"] = frame_results(result.frames, task.extra["scenes"], url_of)
    if task.extra.get("audio"):
        item["audioScanResults"] = audio_results(result)
    return item, files
