"""Content Moderation 2.0 video handlers of the emulator: submit, poll, cancel.

``VideoModeration`` downloads ``url`` (same rules as ``imageUrl``: public or loopback, §2.6
download codes) into a temporary file, queues the analysis with the offline engine on one
background thread and answers ``Data {TaskId, DataId}`` at once. ``VideoModerationResult``
answers Code 280 while the task runs, then the Appendix A body ("VideoModerationResult
response body"); ``VideoModerationCancel`` forgets the task. Unknown, cancelled and expired
tasks answer 594 "task/taskId expired" (aliyun-protocol.md §2.6, §4.3); the real service
cannot tell a purged task from a never-issued one either. Video operations use ``Message``,
not ``Msg`` (§4.2). Frame images and audio slices are served by the emulator itself under
``/_emulator/`` (GET, unsigned) and expire with their task.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import requests

from ..labels import rule_for
from ..providers import Label, MediaError, Result
from ..providers.aliyun.checksum import CRYPT_TYPES, callback_checksum
from ..providers.result import worst_risk
from .app import Call, Reply, Routes
from .config import EmulatorConfig
from .guardrails import (
    ALGO_FAILED,
    BAD_FORMAT,
    BAD_REQUEST,
    NO_RISK,
    TOO_LARGE,
    VERSION,
    BusinessError,
    _check_url,
    _invalid,
    _optional_str,
    _service_parameters,
    fetch_url,
    read_oss_object,
)
from .tasks import DONE, RUNNING, Task, TaskStore, new_task_id

logger = logging.getLogger(__name__)

SCENES = ["porn", "qrcode", "ad"]
ENGINE_OPTIONS = {"parallelism": "threads"}
MAX_VIDEO_BYTES = 500 << 20  # 2.0 file limit, aliyun-api-reference.md §3.3
PROCESSING = 280
EXPIRED = 594  # §2.6 "task/taskId expired"
TEMP_PREFIX = "/_emulator/"
_TEMP_PATH = re.compile(r"^/_emulator/(frames|slices)/([\w-]+)/(\d+\.(?:jpg|wav))$")
_TOO_LARGE_CODES = frozenset({"file_too_large"})

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _reply(call: Call, code: int, message: str, data: dict[str, Any] | None = None) -> Reply:
    body: dict[str, Any] = {"Code": code, "Message": message, "RequestId": call.request_id}
    if data is not None:
        body["Data"] = data
    return Reply(200, body)


class VideoService:
    """The per-emulator state of the video operations: a task store and one worker thread."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = TaskStore(config.result_retention)
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="emulator-video")

    def routes(self) -> Routes:
        return {
            ("VideoModeration", VERSION): self.video_moderation,
            ("VideoModerationResult", VERSION): self.video_moderation_result,
            ("VideoModerationCancel", VERSION): self.video_moderation_cancel,
        }

    def close(self) -> None:
        """Stop taking work; a running analysis finishes in its (daemon) thread."""
        self.executor.shutdown(wait=False, cancel_futures=True)

    # --- operations ----------------------------------------------------------------------

    def video_moderation(self, call: Call) -> Reply:
        """Download, queue, and answer ``Data {TaskId, DataId}`` without waiting."""
        try:
            service = call.params.get("Service")
            if not service:
                raise BusinessError(BAD_REQUEST, "Service is required")
            parameters = _service_parameters(call.params.get("ServiceParameters"))
            data_id = _optional_str(parameters, "dataId")
            push = self._callback(parameters)
            path = self._download(parameters)
        except BusinessError as exc:
            return _reply(call, exc.code, exc.message)
        task = Task(new_task_id(), data_id, service, **push)
        self.store.add(task)
        base_url = f"http://{call.request.headers.get('host', '')}"
        self.executor.submit(self._analyse, task, path, base_url)
        return _reply(call, 200, "OK", _ids(task))

    def video_moderation_result(self, call: Call) -> Reply:
        """280 while running; the documented body when done; 594 when gone."""
        try:
            task = self._task(call)
        except BusinessError as exc:
            return _reply(call, exc.code, exc.message)
        if task.state == RUNNING:
            return _reply(call, PROCESSING, "PROCESSING", _ids(task))
        if task.error is not None:
            return _reply(call, *task.error)
        return _reply(call, 200, "OK", task.data)

    def video_moderation_cancel(self, call: Call) -> Reply:
        """Forget the task; a running analysis is discarded when it ends."""
        try:
            task = self._task(call)
        except BusinessError as exc:
            return _reply(call, exc.code, exc.message)
        self.store.remove(task.task_id)
        return _reply(call, 200, "OK")

    # --- steps ---------------------------------------------------------------------------

    def _task(self, call: Call) -> Task:
        parameters = _service_parameters(call.params.get("ServiceParameters"))
        task_id = _optional_str(parameters, "taskId")
        if not task_id:
            raise BusinessError(BAD_REQUEST, "taskId is required")
        task = self.store.get(task_id)
        if task is None:
            raise BusinessError(EXPIRED, f"the task {task_id!r} does not exist or has expired")
        return task

    def _callback(self, parameters: dict[str, Any]) -> dict[str, str]:
        """The callback trio, checked: an http(s) URL we may reach, a seed, SHA256 or SM3."""
        callback = _optional_str(parameters, "callback") or ""
        if not callback:
            return {}
        try:
            _check_url(callback, self.config)
        except BusinessError:
            raise _invalid("callback") from None
        seed = _optional_str(parameters, "seed") or ""
        if not seed:
            raise BusinessError(BAD_REQUEST, "seed is required with callback")
        crypt_type = (_optional_str(parameters, "cryptType") or "SHA256").upper()
        if crypt_type not in CRYPT_TYPES:
            raise _invalid("cryptType")
        return {"callback": callback, "seed": seed, "crypt_type": crypt_type}

    def _download(self, parameters: dict[str, Any]) -> str:
        """The video in a temporary file, from ``url`` or the OSS stand-in."""
        config = replace(self.config, max_image_bytes=MAX_VIDEO_BYTES)
        url = _optional_str(parameters, "url")
        bucket = _optional_str(parameters, "ossBucketName")
        key = _optional_str(parameters, "ossObjectName")
        if url:
            try:
                data = fetch_url(url, None, config)
            except BusinessError as exc:
                if exc.message == "parameter invalid(imageUrl)":
                    raise _invalid("url") from None
                raise
        elif bucket and key:
            data = read_oss_object(key, config)
        else:
            raise BusinessError(BAD_REQUEST, "url or ossBucketName/ossObjectName is required")
        handle, path = tempfile.mkstemp(prefix="emulator-video-", suffix=".bin")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        return path

    def _analyse(self, task: Task, path: str, base_url: str) -> None:
        """Run on the worker thread: moderate, then record the answer or a §2.6 code."""
        from ..providers.local.video import analyse_video

        try:
            result = analyse_video(path, scenes=SCENES, audio=True, options=ENGINE_OPTIONS)
            data, files = video_data(task, result, f"{base_url}{TEMP_PREFIX}")
            self.store.finish(task.task_id, data=data, files=files)
        except MediaError as exc:
            code = TOO_LARGE if exc.code in _TOO_LARGE_CODES else BAD_FORMAT
            self.store.finish(task.task_id, error=(code, exc.message))
        except Exception as exc:  # the worker thread must survive any engine failure
            self.store.finish(task.task_id, error=(ALGO_FAILED, f"algorithm failed: {exc}"))
        finally:
            os.unlink(path)
        finished = self.store.get(task.task_id)
        if task.callback and finished is not None and finished.state == DONE:
            threading.Thread(target=self.deliver, args=(finished,), daemon=True,
                             name=f"emulator-callback-{task.task_id}").start()

    def deliver(self, task: Task) -> bool:
        """POST ``checksum`` + ``content`` to the task's callback URL; retry on any answer
        but 200 per ``config.callback_retries``. True when acknowledged."""
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


# --- the answer body ---------------------------------------------------------------------


def _ids(task: Task) -> dict[str, Any]:
    data: dict[str, Any] = {"TaskId": task.task_id}
    if task.data_id is not None:
        data["DataId"] = task.data_id
    return data


def _risky(labels: Iterable[Label]) -> list[Label]:
    return [label for label in labels if label.label != NO_RISK]


def _description(label: str) -> str:
    return rule_for(label).description or label


def _summaries(summary: dict[str, int]) -> list[dict[str, Any]]:
    """``FrameSummarys`` / ``AudioSummarys``: {Label, LabelSum, Description} per label."""
    return [{"Label": name, "LabelSum": count, "Description": _description(name)}
            for name, count in summary.items()]


def _hit(label: Label) -> dict[str, Any]:
    item: dict[str, Any] = {"Label": label.label}
    if label.label != NO_RISK:
        item["Confidence"] = round(float(label.confidence), 2)
    item["Description"] = _description(label.label)
    return item


def video_data(
    task: Task, result: Result, temp_base: str
) -> tuple[dict[str, Any], dict[str, tuple[bytes, str]]]:
    """``Data`` of a finished task (Appendix A) and the files its temporary URLs name.

    Only frames and slices with a label other than ``nonLabel`` get a ``TempUrl``/``Url``.
    """
    files: dict[str, tuple[bytes, str]] = {}
    frames = []
    for number, frame in enumerate(result.frames):
        risky = _risky(frame.labels)
        item: dict[str, Any] = {
            "Offset": frame.offset,
            "RiskLevel": frame.risk_level,
            "Results": [{"Result": [_hit(lbl) for lbl in risky] or [_hit(Label(NO_RISK))],
                         "Service": task.service}],
        }
        if risky and isinstance(frame.image, bytes):
            files[f"frames/{number}.jpg"] = (frame.image, "image/jpeg")
            item["TempUrl"] = f"{temp_base}frames/{task.task_id}/{number}.jpg"
        frames.append(item)
    slices = []
    for number, part in enumerate(result.slices):
        names = [lbl.label for lbl in _risky(part.labels)]
        item = {
            "StartTime": math.floor(part.start),
            "EndTime": math.ceil(part.end),
            "Text": part.text,
            "Labels": ",".join(names),
            "Descriptions": ",".join(_description(name) for name in names),
            "RiskWords": ",".join(part.risk_words),
            "RiskLevel": part.risk_level,
        }
        if names and isinstance(part.audio, bytes):
            files[f"slices/{number}.wav"] = (part.audio, "audio/wav")
            item["Url"] = f"{temp_base}slices/{task.task_id}/{number}.wav"
        slices.append(item)
    data = {
        **_ids(task),
        "RiskLevel": result.risk_level,
        "FrameResult": {
            "FrameNum": len(frames),
            "FrameSummarys": _summaries(result.frame_summary),
            "Frames": frames,
            "RiskLevel": worst_risk(f.risk_level for f in result.frames),
        },
        "AudioResult": {
            "AudioSummarys": _summaries(result.audio_summary),
            "SliceDetails": slices,
            "RiskLevel": worst_risk(s.risk_level for s in result.slices),
        },
    }
    return data, files
