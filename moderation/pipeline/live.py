"""Live streams: ingest a stream's partial results as they come, then finish the job.

Called by the worker's ``submit`` for ``live`` jobs; builds on ``ingest.py`` and ``verdict.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from .. import signals
from ..models import UNFINISHED, Job, ReviewEvent, Status
from ..policy import apply_block, suggestion_for
from ..providers import Result
from ..providers.result import worst_risk
from ..storage import discard, discards_evidence_on_failure
from .ingest import _store_evidence, _summary, _write_frames, _write_slices
from .jobs import log
from .verdict import apply_policy, registration_for, send_on_commit

if TYPE_CHECKING:  # the worker imports this module; only the annotation needs Lease
    from .worker import Lease

Action = ReviewEvent.Action


def follow_stream(job: Job, partials, lease: Lease | None) -> str:
    """Ingest a live stream's partial results as they come.

    Rows appear while the job is ``in_progress``; a block fires at once (block action and
    ``content_blocked``); the job ends when the stream does, at the provider's maximum
    duration, or when it is cancelled (checked between chunks).
    """
    send_on_commit(signals.job_submitted, job)
    log(job, Action.SUBMITTED)
    Job.objects.filter(pk=job.pk).update(status=Status.IN_PROGRESS)
    progress = Result(status="in_progress")
    blocked = False
    try:
        for partial in partials:
            if Job.objects.filter(pk=job.pk, status=Status.CANCELLED).exists():
                return "cancelled"
            blocked = ingest_partial(job, partial, progress, already_blocked=blocked)
            if lease is not None and not lease.renew():  # cancelled, or taken over
                cancelled = Job.objects.filter(pk=job.pk, status=Status.CANCELLED).exists()
                return "cancelled" if cancelled else "lost"
            if partial.status == "done":
                break
    finally:
        if hasattr(partials, "close"):
            partials.close()  # stops the provider's reader (closes the stream)
    finish_stream(job, progress, already_blocked=blocked)
    return "done"


@discards_evidence_on_failure  # a failed transaction leaves no orphaned evidence files
def ingest_partial(job: Job, partial: Result, progress: Result, already_blocked: bool) -> bool:
    """Append one chunk's rows; returns whether the content is blocked by now."""
    evidence = _store_evidence(job, partial)
    progress.frames += partial.frames
    progress.slices += partial.slices
    progress.risk_level = worst_risk([progress.risk_level, partial.risk_level])
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.status not in UNFINISHED:
            discard(evidence.values())  # nothing will refer to them
            return already_blocked
        _write_frames(locked, partial, evidence)
        _write_slices(locked, partial, evidence)
        locked.risk_level = progress.risk_level
        locked.labels = sorted({lbl.label for lbl in progress.all_labels()
                                if lbl.risk_level != "none"})
        locked.frame_summary = _summary(progress.frames)
        locked.audio_summary = _summary(progress.slices)
        locked.status = Status.IN_PROGRESS
        locked.save(update_fields=["risk_level", "labels", "frame_summary", "audio_summary",
                                   "status", "updated_at"])
        send_on_commit(signals.job_progress, locked, result=partial)
        registration = registration_for(locked)
        if already_blocked or suggestion_for(partial.risk_level, registration) != "block":
            return already_blocked
        log(locked, Action.AUTO_BLOCK, "blocked mid-stream", offset=_first_offset(partial))
        instance = locked.content_object
        if instance is not None and registration is not None:
            apply_block(instance, registration, locked)
        send_on_commit(signals.content_blocked, locked, instance=instance)
    return True


def _first_offset(result: Result) -> float:
    offsets = [f.offset for f in result.frames if f.risk_level != "none"]
    offsets += [s.start for s in result.slices if s.risk_level != "none"]
    return min(offsets, default=0.0)


def finish_stream(job: Job, progress: Result, already_blocked: bool) -> None:
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.status not in UNFINISHED:
            return
        progress.status = "done"
        progress.frame_summary = locked.frame_summary
        progress.audio_summary = locked.audio_summary
        locked.status = Status.DONE
        locked.result = progress.to_dict()
        locked.completed_at = timezone.now()
        locked.next_attempt_at = None
        locked.save()
        log(locked, Action.COMPLETED, risk_level=locked.risk_level)
        apply_policy(locked, already_blocked=already_blocked)


__all__ = ["finish_stream", "follow_stream", "ingest_partial"]
