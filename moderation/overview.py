"""The moderators' overview: per-day figures over a period, in a fixed number of queries.

Plain functions over the ORM (the admin page ``admin/overview.py`` draws them; tests and a
site's own dashboards call them). Every figure is one grouped query whose rows are days,
verdicts, labels, moderators or providers, never jobs, except two that stream small tuples
(:func:`label_trends`: a job's ``labels`` list, counted in Python as ``operations.stats``
does so that SQLite and PostgreSQL agree; :func:`queue_history`: one row per job that was
in the review queue during the period). The number of queries does not grow with the data.

Days are calendar days in the current time zone (``TIME_ZONE``, or the one activated).
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Min, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from . import review
from .models import Job, ReviewEvent, ReviewState, Status
from .operations.stats import label_counts, provider_figures

#: the periods the page offers, in days
PERIODS = (7, 30, 90)
DEFAULT_DAYS = 30
#: the longest period a from/to pair may span (the charts have a bar per day)
MAX_DAYS = 366
#: the earliest day a period may start or end on: a from/to near ``date.min`` (0001-01-01)
#: would overflow the date arithmetic below and the time-zone conversion of the queries
EARLIEST = date(1970, 1, 1)

#: verdict buckets of the volume chart, in drawing order (bottom to top)
VERDICTS = ("auto_pass", "approved", "review_pending", "rejected", "auto_block",
            "unfinished", "failed")


@dataclass(frozen=True)
class Period:
    """Calendar days ``first`` .. ``last`` (inclusive) in the current time zone;
    ``start`` / ``end`` the half-open instants they span (``end`` never after ``now``)."""

    first: date
    last: date
    now: datetime

    @property
    def start(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.first, time.min))

    @property
    def end(self) -> datetime:
        return min(timezone.make_aware(datetime.combine(self.last + timedelta(days=1),
                                                        time.min)), self.now)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def day_end(self, day: date) -> datetime:
        """The instant a day's figures are read at: its midnight, or now for today."""
        return min(timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min)),
                   self.now)


def period(days: int | None = None, first: date | None = None, last: date | None = None,
           now: datetime | None = None) -> Period:
    """The last ``days`` days up to today, or ``first`` .. ``last`` (either may be missing:
    ``last`` defaults to today, ``first`` to ``DEFAULT_DAYS`` before ``last``). Days after
    today are cut off, days before :data:`EARLIEST` too; a span over :data:`MAX_DAYS` keeps its
    last ``MAX_DAYS`` days."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    if first is None and last is None:
        days = days if days and days > 0 else DEFAULT_DAYS
        return Period(today - timedelta(days=min(days, MAX_DAYS) - 1), today, now)
    last = max(min(last or today, today), EARLIEST)
    first = max(first or last - timedelta(days=DEFAULT_DAYS - 1), EARLIEST)
    if first > last:
        first, last = last, first
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    return Period(first, last, now)


def _jobs_in(p: Period):
    return Job.objects.filter(created_at__gte=p.start, created_at__lt=p.end).order_by()


def _verdict(status: str, decision: str, review_state: str) -> str:
    if status in (Status.FAILED, Status.EXPIRED):
        return "failed"
    if status != Status.DONE:
        return "unfinished"
    if review_state == ReviewState.PENDING:
        return "review_pending"
    return decision if decision in VERDICTS else "unfinished"


def volume_by_day(p: Period) -> list[tuple[date, dict[str, int]]]:
    """Jobs created per day by verdict (:data:`VERDICTS`): what the policy or a moderator
    decided, still waiting for review, unfinished, or failed/expired. Cancelled jobs are
    left out. One query."""
    rows = (_jobs_in(p).exclude(status=Status.CANCELLED)
            .annotate(day=TruncDate("created_at"))
            .values_list("day", "status", "decision", "review_state").annotate(n=Count("pk")))
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    for day, status, decision, state, n in rows:
        per_day[day][_verdict(status, decision, state)] += n
    return [(day, {v: per_day[day][v] for v in VERDICTS}) for day in p.days]


@dataclass
class QueueNow:
    size: int
    oldest_seconds: float | None


def queue_now(now: datetime | None = None) -> QueueNow:
    """The review queue as the console shows it (``review.queue()``: pending, finished
    jobs) and the age of its oldest item from the job's creation, as the queue's age
    filter counts. Two queries; what the alerts watch."""
    now = now or timezone.now()
    pending = review.queue().order_by()
    oldest = pending.aggregate(oldest=Min("created_at"))["oldest"]
    return QueueNow(size=pending.count(),
                    oldest_seconds=round((now - oldest).total_seconds(), 1) if oldest else None)


def queue_history(p: Period) -> list[tuple[date, int, float | None]]:
    """(day, items waiting, age in seconds of the oldest waiting item) at each day's end
    (now for today), rebuilt from the audit trail: an item enters the queue at its first
    ``review_required`` event and leaves at its first ``approved``/``rejected`` event.

    One query: a row per job in the queue at some time of the period (entered before its
    end, not left before its start). A sweep over the days keeps a heap of entries, so the
    work is O(rows log rows)."""
    decided = (ReviewEvent.Action.APPROVED, ReviewEvent.Action.REJECTED)
    rows = (ReviewEvent.objects.filter(action__in=(ReviewEvent.Action.REVIEW_REQUIRED,
                                                   *decided))
            .values("job_id").order_by()
            .annotate(entered=Min("created_at",
                                  filter=Q(action=ReviewEvent.Action.REVIEW_REQUIRED)),
                      left=Min("created_at", filter=Q(action__in=decided)),
                      born=Min("job__created_at"))
            .filter(entered__lt=p.end)
            .filter(Q(left__isnull=True) | Q(left__gte=p.start))
            .values_list("entered", "left", "born"))
    stints = sorted(((entered, left, born) for entered, left, born
                     in rows.iterator(chunk_size=5000) if left is None or left > entered),
                    key=lambda stint: stint[0])
    entries = [entered for entered, _left, _born in stints]
    exits = sorted(left for _entered, left, _born in stints if left is not None)
    waiting: list[tuple[datetime, datetime]] = []  # heap of (born, left), oldest first
    never = p.now + timedelta(days=1)
    history = []
    i = 0
    for day in p.days:
        at = p.day_end(day)
        while i < len(stints) and stints[i][0] <= at:
            _entered, left, born = stints[i]
            heapq.heappush(waiting, (born, left or never))
            i += 1
        while waiting and waiting[0][1] <= at:  # the oldest has left (days only go on)
            heapq.heappop(waiting)
        size = bisect_right(entries, at) - bisect_right(exits, at)
        oldest = round((at - waiting[0][0]).total_seconds(), 1) if waiting else None
        history.append((day, size, oldest))
    return history


@dataclass
class LabelTrends:
    labels: list[str]  # the ``top`` labels of the period, most frequent first
    totals: dict[str, int]
    by_day: list[tuple[date, dict[str, int]]] = field(default_factory=list)


def label_trends(p: Period, top: int = 6) -> LabelTrends:
    """Jobs carrying each risk label (``Job.labels``) per day, for the ``top`` labels of
    the period. Totals through ``operations.stats.label_counts`` (one query), the days
    through one stream of (day, labels) tuples of the jobs that carry any label."""
    jobs = _jobs_in(p)
    totals = dict(label_counts(jobs)[:top])
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    if totals:
        rows = (jobs.exclude(labels=[]).annotate(day=TruncDate("created_at"))
                .values_list("day", "labels").iterator(chunk_size=2000))
        for day, names in rows:
            per_day[day].update(name for name in set(names or []) if name in totals)
    return LabelTrends(labels=list(totals), totals=totals,
                       by_day=[(day, {name: per_day[day][name] for name in totals})
                               for day in p.days])


@dataclass
class ModeratorFigures:
    user_id: int | None
    name: str
    approved: int = 0
    rejected: int = 0

    @property
    def total(self) -> int:
        return self.approved + self.rejected


def decisions_by_moderator(p: Period) -> list[ModeratorFigures]:
    """Approvals and rejections per moderator in the period (the audit trail's
    ``approved``/``rejected`` events, reversals included), busiest first. One query."""
    rows = (ReviewEvent.objects.filter(created_at__gte=p.start, created_at__lt=p.end,
                                       action__in=(ReviewEvent.Action.APPROVED,
                                                   ReviewEvent.Action.REJECTED))
            .order_by().values_list("actor_id", "actor__username", "action")
            .annotate(n=Count("pk")))
    figures: dict[int | None, ModeratorFigures] = {}
    for user_id, name, action, n in rows:
        entry = figures.setdefault(user_id, ModeratorFigures(user_id, name or ""))
        setattr(entry, action, getattr(entry, action) + n)
    return sorted(figures.values(), key=lambda f: (-f.total, f.name))


#: the audit-trail actions counted as provider errors, per day
ERROR_ACTIONS = (ReviewEvent.Action.RETRY_SCHEDULED, ReviewEvent.Action.FAILED,
                 ReviewEvent.Action.EXPIRED)


@dataclass
class ProviderErrors:
    by_day: list[tuple[date, dict[str, int]]]  # day -> {"retry", "failed", "expired"}
    providers: dict[str, dict[str, Any]]  # operations.stats.provider_figures of the period


def provider_errors(p: Period, top: int = 3) -> ProviderErrors:
    """Per day, the retries scheduled after a transient provider error and the jobs that
    failed or expired (audit-trail events of the period, one query); per provider, the
    figures of ``operations.stats.provider_figures`` for the jobs created in the period
    (error rate, top error codes; three queries)."""
    rows = (ReviewEvent.objects.filter(created_at__gte=p.start, created_at__lt=p.end,
                                       action__in=ERROR_ACTIONS)
            .order_by().annotate(day=TruncDate("created_at"))
            .values_list("day", "action").annotate(n=Count("pk")))
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    for day, action, n in rows:
        per_day[day][action] += n
    keys = [str(a) for a in ERROR_ACTIONS]
    return ProviderErrors(by_day=[(day, {k: per_day[day][k] for k in keys}) for day in p.days],
                          providers=provider_figures(_jobs_in(p), top))


def overview(p: Period) -> dict[str, Any]:
    """Everything the overview page shows, for ``p``."""
    volume = volume_by_day(p)
    totals: Counter[str] = Counter()
    for _day, counts in volume:
        totals.update(counts)
    return {
        "period": p,
        "volume": volume,
        "volume_totals": {v: totals[v] for v in VERDICTS},
        "queue_now": queue_now(p.now),
        "queue_history": queue_history(p),
        "labels": label_trends(p),
        "moderators": decisions_by_moderator(p),
        "errors": provider_errors(p),
    }


__all__ = ["PERIODS", "VERDICTS", "Period", "decisions_by_moderator", "label_trends",
           "overview", "period", "provider_errors", "queue_history", "queue_now",
           "volume_by_day"]
