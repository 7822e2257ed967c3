"""Content Moderation 2.0 video moderation: request parameters and result parsing.

Submit-and-poll (aliyun-protocol.md §4.2): ``VideoModeration`` answers ``Data.TaskId``;
``VideoModerationResult`` answers ``Code`` 280 while the task runs and 200 with ``FrameResult``
and ``AudioResult`` when it is done (Appendix A "VideoModerationResult response body";
aliyun-api-reference.md §3.3). Temporary URLs (``TempUrl``, ``SliceDetails[].Url``) are kept as
strings: the pipeline copies evidence later, and they expire with the result (24 h).

Also here, because images share them: ``oss://BUCKET/KEY`` sources, sent as
``ossBucketName``/``ossObjectName``/``ossRegionId`` instead of a URL (api-reference §3.2,
§3.3), and the nearline answer 288 (``offline`` submissions; brief-supplied, not in the specs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ...labels import make_label
from ..errors import MediaError, ProviderError
from ..result import RISK_LEVELS, Frame, Label, Result, Slice, worst_risk

SUBMIT_ACTION = "VideoModeration"
RESULT_ACTION = "VideoModerationResult"
CANCEL_ACTION = "VideoModerationCancel"
DEFAULT_VIDEO_SERVICE = "videoDetection_global"
PROCESSING = 280  # §2.6/§4.3: the task is still running, ask again later
# An ``offline`` (nearline) task still waits in the queue: ask again later, like 280. Not in
# shared/specs (they document ``offline`` for 1.0 only); taken from the task brief.
NEARLINE = 288
WAITING = (PROCESSING, NEARLINE)
OSS_SCHEME = "oss"
# OSS bucket names: 3-63 lower-case letters, digits and hyphens, no hyphen at either end.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
LABEL_SERVICE = "guardrails"
NO_LABEL = "nonLabel"


def _json(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), ensure_ascii=False, separators=(",", ":"))


def oss_location(url: str) -> tuple[str, str] | None:
    """(bucket, key) of ``oss://BUCKET/KEY``, None for any other URL.

    The key is taken verbatim (no percent-decoding): it is what OSS stores. A malformed
    ``oss://`` URI is a ``MediaError``: retrying cannot fix it.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != OSS_SCHEME:
        return None
    bucket, _, key = rest.partition("/")
    if not _BUCKET.match(bucket) or not key or key.startswith("/"):
        raise MediaError(f"{url!r} is not oss://BUCKET/KEY (bucket: 3-63 of a-z 0-9 -)",
                         code="invalid_oss_uri")
    return bucket, key


def media_source(url: str, region: str, url_key: str = "url") -> dict[str, str]:
    """Where the service reads the media: ``{url_key: url}``, or for ``oss://BUCKET/KEY`` the
    OSS trio (api-reference §3.2/§3.3) with ``ossRegionId`` = the provider's region, so the
    service reads the object itself (the bucket must authorise Content Moderation)."""
    location = oss_location(url)
    if location is None:
        return {url_key: url}
    bucket, key = location
    return {"ossBucketName": bucket, "ossObjectName": key, "ossRegionId": region}


def submit_parameters(
    url: str, data_id: str = "", callback: str = "", seed: str = "", crypt_type: str = "",
    *, referer: str = "", offline: bool = False, region: str = "",
) -> str:
    """``ServiceParameters`` of VideoModeration (§4.2): the source (``url`` or the OSS trio,
    see :func:`media_source`), ``dataId``, ``referer`` (hot-link-protected URLs),
    ``offline: true`` (nearline: queued rather than refused when the concurrency quota is
    full), and the callback trio passed through as given; empty keys are left out."""
    params: dict[str, Any] = {
        **media_source(url, region), "dataId": data_id, "referer": referer,
        "offline": True if offline else None,
        "callback": callback, "seed": seed, "cryptType": crypt_type,
    }
    return _json({key: value for key, value in params.items() if value})


def task_parameters(task_id: str) -> str:
    """``ServiceParameters`` of VideoModerationResult / VideoModerationCancel: ``taskId``."""
    return _json({"taskId": task_id})


def _risk(value: Any) -> str | None:
    level = str(value or "").strip().lower()
    return level if level in RISK_LEVELS else None


def _items(value: Any) -> list[Mapping[str, Any]]:
    """The mappings of a list field; SDK list fields may be missing or null (§4.2)."""
    return [item for item in value or [] if isinstance(item, Mapping)] if isinstance(
        value, list) else []


def _split(value: Any) -> list[str]:
    """A comma-separated field (``Labels``, ``RiskWords``) as a list of non-empty names."""
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


def _seconds(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _label(name: str, confidence: Any, service: str, description: Any = "") -> Label:
    return make_label(
        name,
        100.0 if confidence is None else float(confidence),
        service=LABEL_SERVICE,
        scene=service,
        description=str(description or ""),
    )


def parse_frame(item: Mapping[str, Any], service: str) -> Frame:
    """One ``FrameResult.Frames[]`` element: labels from ``Results[].Result[]``."""
    labels = [
        _label(str(hit["Label"]), hit.get("Confidence"), str(group.get("Service") or service),
               hit.get("Description"))
        for group in _items(item.get("Results"))
        for hit in _items(group.get("Result"))
        if hit.get("Label")
    ]
    temp_url = item.get("TempUrl")
    return Frame(
        offset=_seconds(item.get("Offset")),
        risk_level=_risk(item.get("RiskLevel")) or worst_risk(lbl.risk_level for lbl in labels),
        labels=labels,
        image=str(temp_url) if temp_url else None,
    )


def parse_slice(item: Mapping[str, Any], service: str) -> Slice:
    """One ``AudioResult.SliceDetails[]`` element; ``Labels``/``RiskWords`` are comma lists."""
    labels = [_label(name, None, service) for name in _split(item.get("Labels"))]
    url = item.get("Url")
    return Slice(
        start=_seconds(item.get("StartTime")),
        end=_seconds(item.get("EndTime")),
        text=str(item.get("Text") or ""),
        labels=labels,
        risk_words=_split(item.get("RiskWords")),
        risk_level=_risk(item.get("RiskLevel")) or worst_risk(lbl.risk_level for lbl in labels),
        audio=str(url) if url else None,
    )


def _summary(items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``FrameSummarys`` / ``AudioSummarys`` as {label: count}."""
    return {str(item["Label"]): int(item.get("LabelSum") or 0) for item in items
            if item.get("Label")}


def _job_labels(parts: Iterable[Frame | Slice]) -> list[Label]:
    """One label per name, the most confident; ``nonLabel`` only when nothing else is."""
    best: dict[str, Label] = {}
    for part in parts:
        for lbl in part.labels:
            if lbl.label not in best or lbl.confidence > best[lbl.label].confidence:
                best[lbl.label] = lbl
    if len(best) > 1:
        best.pop(NO_LABEL, None)
    return [best[name] for name in sorted(best)]


def parse_video_result(body: Mapping[str, Any], service: str, task_id: str = "") -> Result:
    """A VideoModerationResult body (Appendix A) as a Result.

    Code 280 or 288 (nearline, still queued) -> ``in_progress`` with the task id, so the
    pipeline polls again with its usual backoff; Code 200 -> ``done`` with one Frame per
    ``Frames[]`` and one Slice per ``SliceDetails[]``; the job's risk is ``Data.RiskLevel``
    when sent, else the worst part. Other codes are raised by ``errors`` before this runs.
    """
    data = body.get("Data") if isinstance(body.get("Data"), Mapping) else {}
    task_id = str(data.get("TaskId") or task_id)
    if str(body.get("Code")) in {str(code) for code in WAITING}:
        return Result(status="in_progress", task_id=task_id, raw=dict(body))
    if not data:
        raise ProviderError(f"{RESULT_ACTION} answered Code 200 without Data",
                            code="bad_response")
    frame_result = data.get("FrameResult") if isinstance(data.get("FrameResult"), Mapping) else {}
    audio_result = data.get("AudioResult") if isinstance(data.get("AudioResult"), Mapping) else {}
    frames = [parse_frame(item, service) for item in _items(frame_result.get("Frames"))]
    slices = [parse_slice(item, service) for item in _items(audio_result.get("SliceDetails"))]
    parts = [*frames, *slices]
    risk = _risk(data.get("RiskLevel")) or worst_risk(part.risk_level for part in parts)
    return Result(
        status="done",
        risk_level=risk,
        labels=_job_labels(parts),
        frames=frames,
        slices=slices,
        frame_summary=_summary(_items(frame_result.get("FrameSummarys"))),
        audio_summary=_summary(_items(audio_result.get("AudioSummarys"))),
        task_id=task_id,
        raw=dict(body),
    )


def parse_submit(body: Mapping[str, Any]) -> Result:
    """A VideoModeration body: ``in_progress`` with ``Data.TaskId`` (required)."""
    data = body.get("Data") if isinstance(body.get("Data"), Mapping) else {}
    task_id = str(data.get("TaskId") or "")
    if not task_id:
        raise ProviderError(f"{SUBMIT_ACTION} answered without Data.TaskId", code="bad_response")
    return Result(status="in_progress", task_id=task_id, raw=dict(body))
