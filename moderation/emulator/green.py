"""Content Moderation 1.0 (``Green``, API version 2018-05-09) handlers of the emulator: the
stateless operations. The asynchronous ones (image/video async scans, their results, cancel)
are in :mod:`.green_video`, which keeps tasks.

``ImageSyncScan`` (``POST /green/image/scan``, aliyun-protocol.md §2.2-§2.4): each task's
``url`` is downloaded with the 2.0 image code (:func:`.guardrails.fetch_url`), run through the
offline ``local`` provider with the requested scenes, and answered in the 1.0 vocabulary
(``providers.aliyun.vocabulary``): one ``results[]`` entry per requested scene,
``normal``/``pass`` when nothing was found. ``VideoSyncScan`` does the same for a task's
``frames[] {url, offset}`` and answers the video shape (:func:`frame_results`).
``ImageScanFeedback`` / ``VideoFeedback`` validate the body, remember it in
:data:`FEEDBACK` (so tests can see it arrived) and answer 200 without ``data``. A broken
request is an envelope ``code`` (400); a task that fails (download, format) is a per-task
``code`` while the request succeeds (§2.6).
"""

from __future__ import annotations

import io
import json
import math
import threading
import uuid
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from ..providers import (
    Frame,
    Media,
    MediaError,
    ModerationError,
    ModerationRequest,
    Result,
    get_provider,
)
from ..providers.aliyun.green_video import AUDIO_SCENE, audio_to_v1
from ..providers.aliyun.vocabulary import (
    BLOCK,
    NORMAL,
    PASS,
    REVIEW,
    SUGGESTION_ORDER,
    V1Result,
    to_v1,
)
from ..providers.result import Label
from .app import Call, Reply, Routes
from .config import ENGINE_OPTIONS, EmulatorConfig
from .guardrails import (
    _TOO_LARGE_CODES,
    ALGO_FAILED,
    BAD_FORMAT,
    BAD_REQUEST,
    TOO_LARGE,
    BusinessError,
    fetch_url,
)

VERSION = "2018-05-09"
#: 1.0 image scenes the emulator answers -> local-engine scenes (the others are refused, 400).
SCENES = {"porn": "porn", "qrcode": "qrcode", "ad": "ad"}
#: 1.0 video frame scenes the emulator answers (§2.6: no ``qrcode`` scene; QR codes are the
#: ``ad`` scene's frame label). ``terrorism``, ``live`` and ``logo`` are refused (400).
VIDEO_SCENES = ("porn", "ad")
ENGINE_SCENES = ["porn", "qrcode", "ad"]
MAX_TASKS = 100  # §2.3, sync scans
MAX_FRAMES = 200  # frames of one sync-scan task (the documented maxFrames default)
NORMAL_RATE = 99.9  # the rate of a "normal" result (as in the emulator notes §3.1)

#: §2.6 code -> msg.
MESSAGES = {
    200: "OK", 280: "PROCESSING", 400: "BAD_REQUEST", 401: "NOT_ALLOWED", 403: "FORBIDDEN",
    404: "NOT_FOUND", 480: "DOWNLOAD_FAILED", 586: "ALGO_FAILED", 589: "TOO_LARGE",
    590: "BAD_FORMAT", 592: "DOWNLOAD_TIMEOUT", 594: "EXPIRED",
}

#: Feedback bodies received, newest last: {"path", "body", "requestId"} (tests read it).
FEEDBACK: deque[dict[str, Any]] = deque(maxlen=100)
_feedback_lock = threading.Lock()


def envelope(call: Call, code: int = 200, msg: str = "OK") -> dict[str, Any]:
    return {"code": code, "msg": msg, "requestId": call.request_id}


# --- operations ----------------------------------------------------------------------------


def image_scan(call: Call) -> Reply:
    """``ImageSyncScan``: a JSON object with ``scenes`` and ``tasks`` (§2.3); answers the §2.4
    envelope with lower-camel keys and one ``data[]`` element per task."""
    try:
        body = parse_object(call.request.body)
        scenes, tasks = image_scenes(body), parse_tasks(body)
    except BusinessError as exc:
        return Reply(200, envelope(call, exc.code, exc.message))
    data = [scan_task(task, scenes, call.config) for task in tasks]
    return Reply(200, {**envelope(call), "data": data})


def video_sync_scan(call: Call) -> Reply:
    """``VideoSyncScan``: each task's ``frames[] {url, offset}`` (plus ``framePrefix``) is
    fetched and moderated as one frame sequence; answers ``results[]`` per video scene with
    the frames that justify it, their ``url`` being the submitted one."""
    try:
        body = parse_object(call.request.body)
        scenes, tasks = video_scenes(body.get("scenes")), parse_tasks(body)
    except BusinessError as exc:
        return Reply(200, envelope(call, exc.code, exc.message))
    data = [_frames_task(task, scenes, call.config) for task in tasks]
    return Reply(200, {**envelope(call), "data": data})


def image_feedback(call: Call) -> Reply:
    """``ImageScanFeedback`` (API reference §2.5): every field optional, but a ``suggestion``
    must be ``pass``/``block`` and come with ``scenes``."""
    return _feedback(call, "/green/image/feedback", task_required=False)


def video_feedback(call: Call) -> Reply:
    """``VideoFeedback`` (§2.7): ``taskId`` required, ``frames[] {url, offset}`` optional."""
    return _feedback(call, "/green/video/feedback", task_required=True)


ROUTES: Routes = {
    ("/green/image/scan", VERSION): image_scan,
    ("/green/video/syncscan", VERSION): video_sync_scan,
    ("/green/image/feedback", VERSION): image_feedback,
    ("/green/video/feedback", VERSION): video_feedback,
}


# --- request bodies ------------------------------------------------------------------------


def parse_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BusinessError(BAD_REQUEST, "the body is not a JSON object") from None
    if not isinstance(body, dict):
        raise BusinessError(BAD_REQUEST, "the body is not a JSON object")
    return body


def _string_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise BusinessError(BAD_REQUEST, f"{name} is required")
    return list(dict.fromkeys(value))


def image_scenes(body: dict[str, Any]) -> list[str]:
    scenes = _string_list(body.get("scenes"), "scenes")
    unknown = [scene for scene in scenes if scene not in SCENES]
    if unknown:
        raise BusinessError(BAD_REQUEST, f"scenes not emulated: {', '.join(unknown)}")
    return scenes


def video_scenes(value: Any) -> list[str]:
    scenes = _string_list(value, "scenes")
    unknown = [scene for scene in scenes if scene not in VIDEO_SCENES]
    if unknown:
        raise BusinessError(BAD_REQUEST, f"video scenes not emulated: {', '.join(unknown)}")
    return scenes


def parse_tasks(body: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, dict) for t in tasks):
        raise BusinessError(BAD_REQUEST, "tasks is required")
    if len(tasks) > MAX_TASKS:
        raise BusinessError(BAD_REQUEST, f"at most {MAX_TASKS} tasks")
    return tasks


def task_head(task: dict[str, Any], task_id: str) -> dict[str, Any]:
    """``code``/``msg``/``dataId``/``taskId`` of a ``data[]`` element (dataId echoed)."""
    item: dict[str, Any] = {"code": 200, "msg": "OK"}
    if isinstance(task.get("dataId"), str):
        item["dataId"] = task["dataId"]
    item["taskId"] = task_id
    return item


def failed(item: dict[str, Any], code: int, message: str) -> dict[str, Any]:
    return {**item, "code": code, "msg": MESSAGES.get(code, message)}


# --- images --------------------------------------------------------------------------------


def scan_task(task: dict[str, Any], scenes: list[str], config: EmulatorConfig,
              task_id: str = "") -> dict[str, Any]:
    """One image ``data[]`` element; a failed task carries its own code and no ``results``."""
    item = task_head(task, task_id or f"img{uuid.uuid4().hex}")
    url = task.get("url")
    if isinstance(url, str):
        item["url"] = url
    try:
        if not isinstance(url, str) or not url:
            raise BusinessError(BAD_REQUEST, "tasks[].url is required")
        labels = moderate(fetch_url(url, None, config), scenes, item.get("dataId", ""))
    except BusinessError as exc:
        return failed(item, exc.code, exc.message)
    item["results"] = scene_results(labels, scenes)
    return item


def moderate(data: bytes, scenes: list[str], data_id: str) -> list[Label]:
    """The local provider's labels for the bytes; its errors become §2.6 codes."""
    media = Media(name=data_id or "image", kind="image", opener=partial(io.BytesIO, data),
                  size=len(data))
    request = ModerationRequest(scenes=[SCENES[s] for s in scenes], data_id=data_id,
                                options=dict(ENGINE_OPTIONS))  # an animation: see _frames_task
    return _local(media, request).labels


def _local(media: Media, request: ModerationRequest) -> Result:
    try:
        return get_provider("local").submit(media, request)
    except MediaError as exc:
        raise BusinessError(TOO_LARGE if exc.code in _TOO_LARGE_CODES else BAD_FORMAT,
                            exc.message) from None
    except ModerationError as exc:
        raise BusinessError(ALGO_FAILED, exc.message) from None


def scene_results(labels: list[Label], scenes: list[str]) -> list[dict[str, Any]]:
    """One result per requested scene: its worst hit (then highest rate), else ``normal``.

    Labels whose risk is ``none`` (below the label table's threshold) are not hits.
    """
    best: dict[str, tuple[V1Result, float]] = {}
    for label in labels:
        mapped = to_v1(label.label)
        if mapped is None or label.risk_level == "none" or mapped.scene not in scenes:
            continue
        rank = (SUGGESTION_ORDER[mapped.suggestion], float(label.confidence))
        current = best.get(mapped.scene)
        if current is None or rank > (SUGGESTION_ORDER[current[0].suggestion], current[1]):
            best[mapped.scene] = (mapped, float(label.confidence))
    results = []
    for scene in scenes:
        mapped, rate = best.get(scene, (V1Result(scene, NORMAL, PASS), NORMAL_RATE))
        results.append({"scene": scene, "label": mapped.label,
                        "suggestion": mapped.suggestion, "rate": round(rate, 2)})
    return results


# --- video results (shared with the async video renderer) ----------------------------------


def _video_hit(label: Label, scenes: list[str]) -> V1Result | None:
    """The 1.0 video form of a frame label: image label, but ``qrcode`` read through ``ad``."""
    mapped = to_v1(label.label)
    if mapped is None or label.risk_level == "none":
        return None
    if mapped.scene == "qrcode":
        mapped = V1Result("ad", mapped.label, mapped.suggestion)
    return mapped if mapped.scene in scenes else None


def frame_results(frames: list[Frame], scenes: list[str],
                  url_of: Callable[[int, Frame], str | None]) -> list[dict[str, Any]]:
    """``results[]`` of a video task: per requested scene its coarse label (the scene's own
    name, §2.9 "video frame scenes") and ``frames[] {url, offset, label, rate}`` with the
    finer image label of each frame that hit it, best hit per frame; else ``normal``."""
    hits: dict[str, list[tuple[V1Result, float, dict[str, Any]]]] = {s: [] for s in scenes}
    for number, frame in enumerate(frames):
        best: dict[str, tuple[V1Result, float]] = {}
        for label in frame.labels:
            mapped = _video_hit(label, scenes)
            if mapped is None:
                continue
            rank = (SUGGESTION_ORDER[mapped.suggestion], float(label.confidence))
            current = best.get(mapped.scene)
            if current is None or rank > (SUGGESTION_ORDER[current[0].suggestion], current[1]):
                best[mapped.scene] = (mapped, float(label.confidence))
        for scene, (mapped, rate) in best.items():
            entry: dict[str, Any] = {"offset": round(frame.offset, 3), "label": mapped.label,
                                     "rate": round(rate, 2)}
            url = url_of(number, frame)
            if url:
                entry = {"url": url, **entry}
            hits[scene].append((mapped, rate, entry))
    results = []
    for scene in scenes:
        if not hits[scene]:
            results.append({"scene": scene, "label": NORMAL, "suggestion": PASS,
                            "rate": NORMAL_RATE})
            continue
        suggestion = max((m.suggestion for m, _, _ in hits[scene]),
                         key=SUGGESTION_ORDER.__getitem__)
        results.append({"scene": scene, "label": scene, "suggestion": suggestion,
                        "rate": round(max(rate for _, rate, _ in hits[scene]), 2),
                        "frames": [entry for _, _, entry in hits[scene]]})
    return results


def audio_results(result: Result) -> list[dict[str, Any]]:
    """``audioScanResults[]``: one ``antispam`` result whose ``details[]`` are the sentences
    (``normal`` or the worst label; ``keyword`` for a keyword-library hit); the result's own
    label, suggestion and rate are those of the worst sentence."""
    details = []
    hits: list[tuple[str, str, float]] = []  # (suggestion, label, rate)
    for part in result.slices:
        risky = sorted((lbl for lbl in part.labels
                        if lbl.risk_level != "none" and audio_to_v1(lbl.label)),
                       key=lambda lbl: (SUGGESTION_ORDER[_suggestion(lbl)], lbl.confidence),
                       reverse=True)
        detail: dict[str, Any] = {"startTime": math.floor(part.start),
                                  "endTime": math.ceil(part.end), "text": part.text,
                                  "label": NORMAL}
        if risky:
            detail["label"] = label = audio_to_v1(risky[0].label) or NORMAL
            if label == "customized" and part.risk_words:
                detail["keyword"] = part.risk_words[0]
            hits.append((_suggestion(risky[0]), label, round(risky[0].confidence, 2)))
        details.append(detail)
    suggestion, label, rate = max(hits, key=lambda hit: (SUGGESTION_ORDER[hit[0]], hit[2]),
                                  default=(PASS, NORMAL, NORMAL_RATE))
    return [{"scene": AUDIO_SCENE, "label": label, "suggestion": suggestion, "rate": rate,
             "details": details}]


def _suggestion(label: Label) -> str:
    return BLOCK if label.risk_level == "high" else REVIEW


def _frames_task(task: dict[str, Any], scenes: list[str], config: EmulatorConfig
                 ) -> dict[str, Any]:
    """One ``VideoSyncScan`` task: fetch its frames, moderate them as a sequence."""
    item = task_head(task, f"vi{uuid.uuid4().hex}")
    try:
        frames = _frame_list(task)
        images = [(offset, fetch_url(url, None, config)) for offset, url in frames]
        media = Media(name=item.get("dataId") or "frames", kind="frames", frames=images)
        # In this thread, like the video worker's analyses: the engine's default here would
        # start its pool of worker processes, each loading the models, all while the client's
        # read timeout runs (the SDK's is 10 s; under load that start-up alone exceeded it).
        result = _local(media, ModerationRequest(scenes=ENGINE_SCENES,
                                                 options=dict(ENGINE_OPTIONS)))
    except BusinessError as exc:
        return failed(item, exc.code, exc.message)
    urls = {offset: url for offset, url in frames}
    item["results"] = frame_results(result.frames, scenes,
                                    lambda _, frame: urls.get(frame.offset))
    return item


def _frame_list(task: dict[str, Any]) -> list[tuple[float, str]]:
    prefix = task.get("framePrefix") or ""
    frames = task.get("frames")
    if not isinstance(prefix, str) or not isinstance(frames, list) or not frames:
        raise BusinessError(BAD_REQUEST, "tasks[].frames is required")
    if len(frames) > MAX_FRAMES:
        raise BusinessError(BAD_REQUEST, f"at most {MAX_FRAMES} frames")
    out = []
    for frame in frames:
        if not isinstance(frame, dict) or not isinstance(frame.get("url"), str):
            raise BusinessError(BAD_REQUEST, "tasks[].frames[].url is required")
        offset = frame.get("offset", 0)
        if isinstance(offset, bool) or not isinstance(offset, int | float) or offset < 0:
            raise BusinessError(BAD_REQUEST, "tasks[].frames[].offset must be seconds >= 0")
        out.append((float(offset), prefix + frame["url"]))
    return out


# --- feedback ------------------------------------------------------------------------------


def _feedback(call: Call, path: str, task_required: bool) -> Reply:
    try:
        body = parse_object(call.request.body)
        check_feedback(body, task_required)
    except BusinessError as exc:
        return Reply(200, envelope(call, exc.code, exc.message))
    with _feedback_lock:
        FEEDBACK.append({"path": path, "body": body, "requestId": call.request_id})
    return Reply(200, envelope(call))


def check_feedback(body: dict[str, Any], task_required: bool) -> None:
    """The documented rules of both feedback bodies (API reference §2.5, §2.7)."""
    for key in ("taskId", "dataId", "url", "label", "note"):
        if key in body and not isinstance(body[key], str):
            raise BusinessError(BAD_REQUEST, f"{key} must be a string")
    if task_required and not body.get("taskId"):
        raise BusinessError(BAD_REQUEST, "taskId is required")
    suggestion = body.get("suggestion")
    if suggestion is not None:
        if suggestion not in (PASS, BLOCK):
            raise BusinessError(BAD_REQUEST, "suggestion must be pass or block")
        _string_list(body.get("scenes"), "scenes (with suggestion)")
    for frame in body.get("frames") or []:
        if not isinstance(frame, dict) or not isinstance(frame.get("url"), str) or \
                not isinstance(frame.get("offset", 0), int | float):
            raise BusinessError(BAD_REQUEST, "frames[] must be {url, offset}")
    for result in body.get("results") or []:
        if not isinstance(result, dict) or not isinstance(result.get("scene"), str):
            raise BusinessError(BAD_REQUEST, "results[] must be {scene, label}")
