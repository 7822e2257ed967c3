"""Content Moderation 1.0 video: request bodies and the reading of video task results.

``/green/video/asyncscan`` takes a file or stream URL (``live``) and, with
``audioScenes: ["antispam"]``, the soundtrack; ``/green/video/results`` answers per-task 280
until done, then ``results[]`` per frame scene with the frames that justify it
(``frames[] {url, offset, label, rate}``) and ``audioScanResults[].details[]`` per sentence
(aliyun-api-reference.md §2.6, §2.9). ``/green/video/syncscan`` takes frame URLs only.

The result becomes the same normalized Result as the 2.0 parser builds: one Frame per offset
(its labels from every scene that listed it, the temporary ``url`` kept as evidence to copy)
and one Slice per sentence. 1.0 lists only the frames that justify a label, so clean frames
are absent; it sends no audio clip URL, so slices carry text and labels but no clip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...labels import make_label
from ..base import ModerationRequest
from ..result import Frame, Label, Result, Slice, worst_risk
from .green_tasks import (
    LABEL_SERVICE,
    async_fields,
    dumps,
    in_progress,
    items,
    raise_for_task,
    risk_of,
    task_entry,
)
from .vocabulary import NORMAL, from_v1

SUBMIT_ACTION, SUBMIT_PATH = "VideoAsyncScan", "/green/video/asyncscan"
RESULTS_ACTION, RESULTS_PATH = "VideoAsyncScanResults", "/green/video/results"
SYNC_ACTION, SYNC_PATH = "VideoSyncScan", "/green/video/syncscan"
CANCEL_ACTION, CANCEL_PATH = "VideoCancelScan", "/green/video/cancelscan"
#: Frame scenes of 1.0 video (§2.6); there is no ``qrcode`` scene: QR codes come back as
#: the ``ad`` scene's frame label ``qrcode`` (§2.9 "frames[].label can carry the finer label").
VIDEO_SCENES = ("porn", "terrorism", "ad", "live", "logo")
AUDIO_SCENE = "antispam"

#: 1.0 audio ``antispam`` label <-> our speech label (the 2.0 audio family, aliyun-labels.json
#: ``v2_audio``; the local engine says ``profanity``, ``ad``, ``C_customized``). Kept here,
#: next to the only parser that reads it; ``vocabulary`` holds the image scenes.
AUDIO_FROM_V1 = {
    "abuse": "profanity", "ad": "ad", "customized": "C_customized", "porn": "sexual_content",
    "politics": "political_content", "terrorism": "violence", "contraband": "contraband",
    "spam": "spam", "flood": "spam", "meaningless": "nonsense",
}
AUDIO_TO_V1 = {ours: v1 for v1, ours in AUDIO_FROM_V1.items() if v1 != "flood"}
AUDIO_FALLBACK = "spam"  # the catch-all of the antispam scene


def audio_from_v1(label: str) -> str | None:
    """Our speech label for a 1.0 antispam label; None for ``normal``."""
    if not label or label == NORMAL:
        return None
    return AUDIO_FROM_V1.get(label, f"{AUDIO_SCENE}_{label}")


def audio_to_v1(label: str) -> str | None:
    """The antispam label of one of our speech labels; None for "no risk"."""
    if label in ("", "nonLabel"):
        return None
    return AUDIO_TO_V1.get(label, AUDIO_FALLBACK)


def video_scenes(scenes: Iterable[str]) -> list[str]:
    """Our scenes as 1.0 video frame scenes: ``qrcode`` is read through ``ad``."""
    out: list[str] = []
    for scene in scenes:
        scene = "ad" if scene == "qrcode" else scene
        if scene not in out:
            out.append(scene)
    return out


def _number(value: Any) -> Any:
    """2 rather than 2.0 on the wire (the service documents integers)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def async_body(url: str, request: ModerationRequest, scenes: Iterable[str], *,
               audio: bool = False, live: bool = False, biz_type: str = "",
               crypt_type: str = "") -> bytes:
    """The VideoAsyncScan body (§2.3/§2.6): one task with ``url``; ``interval`` and
    ``maxFrames`` from the job's options; ``live``/``audioScenes``/callback only when used."""
    options = request.options or {}
    task = task_entry(url, request.data_id,
                      interval=_number(options.get("interval")),
                      maxFrames=_number(options.get("max_frames")))
    body: dict[str, Any] = {"scenes": video_scenes(scenes), "tasks": [task]}
    if live:
        body["live"] = True
    if audio:
        body["audioScenes"] = [AUDIO_SCENE]
    if biz_type:
        body["bizType"] = biz_type
    body.update(async_fields(request, crypt_type))
    return dumps(body)


def sync_body(frames: Iterable[tuple[float, str]], request: ModerationRequest,
              scenes: Iterable[str], biz_type: str = "") -> bytes:
    """The VideoSyncScan body: one task with ``frames[] {url, offset}`` (frames only, §2.6)."""
    task: dict[str, Any] = {"dataId": request.data_id} if request.data_id else {}
    task["frames"] = [{"url": url, "offset": _number(float(offset))} for offset, url in frames]
    body: dict[str, Any] = {"scenes": video_scenes(scenes), "tasks": [task]}
    if biz_type:
        body["bizType"] = biz_type
    return dumps(body)


def _seconds(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _rate(*values: Any) -> float:
    """The first given rate (0..100); a hit without one counts as certain."""
    for value in values:
        if value not in (None, ""):
            return _seconds(value)
    return 100.0


def parse_frames(task: Mapping[str, Any]) -> tuple[list[Frame], list[Label], list[str]]:
    """Frames (one per offset, labels of every scene that lists it), scene-level labels of
    scenes that name no frame, and each scene's risk (its suggestion)."""
    frames: dict[float, Frame] = {}
    scene_labels: list[Label] = []
    risks: list[str] = []
    for result in items(task.get("results")):
        scene, label = str(result.get("scene") or ""), str(result.get("label") or "")
        scene_risk = risk_of(result.get("suggestion"))
        risks.append(scene_risk)
        hits = items(result.get("frames"))
        name = from_v1(scene, label)
        if not hits and name is not None:
            scene_labels.append(make_label(name, _rate(result.get("rate")), LABEL_SERVICE, scene))
        for hit in hits:
            offset = _seconds(hit.get("offset"))
            frame = frames.setdefault(offset, Frame(offset=offset))
            hit_name = from_v1(scene, str(hit.get("label") or label))
            if hit_name is not None:
                lbl = make_label(hit_name, _rate(hit.get("rate"), result.get("rate")),
                                 LABEL_SERVICE, scene)
                frame.labels.append(lbl)
                # The service listed the frame as evidence: below our threshold it still
                # carries the scene's verdict, so its thumbnail is kept.
                level = lbl.risk_level if lbl.risk_level != "none" else scene_risk
                frame.risk_level = worst_risk([frame.risk_level, level])
            if hit.get("url") and not frame.image:
                frame.image = str(hit["url"])
    return [frames[offset] for offset in sorted(frames)], scene_labels, risks


def parse_slices(task: Mapping[str, Any]) -> tuple[list[Slice], list[str]]:
    """One Slice per ``audioScanResults[].details[]`` sentence, and each audio verdict's risk."""
    slices: list[Slice] = []
    risks: list[str] = []
    for audio in items(task.get("audioScanResults")):
        scene = str(audio.get("scene") or AUDIO_SCENE)
        audio_risk = risk_of(audio.get("suggestion"))
        risks.append(audio_risk)
        for detail in items(audio.get("details")):
            name = audio_from_v1(str(detail.get("label") or ""))
            labels = [make_label(name, _rate(detail.get("rate")), LABEL_SERVICE, scene)
                      ] if name else []
            level = worst_risk(lbl.risk_level for lbl in labels)
            if labels and level == "none":
                level = audio_risk
            keyword = detail.get("keyword")
            slices.append(Slice(
                start=_seconds(detail.get("startTime")), end=_seconds(detail.get("endTime")),
                text=str(detail.get("text") or ""), labels=labels,
                risk_words=[str(keyword)] if keyword else [], risk_level=level,
            ))
    return sorted(slices, key=lambda part: part.start), risks


def _job_labels(parts: Iterable[Frame | Slice], extra: Iterable[Label]) -> list[Label]:
    """One label per name, the most confident."""
    best: dict[str, Label] = {}
    for lbl in [*(lbl for part in parts for lbl in part.labels), *extra]:
        if lbl.label not in best or lbl.confidence > best[lbl.label].confidence:
            best[lbl.label] = lbl
    return [best[name] for name in sorted(best)]


def _summary(parts: Iterable[Frame | Slice]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in parts:
        for name in {lbl.label for lbl in part.labels if lbl.risk_level != "none"}:
            counts[name] = counts.get(name, 0) + 1
    return counts


def parse_video_task(task: Mapping[str, Any], raw: Mapping[str, Any],
                     request_id: str = "") -> Result:
    """One video ``data[]`` element (async result, sync frame scan or callback) as a Result.

    280 -> ``in_progress`` (with whatever frames and sentences a live task has so far);
    200 -> ``done``, its risk the worst of the scenes' and the soundtrack's suggestions;
    another code -> that task's error (594: ``Expired``).
    """
    raise_for_task(task, request_id)
    frames, scene_labels, frame_risks = parse_frames(task)
    slices, audio_risks = parse_slices(task)
    risk = worst_risk([*frame_risks, *audio_risks])
    return Result(
        status="in_progress" if in_progress(task) else "done",
        risk_level=risk,
        labels=_job_labels([*frames, *slices], scene_labels),
        frames=frames,
        slices=slices,
        frame_summary=_summary(frames),
        audio_summary=_summary(slices),
        task_id=str(task.get("taskId") or ""),
        raw=dict(raw),
    )
