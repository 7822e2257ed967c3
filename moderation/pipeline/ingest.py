"""Ingest: store a finished result as rows, then apply the policy (``verdict.apply_policy``).

Runs inside the ingest transaction (the evidence files are saved before it); never calls a
provider, so it does not import the worker.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from ..conf import moderation_settings
from ..evidence import download
from ..models import UNFINISHED, AudioSlice, Frame, FrameLabel, Job, ReviewEvent, Status
from ..providers import MediaError, Result, UnknownProvider, get_provider
from ..providers.result import probability
from ..storage import discard, discards_evidence_on_failure, save_evidence
from .jobs import log
from .verdict import apply_policy

Action = ReviewEvent.Action


# --- ingest -----------------------------------------------------------------------------


def result_version(alias: str) -> str:
    """The provider's ``result_version``, stored with each result so that a result an older
    engine made is not reused (``worker.reusable_result``)."""
    try:
        return get_provider(alias).result_version
    except UnknownProvider:
        return ""


@discards_evidence_on_failure  # a failed transaction leaves no orphaned evidence files
def ingest(job: Job, result: Result, raw: Any = None) -> Job:
    """Store a finished result as rows (replacing earlier rows) and apply the policy."""
    if result.status == "failed":
        raise MediaError(_failure_message(result), code="provider_failed")
    if not result.analysed:  # e.g. no decodable frame and no audio: never a pass
        raise MediaError("the provider analysed nothing (no frame, no audio)",
                         code="nothing_analysed")
    evidence = _store_evidence(job, result)
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.status not in UNFINISHED:
            discard(evidence.values())  # nothing will refer to them
            return locked  # cancelled meanwhile, or a late duplicate
        locked.frames.all().delete()
        locked.slices.all().delete()
        _write_frames(locked, result, evidence)
        _write_slices(locked, result, evidence)
        locked.status = Status.DONE
        locked.risk_level = result.risk_level
        locked.labels = sorted({lbl.label for lbl in result.all_labels()
                                if lbl.risk_level != "none"})
        locked.frame_summary = result.frame_summary or _summary(result.frames)
        locked.audio_summary = result.audio_summary or _summary(result.slices)
        locked.result = result.to_dict() | {"raw": None,
                                            "result_version": result_version(locked.provider)}
        locked.raw_result = raw if raw is not None else result.raw
        locked.error_code = locked.error_message = ""
        locked.next_attempt_at = None
        locked.completed_at = timezone.now()
        locked.save()
        log(locked, Action.COMPLETED, risk_level=locked.risk_level)
        apply_policy(locked)
    job.refresh_from_db()
    return job


def _failure_message(result: Result) -> str:
    raw = result.raw if isinstance(result.raw, dict) else {}
    return str(raw.get("msg") or raw.get("Message") or "the provider could not moderate it")


def _summary(parts) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in parts:
        for name in {lbl.label for lbl in part.labels if lbl.risk_level != "none"}:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _store_evidence(job: Job, result: Result) -> dict[tuple[str, int], str]:
    """Save thumbnails and clips to evidence storage before the transaction (file I/O)."""
    keep_all = moderation_settings.THUMBNAIL_ALL_FRAMES
    stored: dict[tuple[str, int], str] = {}
    day = timezone.now().strftime("%Y/%m/%d")
    for i, frame in enumerate(result.frames):
        if keep_all or frame.risk_level != "none" or len(result.frames) == 1:
            data = _evidence_bytes(frame.image)
            if data:
                name = f"frames/{day}/job{job.pk}-{i}-{int(frame.offset * 1000)}.jpg"
                stored[("frame", i)] = save_evidence(name, ContentFile(data))
    for i, part in enumerate(result.slices):
        if part.risk_level != "none":
            data = _evidence_bytes(part.audio)
            if data:
                suffix = _suffix(part.audio) if isinstance(part.audio, str) else ".wav"
                name = f"clips/{day}/job{job.pk}-{i}-{int(part.start * 1000)}{suffix}"
                stored[("slice", i)] = save_evidence(name, ContentFile(data))
    return stored


def _evidence_bytes(image_or_url) -> bytes | None:
    """Our own bytes, or a provider's (expiring) URL copied now."""
    if isinstance(image_or_url, bytes):
        return image_or_url
    if isinstance(image_or_url, str) and image_or_url.startswith(("http://", "https://")):
        return download(image_or_url)
    return None


def _suffix(url: str) -> str:
    suffix = PurePosixPath(url.split("?", 1)[0]).suffix.lower()
    return suffix if suffix in (".wav", ".mp3", ".m4a", ".aac", ".ogg") else ".audio"


def _write_frames(job: Job, result: Result, evidence) -> None:
    frames = Frame.objects.bulk_create([
        Frame(job=job, offset=f.offset, risk_level=f.risk_level,
              thumbnail=evidence.get(("frame", i), ""), pdq=f.pdq, pdq_quality=f.pdq_quality,
              text_boxes=f.text_boxes)
        for i, f in enumerate(result.frames)
    ])
    FrameLabel.objects.bulk_create([
        FrameLabel(frame=row, label=lbl.label, confidence=lbl.confidence,
                   risk_level=lbl.risk_level, service=lbl.service, scene=lbl.scene,
                   description=lbl.description[:500])
        for row, frame in zip(frames, result.frames, strict=True)
        for lbl in frame.labels
    ])


def _write_slices(job: Job, result: Result, evidence) -> None:
    AudioSlice.objects.bulk_create([
        AudioSlice(job=job, start=s.start, end=s.end, text=s.text,
                   labels=[{"label": lbl.label, "confidence": lbl.confidence,
                            "risk_level": lbl.risk_level, "service": lbl.service,
                            "description": lbl.description} for lbl in s.labels],
                   risk_words=s.risk_words,
                   risk_level=s.risk_level, clip=evidence.get(("slice", i), ""),
                   language=(s.language or "")[:16],
                   language_confidence=probability(s.language_confidence))
        for i, s in enumerate(result.slices)
    ])


__all__ = ["ingest", "result_version"]
