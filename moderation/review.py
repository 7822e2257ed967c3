"""The review console's domain: the queue, the next item, decisions, preferences.

Plain functions that views, admin actions and tests call; no HTTP here. Claims (who holds
an item while deciding it) are ``claims.py``'s; a decision takes one and
``pipeline.verdict.resolve`` releases it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from .claims import ClaimedByOther, claim, free_for
from .models import Decision, Job, ModeratorPreference, ReviewState, Status
from .pipeline.verdict import resolve
from .providers.result import RISK_LEVELS

#: risk level -> rank (higher is worse), as in the queue's order: the providers' one scale
RISK_RANKS = {level: rank for rank, level in enumerate(RISK_LEVELS)}

#: what a moderator may say, and the job decision it becomes
DECISIONS = {
    "approve": Decision.APPROVED, "approved": Decision.APPROVED, "pass": Decision.APPROVED,
    "reject": Decision.REJECTED, "rejected": Decision.REJECTED, "block": Decision.REJECTED,
}


def risk_rank(field: str = "risk_level") -> Case:
    return Case(*(When(**{field: level}, then=Value(rank)) for level, rank in RISK_RANKS.items()),
                default=Value(0), output_field=IntegerField())


def queue() -> QuerySet[Job]:
    """Finished jobs waiting for a moderator: worst risk first, then oldest first."""
    return (
        Job.objects.review_pending().filter(status=Status.DONE)
        .annotate(risk_rank=risk_rank())
        .order_by("-risk_rank", "created_at", "id")
    )


def next_item(user, after: Job | None = None, now=None, queryset=None) -> Job | None:
    """Claim and return the next pending item ``user`` may review: the first in queue
    order after ``after`` (wrapping around, ``after`` itself excluded), skipping items
    other moderators hold. None when nothing is left."""
    now = now or timezone.now()
    candidates = (queryset if queryset is not None else queue()).filter(free_for(user, now))
    batches = [candidates]
    if after is not None:
        rank = RISK_RANKS.get(after.risk_level, 0)
        later = (Q(risk_rank__lt=rank)
                 | Q(risk_rank=rank, created_at__gt=after.created_at)
                 | Q(risk_rank=rank, created_at=after.created_at, pk__gt=after.pk))
        batches = [candidates.filter(later), candidates.exclude(pk=after.pk)]
    for batch in batches:
        for _ in range(5):  # lost races: look again
            ids = list(batch.values_list("pk", flat=True)[:10])
            if not ids:
                break
            for pk in ids:
                if claim(pk, user, now):
                    return Job.objects.get(pk=pk)
    return None


def normalize_decision(decision: str) -> str:
    try:
        return DECISIONS[str(decision).lower()]
    except KeyError:
        raise ValueError(f"decision must be approve or reject, not {decision!r}") from None


def decide(job: Job, decision: str, user, reason: str = "") -> Job:
    """Approve or reject ``job`` as ``user`` (who needs ``moderation.review_job``).

    A pending item must be free or claimed by ``user`` (else :class:`ClaimedByOther`);
    a finished review may be reversed by any moderator. Goes through
    ``pipeline.verdict.resolve``: the ReviewEvent, hide/unhide, the claim released, and
    the ``review_resolved`` signal after commit."""
    if user is not None and not user.has_perm("moderation.review_job"):
        raise PermissionDenied("moderation.review_job is required to decide")
    decision = normalize_decision(decision)
    job.refresh_from_db(fields=["review_state", "status", "claimed_by", "claimed_until"])
    if job.review_state == ReviewState.PENDING and not claim(job, user):
        raise ClaimedByOther(job)
    return resolve(job, decision, actor=user, reason=reason)


@dataclass
class BulkOutcome:
    decided: int = 0
    busy: int = 0  # held by another moderator
    failed: int = 0  # not decidable (ValueError)


def decide_many(jobs, decision: str, user, reason: str = "") -> BulkOutcome:
    """:func:`decide` for each finished job of ``jobs`` (bulk actions), counting what was
    decided, what another moderator holds and what could not be decided."""
    outcome = BulkOutcome()
    for job in jobs.filter(status=Status.DONE):
        try:
            decide(job, decision, user, reason)
            outcome.decided += 1
        except ClaimedByOther:
            outcome.busy += 1
        except ValueError:
            outcome.failed += 1
    return outcome


def reveals_flagged(user) -> bool:
    """The user's preference: show flagged imagery unblurred."""
    return ModeratorPreference.objects.filter(user=user, reveal_flagged=True).exists()


def set_reveal_flagged(user, reveal: bool) -> None:
    ModeratorPreference.objects.update_or_create(user=user,
                                                 defaults={"reveal_flagged": bool(reveal)})


__all__ = [
    "DECISIONS",
    "RISK_RANKS",
    "BulkOutcome",
    "ClaimedByOther",  # raised by decide(); defined in claims.py
    "decide",
    "decide_many",
    "next_item",
    "normalize_decision",
    "queue",
    "reveals_flagged",
    "risk_rank",
    "set_reveal_flagged",
]
