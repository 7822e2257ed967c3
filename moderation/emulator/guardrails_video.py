"""Content Moderation 2.0 video handlers of the emulator: submit, poll, cancel.

``VideoModeration`` downloads ``url`` (same rules as ``imageUrl``: public or loopback, 2.0's
download codes 404-406, ``referer`` sent as the Referer header) or reads ``ossObjectName``
under ``oss_root`` into a temporary file (streamed, at most 500 MB), queues the analysis
with the offline engine on one background thread and answers ``Data {TaskId, DataId}`` at
once. ``VideoModerationResult`` answers Code 280 while the task runs (288 for an ``offline:
true`` nearline task, which may also wait :data:`OFFLINE_QUEUE_SECONDS` before its analysis
starts), then the Appendix A body ("VideoModerationResult response body");
``VideoModerationCancel`` forgets the task.
Unknown, cancelled and expired tasks answer 594 "task/taskId expired" (aliyun-protocol.md
§2.6, §4.3); the real service cannot tell a purged task from a never-issued one either.
Video operations use ``Message``, not ``Msg`` (§4.2). Frame images and audio slices are
served by the emulator itself under ``/_emulator/`` (GET, unsigned) and expire with their
task; the fetching, analysis, retention, files and callbacks are :mod:`.video_tasks`, shared
with 1.0 and IMM.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable
from typing import Any

from ..labels import rule_for
from ..providers import Label, Result
from ..providers.aliyun.checksum import CRYPT_TYPES
from ..providers.result import worst_risk
from .app import Call, Reply, Routes
from .config import EmulatorConfig
from .guardrails import (
    BAD_REQUEST,
    NO_RISK,
    VERSION,
    BusinessError,
    _check_url,
    _invalid,
    _optional_str,
    _service_parameters,
    download_v2,
    v2_error,
)
from .tasks import RUNNING, Task, TaskStore, new_task_id
from .video_tasks import TEMP_PREFIX, VideoTasks, WsgiApp, download_video

__all__ = ["TEMP_PREFIX", "VideoService", "WsgiApp", "video_data"]

PROCESSING = 280
NEARLINE = 288  # an ``offline`` task still queued (from the task brief; not in the specs)
EXPIRED = 594  # §2.6 "task/taskId expired"
#: Seconds an ``offline`` (nearline) task waits queued before its analysis starts; polls
#: answer 288 meanwhile. Read at each submission (tests may patch it); 0: start at once.
OFFLINE_QUEUE_SECONDS = 0.0


def _reply(call: Call, code: int, message: str, data: dict[str, Any] | None = None) -> Reply:
    body: dict[str, Any] = {"Code": code, "Message": message, "RequestId": call.request_id}
    if data is not None:
        body["Data"] = data
    return Reply(200, body)


class VideoService:
    """The 2.0 video operations over the emulator's shared :class:`VideoTasks`."""

    def __init__(self, config: EmulatorConfig, tasks: VideoTasks | None = None) -> None:
        self.config = config
        self.tasks = tasks or VideoTasks(config)

    @property
    def store(self) -> TaskStore:
        return self.tasks.store

    def routes(self) -> Routes:
        return {
            ("VideoModeration", VERSION): self.video_moderation,
            ("VideoModerationResult", VERSION): self.video_moderation_result,
            ("VideoModerationCancel", VERSION): self.video_moderation_cancel,
        }

    def close(self) -> None:
        self.tasks.close()

    def deliver(self, task: Task) -> bool:
        return self.tasks.deliver(task)

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
            offline = _offline(parameters)
            path = self._download(parameters)
        except BusinessError as exc:
            return _reply(call, *_v2(exc))
        task = Task(new_task_id(), data_id, service, extra={"offline": offline}, **push)
        base_url = call.request.base_url
        if offline and OFFLINE_QUEUE_SECONDS > 0:
            self._hold(task, path, base_url, OFFLINE_QUEUE_SECONDS)
        else:
            self.tasks.start(task, path, base_url, video_data)
        return _reply(call, 200, "OK", _ids(task))

    def video_moderation_result(self, call: Call) -> Reply:
        """280 while running (288 when submitted ``offline``); the documented body when
        done; 594 when gone."""
        try:
            task = self._task(call)
        except BusinessError as exc:
            return _reply(call, exc.code, exc.message)
        if task.state == RUNNING:
            if task.extra.get("offline"):
                return _reply(call, NEARLINE, "QUEUED", _ids(task))
            return _reply(call, PROCESSING, "PROCESSING", _ids(task))
        if task.error is not None:
            return _reply(call, *_v2(BusinessError(*task.error)))
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

    def _download(self, parameters: dict[str, Any]) -> str:
        """The video in a temporary file: ``url`` fetched with ``referer`` (2.0 wording, see
        :func:`.guardrails.download_v2`), else the OSS object via :func:`download_video`."""
        url = _optional_str(parameters, "url")
        referer = _optional_str(parameters, "referer")
        if not url:
            _optional_str(parameters, "ossRegionId")  # type-checked; one region here
            return download_video(self.config, None,
                                  _optional_str(parameters, "ossBucketName"),
                                  _optional_str(parameters, "ossObjectName"))
        return download_video(self.config, url, referer=referer, fetch=download_v2)

    def _hold(self, task: Task, path: str, base_url: str, delay: float) -> None:
        """Keep a nearline task queued (polls see 288) for ``delay`` seconds, then start its
        analysis, unless it was cancelled (or the emulator stopped) meanwhile."""
        self.store.add(task)

        def release() -> None:
            if self.store.get(task.task_id) is task:
                try:
                    self.tasks.start(task, path, base_url, video_data)
                    return
                except RuntimeError:  # the executor was shut down: the emulator stopped
                    pass
            os.unlink(path)

        timer = threading.Timer(delay, release)
        timer.daemon = True
        timer.start()

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


def _v2(exc: BusinessError) -> tuple[int, str]:
    """(code, message) in 2.0's codes: the shared download/analysis steps record §2.6's."""
    translated = v2_error(exc)
    return translated.code, translated.message


def _offline(parameters: dict[str, Any]) -> bool:
    """``offline``: a JSON boolean (``"true"``/``"false"`` text accepted), default false."""
    value = parameters.get("offline")
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _invalid("offline")


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
