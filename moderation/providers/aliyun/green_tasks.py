"""Content Moderation 1.0: what every operation shares below the envelope, as pure functions.

1.0 answers ``{code, msg, requestId, data}`` and, for the batch operations, one ``data[]``
element per task with its *own* ``code``/``msg`` (aliyun-protocol.md §2.4, §2.6): the request
can succeed while its task failed, and a result query answers per-task ``280`` while the task
runs. This module reads that level (submit answers, result answers, callback contents) and
builds the bodies of the asynchronous operations; ``green`` sends them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ...labels import make_label
from ..base import ModerationRequest
from ..errors import ProviderError
from ..result import Label, Result, worst_risk
from .client import image_result
from .errors import V1_OVERRIDES, error_for
from .vocabulary import BLOCK, PASS, REVIEW, from_v1

PROCESSING = 280  # per-task "still running, ask again" (§2.6)
LABEL_SERVICE = "green"
#: 1.0 suggestion -> our risk level. The suggestion is the service's verdict (console
#: thresholds), so it sets the job's risk, as ``Data.RiskLevel`` does for 2.0; the labels
#: themselves keep the risk of ``labels.DEFAULT_LABELS`` (via make_label).
RISK_OF_SUGGESTION = {BLOCK: "high", REVIEW: "medium", PASS: "none"}
#: Task ids of image tasks start with this (the service's ``img...`` ids, API reference
#: §2.4 examples; the emulator issues the same); everything else is a video task.
IMAGE_TASK_PREFIX = "img"


def dumps(value: Any) -> bytes:
    """A request body: UTF-8 JSON, as the SDK samples send it (§2.1)."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def task_kind(task_id: str) -> str:
    """``image`` or ``video``: which ``.../results`` operation knows ``task_id``."""
    return "image" if task_id.startswith(IMAGE_TASK_PREFIX) else "video"


def risk_of(suggestion: Any) -> str:
    """Our risk level of a 1.0 suggestion; an unknown suggestion asks for a look."""
    return RISK_OF_SUGGESTION.get(str(suggestion or ""), "medium")


def items(value: Any) -> list[Mapping[str, Any]]:
    """The mappings of a list field (missing, null or odd elements are skipped)."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(
        value, list) else []


def first_task(body: Mapping[str, Any], action: str) -> Mapping[str, Any]:
    """``data[0]`` of a code-200 answer; we always send one task per request."""
    data = items(body.get("data"))
    if not data:
        raise ProviderError(f"{action} answered code 200 without data", code="bad_response")
    return data[0]


def raise_for_task(task: Mapping[str, Any], request_id: str = "") -> None:
    """Raise the error of a failed task (``code`` other than 200 and 280), through the one
    table with the 1.0 meaning of its codes (``V1_OVERRIDES``): 594 is ``Expired``."""
    code = str(task.get("code"))
    if code in ("200", str(PROCESSING)):
        return
    raise error_for(task.get("code"), str(task.get("msg") or ""), request_id=request_id,
                    overrides=V1_OVERRIDES)


def in_progress(task: Mapping[str, Any]) -> bool:
    return str(task.get("code")) == str(PROCESSING)


def submitted(body: Mapping[str, Any], action: str) -> Result:
    """An async submit answer: ``in_progress`` with ``data[0].taskId`` (or the task's error)."""
    task = first_task(body, action)
    raise_for_task(task, str(body.get("requestId") or ""))
    task_id = str(task.get("taskId") or "")
    if not task_id:
        raise ProviderError(f"{action} answered without a taskId", code="bad_response")
    return Result(status="in_progress", task_id=task_id, raw=dict(body))


def async_fields(request: ModerationRequest, crypt_type: str = "") -> dict[str, Any]:
    """``callback``/``seed``/``cryptType`` of an async submit: only with a callback URL (the
    seed is the job's own, so the callback view can verify the checksum)."""
    if not request.callback_url:
        return {}
    fields: dict[str, Any] = {"callback": request.callback_url, "seed": request.seed}
    if crypt_type:
        fields["cryptType"] = crypt_type
    return fields


def task_entry(url: str, data_id: str = "", **extra: Any) -> dict[str, Any]:
    """One ``tasks[]`` element; ``dataId`` only when set."""
    entry: dict[str, Any] = {"dataId": data_id} if data_id else {}
    entry["url"] = url
    entry.update({key: value for key, value in extra.items() if value is not None})
    return entry


def image_body(url: str, request: ModerationRequest, scenes: Iterable[str],
               biz_type: str = "", crypt_type: str = "", asynchronous: bool = False) -> bytes:
    """The ImageSyncScan / ImageAsyncScan body (§2.3); empty optional keys are left out."""
    body: dict[str, Any] = {"scenes": list(scenes),
                            "tasks": [task_entry(url, request.data_id)]}
    if biz_type:
        body["bizType"] = biz_type
    if asynchronous:
        body.update(async_fields(request, crypt_type))
    return dumps(body)


def image_labels(task: Mapping[str, Any]) -> tuple[list[Label], str]:
    """Labels and job risk of an image task's ``results[]``: ``normal`` gives no label; the
    risk is the worst suggestion's."""
    labels: list[Label] = []
    risks: list[str] = []
    for item in items(task.get("results")):
        scene = str(item.get("scene") or "")
        risks.append(risk_of(item.get("suggestion")))
        name = from_v1(scene, str(item.get("label") or ""))
        if name is not None:
            labels.append(make_label(name, float(item.get("rate") or 0), LABEL_SERVICE, scene))
    return labels, worst_risk(risks)


def parse_image_task(task: Mapping[str, Any], raw: Mapping[str, Any],
                     request_id: str = "") -> Result:
    """One image ``data[]`` element (sync scan, async result or callback) as a Result:
    ``in_progress`` on 280, one frame at offset 0 when done, the task's error otherwise."""
    raise_for_task(task, request_id)
    task_id = str(task.get("taskId") or "")
    if in_progress(task):
        return Result(status="in_progress", task_id=task_id, raw=dict(raw))
    labels, risk = image_labels(task)
    result = image_result(labels, risk, raw)
    result.task_id = task_id
    return result
