"""Ingest and decide: store a finished result as rows, apply the policy, and resolve reviews.

Runs inside the ingest transaction (the evidence files are saved before it); never calls a
provider, so it does not import the worker.
"""

from __future__ import annotations

from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from .. import signals
from ..conf import moderation_settings
from ..models import (
    UNFINISHED,
    AudioSlice,
    Decision,
    Frame,
    FrameLabel,
    Job,
    ReviewEvent,
    ReviewState,
    Status,
)
from ..policy import apply_block, apply_unblock, suggestion_for
from ..providers import MediaError, Result, UnknownProvider, get_provider
from ..providers.result import probability
from ..registry import Registration, registry
from ..storage import discard, discards_evidence_on_failure, save_evidence
from .jobs import log

Action = ReviewEvent.Action


# --- ingest and decide --------------------------------------------------------------------


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
        decide(locked)
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
                suffix = ".wav" if isinstance(part.audio, bytes) else _suffix(part.audio)
                name = f"clips/{day}/job{job.pk}-{i}-{int(part.start * 1000)}{suffix}"
                stored[("slice", i)] = save_evidence(name, ContentFile(data))
    return stored


def _evidence_bytes(image_or_url) -> bytes | None:
    """Our own bytes, or a provider's (expiring) URL copied now."""
    if isinstance(image_or_url, bytes):
        return image_or_url
    if isinstance(image_or_url, str) and image_or_url.startswith(("http://", "https://")):
        from ..evidence import download

        return download(image_or_url)
    return None


def _suffix(url: str) -> str:
    from pathlib import PurePosixPath

    suffix = PurePosixPath(url.split("?", 1)[0]).suffix.lower()
    return suffix if suffix in (".wav", ".mp3", ".m4a", ".aac", ".ogg") else ".audio"


def _write_frames(job: Job, result: Result, evidence) -> None:
    frames = Frame.objects.bulk_create([
        Frame(job=job, offset=f.offset, risk_level=f.risk_level,
              thumbnail=evidence.get(("frame", i), ""), pdq=f.pdq, pdq_quality=f.pdq_quality)
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


def registration_for(job: Job) -> Registration | None:
    if job.content_type_id is None:  # ad-hoc: default policy, no block action
        return None
    model = job.content_type.model_class()
    return registry.get(model) if model else None


def decide(job: Job, already_blocked: bool = False) -> str:
    """Apply the policy to a finished job (inside the ingest transaction)."""
    registration = registration_for(job)
    suggestion = suggestion_for(job.risk_level, registration)
    job.suggestion = suggestion
    if isinstance(job.result, dict):
        # The policy is applied here only (providers return findings): the stored
        # normalized result says what the job says.
        job.result = {**job.result, "suggestion": suggestion}
    if suggestion == "pass":
        job.decision, job.review_state = Decision.AUTO_PASS, ReviewState.NONE
        log(job, Action.AUTO_PASS)
    elif suggestion == "review":
        job.decision, job.review_state = "", ReviewState.PENDING
        log(job, Action.REVIEW_REQUIRED)
        _after_commit(signals.review_required, job)
    else:
        job.decision, job.review_state = Decision.AUTO_BLOCK, ReviewState.NONE
        if not already_blocked and (job.options or {}).get("apply_block") is False:
            # Backfilled by moderation_scan without --apply: the verdict is kept, the block
            # action (and content_blocked, which promises it ran) is not.
            log(job, Action.AUTO_BLOCK, "block action not applied (backfill without --apply)",
                block_action="skipped")
        elif not already_blocked:  # a live stream may have blocked mid-way
            log(job, Action.AUTO_BLOCK)
            instance = job.content_object
            if instance is not None and registration is not None:
                apply_block(instance, registration, job)
            _after_commit(signals.content_blocked, job, instance=instance)
    job.save(update_fields=["suggestion", "decision", "review_state", "result", "updated_at"])
    _after_commit(signals.job_completed, job)
    return suggestion


def resolve(job: Job, decision: str, actor=None, reason: str = "") -> Job:
    """A moderator's decision: ``approved`` shows the content (undoing a hide),
    ``rejected`` blocks it (running the block action).

    A decision may reverse an earlier one (the event's data keeps ``previous_decision``).
    It releases any moderator's claim and sends ``review_resolved`` after commit."""
    if decision not in (Decision.APPROVED, Decision.REJECTED):
        raise ValueError(f"decision must be approved or rejected, not {decision!r}")
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status != Status.DONE:
            raise ValueError(f"job {job.pk} is {job.status}; only finished jobs are reviewed")
        previous = job.decision
        job.decision, job.review_state = decision, ReviewState.RESOLVED
        job.claimed_by, job.claimed_until = None, None
        job.save(update_fields=["decision", "review_state", "claimed_by", "claimed_until",
                                "updated_at"])
        log(job, Action.APPROVED if decision == Decision.APPROVED else Action.REJECTED,
            reason, actor=actor, **({"previous_decision": previous} if previous else {}))
        registration, instance = registration_for(job), job.content_object
        if instance is not None and registration is not None:
            if decision == Decision.APPROVED:
                apply_unblock(instance, registration, job)
            else:
                apply_block(instance, registration, job)
                _after_commit(signals.content_blocked, job, instance=instance)
        _after_commit(signals.review_resolved, job, decision=decision, actor=actor)
    return job


def _after_commit(signal, job: Job, **kwargs) -> None:
    transaction.on_commit(lambda: signal.send(sender=Job, job=job, **kwargs))


__all__ = ["decide", "ingest", "registration_for", "resolve"]
