"""The review console's domain: the queue, the next item, decisions, preferences.

Plain functions that views, admin actions and tests call; no HTTP here. Claims (who holds
an item while deciding it) are ``claims.py``'s; a decision takes one and
``pipeline.verdict.resolve`` releases it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from . import reasons
from .claims import ClaimedByOther, claim, free_for
from .conf import moderation_settings
from .models import Decision, Job, ModeratorPreference, ReviewEvent, ReviewState, Status
from .pipeline.verdict import reopen, resolve
from .providers.result import RISK_LEVELS
from .reasons import ReasonError, ReasonRequired, UnknownReason

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


def decide(job: Job, decision: str, user, reason: str = "", reason_code: str = "") -> Job:
    """Approve or reject ``job`` as ``user`` (who needs ``moderation.review_job``).

    ``reason_code`` is a policy category of ``MODERATION["REASONS"]`` (stored on the
    event; ``reason`` is a free-text note): an unknown code, or none on a rejection when
    ``REQUIRE_REJECT_REASON`` is on, raises :class:`ReasonError` (a ValueError) before
    anything changes. A pending item must be free or claimed by ``user`` (else
    :class:`ClaimedByOther`); a finished review may be reversed by any moderator. Goes
    through ``pipeline.verdict.resolve``: the ReviewEvent, hide/unhide, the claim
    released, and the ``review_resolved`` signal after commit."""
    if user is not None and not user.has_perm("moderation.review_job"):
        raise PermissionDenied("moderation.review_job is required to decide")
    decision = normalize_decision(decision)
    reason_code = reasons.validate(decision, reason_code)
    job.refresh_from_db(fields=["review_state", "status", "claimed_by", "claimed_until"])
    if job.review_state == ReviewState.PENDING and not claim(job, user):
        raise ClaimedByOther(job)
    return resolve(job, decision, actor=user, reason=reason, reason_code=reason_code)


@dataclass
class BulkOutcome:
    decided: int = 0
    busy: int = 0  # held by another moderator
    failed: int = 0  # not decidable (ValueError)


def decide_many(jobs, decision: str, user, reason: str = "",
                reason_code: str = "") -> BulkOutcome:
    """:func:`decide` for each finished job of ``jobs`` (bulk actions), counting what was
    decided, what another moderator holds and what could not be decided. A bad or missing
    ``reason_code`` raises :class:`ReasonError` before any job is decided."""
    reasons.validate(normalize_decision(decision), reason_code)
    outcome = BulkOutcome()
    for job in jobs.filter(status=Status.DONE):
        try:
            decide(job, decision, user, reason, reason_code)
            outcome.decided += 1
        except ClaimedByOther:
            outcome.busy += 1
        except ValueError:
            outcome.failed += 1
    return outcome


class CannotUndo(ValueError):
    """The job has no decision left to undo, it changed since, or the window has passed."""


def undo_seconds() -> int:
    """How long a moderator may undo a decision (``UNDO_SECONDS``; 0: never)."""
    return int(moderation_settings.UNDO_SECONDS)


def last_decision(job: Job | int) -> ReviewEvent | None:
    """The job's last moderator decision (``approved`` / ``rejected`` event), unless an
    undo followed it: what :func:`undo_decision` would undo."""
    pk = job.pk if isinstance(job, Job) else job
    last = (ReviewEvent.objects.filter(job_id=pk, action__in=(
        ReviewEvent.Action.APPROVED, ReviewEvent.Action.REJECTED, ReviewEvent.Action.UNDONE))
        .order_by("-created_at", "-id").first())
    return last if last is not None and last.action != ReviewEvent.Action.UNDONE else None


def undo_decision(job: Job, user, now=None) -> Job:
    """Undo the last decision on ``job``: by the moderator who took it (or a superuser),
    within ``UNDO_SECONDS`` of it. The job returns to review and its content's visibility
    is restored (``pipeline.verdict.reopen``); an ``undone`` event is written. Feedback
    already sent to a provider is not unsent. Raises PermissionDenied (no
    ``moderation.review_job``, or another moderator's decision) or :class:`CannotUndo`."""
    if user is None or not user.has_perm("moderation.review_job"):
        raise PermissionDenied("moderation.review_job is required to undo a decision")
    now = now or timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)  # one undo at a time
        event = last_decision(job)
        if event is None:
            raise CannotUndo(f"job {job.pk} has no decision to undo")
        if event.actor_id != user.pk and not user.is_superuser:
            raise PermissionDenied("only the moderator who decided (or a superuser) may undo "
                                   "the decision")
        if job.decision != event.action or job.review_state != ReviewState.RESOLVED:
            raise CannotUndo(f"job {job.pk} changed since the decision")
        if now - event.created_at > timedelta(seconds=undo_seconds()):
            raise CannotUndo(f"the decision on job {job.pk} is older than "
                             f"{undo_seconds()} s (UNDO_SECONDS): decide again instead")
        return reopen(job, event, actor=user)


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
    "CannotUndo",
    "ClaimedByOther",  # raised by decide(); defined in claims.py
    "ReasonError",  # raised by decide(); defined in reasons.py, like the two below
    "ReasonRequired",
    "UnknownReason",
    "decide",
    "decide_many",
    "last_decision",
    "next_item",
    "normalize_decision",
    "queue",
    "reveals_flagged",
    "risk_rank",
    "set_reveal_flagged",
    "undo_decision",
    "undo_seconds",
]
