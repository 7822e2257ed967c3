"""Content Moderation 1.0 (``Green``, API version 2018-05-09) handlers of the emulator.

So far: ``ImageSyncScan`` (``POST /green/image/scan``, aliyun-protocol.md §2.2-§2.4). Each
task's ``url`` is downloaded with the 2.0 image code (:func:`.guardrails.fetch_url`), run
through the offline ``local`` provider with the requested scenes, and answered in the 1.0
vocabulary (``providers.aliyun.vocabulary``): one ``results[]`` entry per requested scene,
``normal``/``pass`` when nothing was found. A broken request is an envelope ``code`` (400); a
task that fails (download, format) is a per-task ``code`` while the request succeeds (§2.6).
"""

from __future__ import annotations

import io
import json
import uuid
from functools import partial
from typing import Any

from ..providers import Media, MediaError, ModerationError, ModerationRequest, get_provider
from ..providers.aliyun.vocabulary import NORMAL, PASS, SUGGESTION_ORDER, V1Result, to_v1
from ..providers.result import Label
from .app import Call, Reply, Routes
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
#: 1.0 scenes the emulator answers -> local-engine scenes (the others are refused, 400).
SCENES = {"porn": "porn", "qrcode": "qrcode", "ad": "ad"}
MAX_TASKS = 100  # §2.3, sync scans
NORMAL_RATE = 99.9  # the rate of a "normal" result (as in the emulator notes §3.1)

#: §2.6 code -> msg.
MESSAGES = {
    200: "OK", 400: "BAD_REQUEST", 401: "NOT_ALLOWED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    480: "DOWNLOAD_FAILED", 586: "ALGO_FAILED", 589: "TOO_LARGE", 590: "BAD_FORMAT",
    592: "DOWNLOAD_TIMEOUT",
}


def image_scan(call: Call) -> Reply:
    """``ImageSyncScan``: a JSON object with ``scenes`` and ``tasks`` (§2.3); answers the §2.4
    envelope with lower-camel keys and one ``data[]`` element per task."""
    envelope = {"code": 200, "msg": "OK", "requestId": call.request_id}
    try:
        scenes, tasks = _parse_body(call.request.body)
    except BusinessError as exc:
        return Reply(200, {**envelope, "code": exc.code, "msg": exc.message})
    data = [_scan_task(task, scenes, call) for task in tasks]
    return Reply(200, {**envelope, "data": data})


ROUTES: Routes = {("/green/image/scan", VERSION): image_scan}


def _parse_body(raw: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BusinessError(BAD_REQUEST, "the body is not a JSON object") from None
    if not isinstance(body, dict):
        raise BusinessError(BAD_REQUEST, "the body is not a JSON object")
    scenes, tasks = body.get("scenes"), body.get("tasks")
    if not isinstance(scenes, list) or not scenes or not all(isinstance(s, str) for s in scenes):
        raise BusinessError(BAD_REQUEST, "scenes is required")
    unknown = [scene for scene in scenes if scene not in SCENES]
    if unknown:
        raise BusinessError(BAD_REQUEST, f"scenes not emulated: {', '.join(unknown)}")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, dict) for t in tasks):
        raise BusinessError(BAD_REQUEST, "tasks is required")
    if len(tasks) > MAX_TASKS:
        raise BusinessError(BAD_REQUEST, f"at most {MAX_TASKS} tasks")
    return list(dict.fromkeys(scenes)), tasks


def _scan_task(task: dict[str, Any], scenes: list[str], call: Call) -> dict[str, Any]:
    """One ``data[]`` element; a failed task carries its own code and no ``results``."""
    item: dict[str, Any] = {"code": 200, "msg": "OK"}
    if isinstance(task.get("dataId"), str):
        item["dataId"] = task["dataId"]
    item["taskId"] = f"img{uuid.uuid4().hex}"
    url = task.get("url")
    if isinstance(url, str):
        item["url"] = url
    try:
        if not isinstance(url, str) or not url:
            raise BusinessError(BAD_REQUEST, "tasks[].url is required")
        labels = moderate(fetch_url(url, None, call.config), scenes, item.get("dataId", ""))
    except BusinessError as exc:
        return {**item, "code": exc.code, "msg": MESSAGES.get(exc.code, exc.message)}
    item["results"] = scene_results(labels, scenes)
    return item


def moderate(data: bytes, scenes: list[str], data_id: str) -> list[Label]:
    """The local provider's labels for the bytes; its errors become §2.6 codes."""
    media = Media(name=data_id or "image", kind="image", opener=partial(io.BytesIO, data),
                  size=len(data))
    request = ModerationRequest(scenes=[SCENES[s] for s in scenes], data_id=data_id)
    try:
        return get_provider("local").submit(media, request).labels
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
