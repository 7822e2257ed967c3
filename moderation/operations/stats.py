"""Figures for operators: counts, queue age, provider error rates.

Portable on purpose: plain aggregates, and the JSON ``labels`` lists counted in Python over
``values_list`` (a stream of small lists), so SQLite and PostgreSQL give the same answer
without database-specific JSON functions.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime
from typing import Any

from django.db.models import Count
from django.utils import timezone

from ..models import Decision, Job, ReviewState, Status

FINISHED_BY_PROVIDER = (Status.DONE, Status.FAILED, Status.EXPIRED)
PROVIDER_ERRORS = (Status.FAILED, Status.EXPIRED)


def label_counts(jobs) -> list[tuple[str, int]]:
    """(label, jobs carrying it), most frequent first, then by name. ``labels`` is a JSON
    list, counted here rather than in SQL so that SQLite and PostgreSQL agree."""
    counts: Counter[str] = Counter()
    for names in jobs.exclude(labels=[]).values_list("labels", flat=True).iterator(
            chunk_size=2000):
        counts.update(set(names or []))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def stats(*, since: datetime | None = None, now: datetime | None = None,
          top: int = 5) -> dict[str, Any]:
    """Counts of the jobs created since ``since`` (all jobs without it), and the queue now.

    - ``jobs``, ``by_status``, ``by_suggestion``, ``by_decision``, ``by_kind``,
      ``by_label`` (jobs carrying each risk label), ``review_pending``,
      ``blocks_not_applied`` (block verdicts of backfilled jobs whose block action was held
      back: ``moderation_scan`` without ``--apply``);
    - ``queue``: unfinished and due jobs now, the age in seconds of the oldest due and of the
      oldest pending job, and medians (seconds) of the wait from creation to submission and
      from creation to completion of the jobs in the window;
    - ``providers``: per provider, jobs, finished (done, failed, expired), failed, expired,
      error rate (failed + expired over finished), retrying (unfinished with an error),
      and the ``top`` error codes.
    """
    now = now or timezone.now()
    jobs = Job.objects.all()
    if since is not None:
        jobs = jobs.filter(created_at__gte=since)
    jobs = jobs.order_by()

    def counts(name: str) -> dict[str, int]:
        rows = jobs.values_list(name).annotate(n=Count("pk")).order_by("-n", name)
        return {key or "": n for key, n in rows}

    return {
        "since": since.isoformat() if since else None,
        "now": now.isoformat(),
        "jobs": jobs.count(),
        "by_status": counts("status"),
        "by_suggestion": {k: v for k, v in counts("suggestion").items() if k},
        "by_decision": {k: v for k, v in counts("decision").items() if k},
        "by_kind": counts("media_kind"),
        "by_label": dict(label_counts(jobs)),
        "review_pending": jobs.filter(review_state=ReviewState.PENDING).count(),
        "blocks_not_applied": jobs.filter(decision=Decision.AUTO_BLOCK,
                                          options__apply_block=False).count(),
        "queue": queue_figures(jobs, now),
        "providers": provider_figures(jobs, top),
    }


def queue_figures(jobs, now: datetime) -> dict[str, Any]:
    def age(queryset) -> float | None:
        oldest = queryset.order_by("created_at").values_list("created_at", flat=True).first()
        return round((now - oldest).total_seconds(), 1) if oldest else None

    due = Job.objects.due(now)
    waits = [(submitted - created).total_seconds() for created, submitted in
             jobs.filter(submitted_at__isnull=False).values_list("created_at", "submitted_at")
             .iterator(chunk_size=5000)]
    turnaround = [(completed - created).total_seconds() for created, completed in
                  jobs.filter(status=Status.DONE, completed_at__isnull=False)
                  .values_list("created_at", "completed_at").iterator(chunk_size=5000)]
    return {
        "unfinished": Job.objects.unfinished().count(),
        "due": due.count(),
        "oldest_due_seconds": age(due),
        "oldest_pending_seconds": age(Job.objects.filter(status=Status.PENDING)),
        "median_wait_seconds": _median(waits),
        "median_completion_seconds": _median(turnaround),
    }


def provider_figures(jobs, top: int) -> dict[str, dict[str, Any]]:
    figures: dict[str, dict[str, Any]] = {}
    for provider, status, n in jobs.values_list("provider", "status").annotate(n=Count("pk")):
        entry = figures.setdefault(provider, {"jobs": 0, "finished": 0, "failed": 0,
                                              "expired": 0, "retrying": 0})
        entry["jobs"] += n
        if status in FINISHED_BY_PROVIDER:
            entry["finished"] += n
        if status == Status.FAILED:
            entry["failed"] += n
        elif status == Status.EXPIRED:
            entry["expired"] += n
    retrying = (jobs.filter(status__in=(Status.PENDING, Status.SUBMITTED, Status.IN_PROGRESS))
                .exclude(error_code="").values_list("provider").annotate(n=Count("pk")))
    for provider, n in retrying:
        figures[provider]["retrying"] = n
    codes: dict[str, Counter[str]] = {}
    for provider, code, n in (jobs.filter(status__in=PROVIDER_ERRORS).exclude(error_code="")
                              .values_list("provider", "error_code").annotate(n=Count("pk"))):
        codes.setdefault(provider, Counter())[code] = n
    for provider, entry in figures.items():
        errors = entry["failed"] + entry["expired"]
        entry["error_rate"] = round(errors / entry["finished"], 4) if entry["finished"] else None
        ranked = sorted(codes.get(provider, Counter()).items(), key=lambda i: (-i[1], i[0]))
        entry["top_errors"] = dict(ranked[:top])
    return dict(sorted(figures.items()))


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


__all__ = ["stats"]
