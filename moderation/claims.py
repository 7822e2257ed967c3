"""Claims: a moderator's hold on a pending review, so two moderators never decide one item.

A claim is ``Job.claimed_by`` / ``Job.claimed_until``, taken with one conditional UPDATE
(``leases``) like the worker's lease, so two moderators opening the same item at the same
moment cannot both win. A claim lasts ``REVIEW_CLAIM_SECONDS`` and expires by itself; a
decision releases it (``pipeline.verdict.resolve``). The review queue and the console
(``review``, ``admin``) and feedback ask here who holds an item.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from . import leases
from .conf import moderation_settings
from .models import Job, ReviewState, Status


class ClaimedByOther(Exception):
    """Somebody else holds a live claim on the item."""

    def __init__(self, job: Job):
        self.job = job
        super().__init__(f"job {job.pk} is claimed by another moderator")


def claim_seconds() -> int:
    return int(moderation_settings.REVIEW_CLAIM_SECONDS)


def free_for(user, now) -> Q:
    """Nobody holds the item, the claim has expired, or ``user`` holds it."""
    return Q(claimed_by__isnull=True) | leases.free("claimed_until", now) | Q(claimed_by=user)


def claim(job: Job | int, user, now=None) -> bool:
    """Take (or renew) ``user``'s claim on a pending review; False if someone else holds it
    or the item is no longer pending. One conditional UPDATE: safe against races."""
    now = now or timezone.now()
    pk = job.pk if isinstance(job, Job) else job
    until = leases.until(claim_seconds(), now)
    pending = (Job.objects.filter(pk=pk, review_state=ReviewState.PENDING, status=Status.DONE)
               .filter(free_for(user, now)))
    taken = leases.take(pending, "claimed_until", until, claimed_by=user)
    if taken and isinstance(job, Job):
        job.claimed_by, job.claimed_until = user, until
    return bool(taken)


def release(job: Job | int, user) -> bool:
    """Give up ``user``'s claim (another moderator's claim is left alone)."""
    pk = job.pk if isinstance(job, Job) else job
    return leases.release(Job.objects.filter(pk=pk, claimed_by=user), "claimed_until",
                          claimed_by=None)


def claim_holder_id(job: Job, now=None) -> int | None:
    """Who holds a live claim on ``job`` (a user id), or None."""
    now = now or timezone.now()
    if job.claimed_by_id and job.claimed_until and job.claimed_until > now:
        return job.claimed_by_id
    return None


def held_by_other(job: Job, user, now=None) -> bool:
    holder = claim_holder_id(job, now)
    return holder is not None and holder != user.pk


__all__ = ["ClaimedByOther", "claim", "claim_holder_id", "claim_seconds", "free_for",
           "held_by_other", "release"]
