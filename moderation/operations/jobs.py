"""Jobs by hand: one polling pass (sites on cron), retries and cancellations."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import feedback, pipeline
from ..models import UNFINISHED, FeedbackRequest, Job, Status
from ..pipeline.jobs import lost_before
from .common import BadInput, check_number, check_provider, chunks, selected_jobs

# --- one pass over due work ---------------------------------------------------------------


def poll_once(*, limit: int = 100, enqueue: bool = False, provider: str | None = None,
              feedback: bool = True, now: datetime | None = None,
              progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Advance due jobs once, for sites that run cron instead of the sweeper schedule.

    By default the jobs are processed here, one step each (submit, poll, or retry), oldest
    first, at most ``limit``; a job a worker holds is skipped by its lease. With ``enqueue``
    they are only put on the django-q2 queue, as the sweeper does. Pending feedback
    requests are handled the same way unless ``feedback`` is False.

    Returns ``{"mode", "due", "jobs": {outcome: count}, "feedback": {outcome: count}}``
    (with ``enqueue`` the outcome is ``enqueued``).
    """
    check_number(limit, "--limit")
    check_provider(provider)
    now = now or timezone.now()
    jobs = Job.objects.needing_enqueue(now, lost_before(now)) if enqueue else Job.objects.due(now)
    if provider:
        jobs = jobs.filter(provider=provider)
    due = jobs.count()
    ids = list(jobs.order_by("created_at", "pk").values_list("pk", flat=True)[:limit])
    outcomes: Counter[str] = Counter()
    for done, job_id in enumerate(ids, 1):
        if enqueue:
            pipeline.enqueue(job_id)
            outcomes["enqueued"] += 1
        else:
            outcomes[pipeline.process(job_id)] += 1
        if progress is not None:
            progress(done, len(ids))
    sent: Counter[str] = Counter()
    if feedback and not provider:
        sent = _feedback_pass(limit, enqueue, now)
    return {"mode": "enqueue" if enqueue else "process", "due": due,
            "jobs": dict(outcomes), "feedback": dict(sent)}


def _feedback_pass(limit: int, enqueue: bool, now: datetime) -> Counter[str]:
    if enqueue:
        return Counter({"enqueued": feedback.sweep(now)}) if limit else Counter()
    ids = list(FeedbackRequest.objects.filter(status=FeedbackRequest.State.PENDING)
               .order_by("created_at", "pk").values_list("pk", flat=True)[:limit])
    # send() takes only requests that are due (and not held by a worker): others "skipped"
    return Counter(feedback.send(pk) for pk in ids)


# --- retry --------------------------------------------------------------------------------


def retry_jobs(*, failed: bool = False, expired: bool = False, job_ids: list[int] | None = None,
               provider: str | None = None, dry_run: bool = False, actor=None,
               batch: int = 500) -> dict[str, Any]:
    """Put failed and/or expired jobs back in line with :func:`pipeline.retry`.

    ``job_ids`` names jobs (which must exist); without ``failed``/``expired`` both
    statuses are taken for them. A bulk retry (no ``job_ids``) leaves superseded jobs
    (``is_current`` False: the file was replaced or the object deleted) alone; named jobs
    are retried anyway. Returns counts: ``retried`` by former status, ``superseded``
    (skipped), ``not_retryable`` (named jobs in another status).
    """
    if not (failed or expired or job_ids):
        raise BadInput("say which jobs: --failed, --expired and/or --job ID")
    statuses = [s for s, wanted in ((Status.FAILED, failed), (Status.EXPIRED, expired))
                if wanted] or [Status.FAILED, Status.EXPIRED]
    jobs = selected_jobs(job_ids, provider)
    not_retryable = jobs.exclude(status__in=statuses).count() if job_ids else 0
    jobs = jobs.filter(status__in=statuses)
    superseded = 0
    if not job_ids:
        superseded = jobs.filter(is_current=False).count()
        jobs = jobs.filter(is_current=True)
    retried: Counter[str] = Counter()
    ids = list(jobs.order_by("pk").values_list("pk", "status"))
    for chunk in chunks(ids, batch):
        for job_id, status in chunk:
            if dry_run:
                retried[status] += 1
                continue
            job = pipeline.retry(Job(pk=job_id), actor=actor)
            if job.status == Status.PENDING:  # not changed meanwhile by someone else
                retried[status] += 1
    return {"dry_run": dry_run, "retried": sum(retried.values()), "by_status": dict(retried),
            "superseded": superseded, "not_retryable": not_retryable}


# --- cancel -------------------------------------------------------------------------------

CANCEL_REASON = "cancelled by an operator (moderation_cancel)"


def cancel_jobs(*, job_ids: list[int] | None = None, provider: str | None = None,
                pending: bool = False, all_unfinished: bool = False, dry_run: bool = False,
                reason: str = CANCEL_REASON, batch: int = 500) -> dict[str, Any]:
    """Cancel unfinished jobs (``pipeline._cancel``: logs a ``cancelled`` event, and a task
    already at the provider is cancelled there by a queued task once the batch commits).

    Which: ``job_ids`` (they must exist), ``pending`` (not yet submitted) or
    ``all_unfinished`` (pending, submitted, in progress), narrowed by ``provider``; the
    selectors combine as an intersection. Returns ``cancelled`` by former status, and
    ``finished`` (named jobs that were already finished).
    """
    if not (job_ids or pending or all_unfinished):
        raise BadInput("say which jobs: --job ID, --pending or --all-unfinished")
    jobs = selected_jobs(job_ids, provider)
    finished = jobs.exclude(status__in=UNFINISHED).count() if job_ids else 0
    jobs = jobs.filter(status__in=UNFINISHED)
    if pending and not all_unfinished:
        jobs = jobs.filter(status=Status.PENDING)
    by_status: Counter[str] = Counter()
    ids = list(jobs.order_by("pk").values_list("pk", "status"))
    for chunk in chunks(ids, batch):
        if dry_run:
            by_status.update(status for _, status in chunk)
            continue
        with transaction.atomic():
            for job_id, status in chunk:
                if pipeline._cancel(Job.objects.filter(pk=job_id), reason):
                    by_status[status] += 1
    return {"dry_run": dry_run, "cancelled": sum(by_status.values()),
            "by_status": dict(by_status), "finished": finished}


__all__ = ["CANCEL_REASON", "cancel_jobs", "poll_once", "retry_jobs"]
