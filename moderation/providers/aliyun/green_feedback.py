"""Content Moderation 1.0 feedback bodies: a moderator's verdict in the 1.0 vocabulary.

``/green/image/feedback`` (aliyun-api-reference.md §2.5) and ``/green/video/feedback`` (§2.7)
take the expected ``suggestion`` (``pass``/``block``, which needs ``scenes``), the task, the
URL (an image enters the feedback library only with it, §2.13) and, for video, the frames
concerned. Our labels become 1.0 (scene, label) pairs through ``vocabulary``; labels 1.0
cannot express (speech labels, for instance) are left out rather than guessed.
"""

from __future__ import annotations

from typing import Any

from ..base import Feedback
from ..errors import NotSupported
from .green_tasks import dumps
from .green_video import video_scenes
from .vocabulary import BLOCK, NORMAL, PASS, V1Result, to_v1

IMAGE_ACTION, IMAGE_PATH = "ImageScanFeedback", "/green/image/feedback"
VIDEO_ACTION, VIDEO_PATH = "VideoFeedback", "/green/video/feedback"
DECISIONS = (PASS, BLOCK)


def _mapped(feedback: Feedback) -> list[V1Result]:
    return [m for m in (to_v1(label) for label in feedback.labels) if m is not None]


def _common(feedback: Feedback) -> dict[str, Any]:
    if feedback.decision not in DECISIONS:
        raise ValueError(f"feedback decision must be one of {DECISIONS}, "
                         f"not {feedback.decision!r}")
    body: dict[str, Any] = {}
    for key, value in (("taskId", feedback.task_id), ("dataId", feedback.data_id),
                       ("url", feedback.url)):
        if value:
            body[key] = value
    return body


def _scenes(feedback: Feedback, mapped: list[V1Result], default: tuple[str, ...]) -> list[str]:
    """The labels' scenes, then the job's; the default scenes when neither names one (a
    ``suggestion`` without ``scenes`` is refused, §2.5)."""
    scenes = list(dict.fromkeys([*(m.scene for m in mapped), *feedback.scenes]))
    return scenes or list(default)


def image_body(feedback: Feedback, default_scenes: tuple[str, ...]) -> bytes:
    """ImageScanFeedback: ``suggestion`` + ``scenes``; ``label`` is the expected label (the
    first label blocked, ``normal`` for a pass)."""
    body = _common(feedback)
    mapped = _mapped(feedback)
    body["scenes"] = _scenes(feedback, mapped, default_scenes)
    body["suggestion"] = feedback.decision
    body["label"] = mapped[0].label if feedback.decision == BLOCK and mapped else NORMAL
    if feedback.note:
        body["note"] = feedback.note
    return dumps(body)


def video_body(feedback: Feedback, default_scenes: tuple[str, ...]) -> bytes:
    """VideoFeedback: ``taskId`` (required by the service), ``frames[] {url, offset}``,
    ``suggestion``, video ``scenes``, and for a block the ``results[] {scene, label}``."""
    if not feedback.task_id:
        raise NotSupported("1.0 video feedback needs the provider's task id",
                           code="no_task_id")
    body = _common(feedback)
    mapped = [V1Result("ad", m.label, m.suggestion) if m.scene == "qrcode" else m
              for m in _mapped(feedback)]
    if feedback.frames:
        body["frames"] = [{"url": url, "offset": offset} for offset, url in feedback.frames]
    body["suggestion"] = feedback.decision
    body["scenes"] = video_scenes(_scenes(feedback, mapped, default_scenes))
    if feedback.decision == BLOCK and mapped:
        body["results"] = [{"scene": scene, "label": label}
                           for scene, label in dict.fromkeys((m.scene, m.label)
                                                             for m in mapped)]
    if feedback.note:
        body["note"] = feedback.note
    return dumps(body)
