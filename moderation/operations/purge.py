"""Retention: delete old finished jobs with their rows and evidence files.

What goes (all of these at once):

- the job is finished (done, failed, expired, cancelled) and finished before the cutoff
  (``completed_at``, or ``created_at`` when it never completed);
- it is not current: a newer job replaced it, or its object was deleted. Ad-hoc jobs
  (``moderate`` API calls, no object) count as not current. A current job is the decision
  the site shows or hides the object by (``visible()``), so it stays unless
  ``include_current`` is given;
- it has no ``legal_hold``, no review waiting for a moderator, no feedback request still
  to be sent, and it is not the source of a hash library entry (the entry's picture);
- with ``keep_blocked``: its decision is not ``auto_block`` or ``rejected``.

Rows go in batches, one transaction each; the evidence files (thumbnails, clips) are
deleted by ``moderation.models.delete_evidence_file`` when the batch commits, and the inputs
of ad-hoc jobs (``inputs/...`` in evidence storage) likewise. Sizes are read from the
evidence storage before deletion, so the report says what was freed.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..media import is_url
from ..models import (
    UNFINISHED,
    AudioSlice,
    Decision,
    FeedbackRequest,
    Frame,
    FrameLabel,
    HashEntry,
    Job,
    ReviewEvent,
    ReviewState,
)
from ..storage import evidence_storage
from .common import check_number


@dataclass
class PurgeReport:
    dry_run: bool
    cutoff: datetime
    jobs: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # model label -> rows deleted
    files: int = 0
    bytes: int = 0
    missing_files: int = 0  # named by a row but already gone from storage

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cutoff"] = self.cutoff.isoformat()
        return data


def purgeable(cutoff: datetime, *, include_current: bool = False, keep_blocked: bool = False):
    """The jobs :func:`purge` deletes (see the module's docstring)."""
    jobs = (Job.objects.exclude(status__in=UNFINISHED)
            .filter(Q(completed_at__lt=cutoff)
                    | Q(completed_at__isnull=True, created_at__lt=cutoff))
            .filter(legal_hold=False)
            .exclude(review_state=ReviewState.PENDING)
            .exclude(pk__in=FeedbackRequest.objects.filter(status=FeedbackRequest.State.PENDING)
                     .values("job_id"))
            # NOT IN over a column with NULLs matches nothing: keep the NULLs out
            .exclude(pk__in=HashEntry.objects.filter(source_job__isnull=False)
                     .values("source_job_id"))
            .exclude(pk__in=Frame.objects.filter(
                pk__in=HashEntry.objects.filter(source_frame__isnull=False)
                .values("source_frame_id")).values("job_id")))
    if not include_current:
        jobs = jobs.filter(Q(is_current=False) | Q(content_type__isnull=True))
    if keep_blocked:
        jobs = jobs.exclude(decision__in=(Decision.AUTO_BLOCK, Decision.REJECTED))
    return jobs


def purge(*, older_than_days: float, dry_run: bool = False, include_current: bool = False,
          keep_blocked: bool = False, batch: int = 500, now: datetime | None = None,
          progress: Callable[[PurgeReport, int], None] | None = None) -> PurgeReport:
    check_number(older_than_days, "--older-than", allow_minimum=True)
    check_number(batch, "--batch")
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    report = PurgeReport(dry_run=dry_run, cutoff=cutoff)
    jobs = purgeable(cutoff, include_current=include_current, keep_blocked=keep_blocked)
    total = jobs.count()
    storage = evidence_storage()
    rows: Counter[str] = Counter()
    last = 0
    while True:
        ids = list(jobs.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            break
        last = ids[-1]
        names = evidence_names(ids)
        inputs = input_names(ids)
        sizes = [_size(storage, name) for name in names + inputs]
        if dry_run:
            report.jobs += len(ids)
            rows.update(_would_delete(ids))
        else:
            with transaction.atomic():
                # The same conditions again: a job put on hold meanwhile stays.
                _, per_model = jobs.filter(pk__in=ids).delete()
                for name in inputs:
                    transaction.on_commit(partial(_delete, storage, name))
            report.jobs += per_model.get(Job._meta.label, 0)
            rows.update({label: n for label, n in per_model.items() if n})
        report.files += sum(1 for size in sizes if size is not None)
        report.missing_files += sum(1 for size in sizes if size is None)
        report.bytes += sum(size or 0 for size in sizes)
        if progress is not None:
            progress(report, total)
    report.rows = dict(sorted(rows.items()))
    return report


def evidence_names(job_ids: list[int]) -> list[str]:
    names = list(Frame.objects.filter(job_id__in=job_ids).exclude(thumbnail="")
                 .values_list("thumbnail", flat=True))
    names += AudioSlice.objects.filter(job_id__in=job_ids).exclude(clip="").values_list(
        "clip", flat=True)
    return [name for name in names if name]


def input_names(job_ids: list[int]) -> list[str]:
    """The stored inputs of ad-hoc jobs: a file, or the images of a frame sequence."""
    names = []
    rows = Job.objects.filter(pk__in=job_ids, content_type__isnull=True).values_list(
        "file_name", "media_kind", "options")
    for file_name, kind, options in rows:
        if kind == "frames":
            names += [name for _, name in (options or {}).get("frames", [])]
        elif file_name and not is_url(file_name):
            names.append(file_name)
    return names


def _would_delete(job_ids: list[int]) -> dict[str, int]:
    """Row counts a deletion would report (the main tables), for a dry run."""
    counts = {
        Job._meta.label: len(job_ids),
        Frame._meta.label: Frame.objects.filter(job_id__in=job_ids).count(),
        FrameLabel._meta.label: FrameLabel.objects.filter(frame__job_id__in=job_ids).count(),
        AudioSlice._meta.label: AudioSlice.objects.filter(job_id__in=job_ids).count(),
        ReviewEvent._meta.label: ReviewEvent.objects.filter(job_id__in=job_ids).count(),
        FeedbackRequest._meta.label: FeedbackRequest.objects.filter(job_id__in=job_ids).count(),
    }
    return {label: n for label, n in counts.items() if n}


def _size(storage, name: str) -> int | None:
    try:
        return storage.size(name)
    except (OSError, NotImplementedError):
        return None


def _delete(storage, name: str) -> None:
    with contextlib.suppress(OSError):  # gone already; nothing else to free
        storage.delete(name)


__all__ = ["PurgeReport", "purge", "purgeable"]
