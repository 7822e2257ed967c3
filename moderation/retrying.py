"""Retries with backoff and the sweeper's re-send, shared by jobs and feedback requests.

Both retry a failed step the same way: exponential backoff with jitter, a provider's
``Throttled`` waited out without spending an attempt, and ``MAX_ATTEMPTS`` then give up;
and both are swept the same way: rows the sweeper finds due are enqueued again.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from django.db.models import QuerySet

from .conf import moderation_settings
from .providers import ModerationError, Throttled

#: how many rows one sweep enqueues at most (the rest wait for the next sweep)
SWEEP_BATCH = 1000


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter, capped."""
    base = moderation_settings.RETRY_BACKOFF * (2 ** max(attempt - 1, 0))
    cap = min(base, moderation_settings.RETRY_BACKOFF_MAX)
    return cap / 2 + random.uniform(0, cap / 2)


def next_try(attempts: int, error: ModerationError) -> tuple[float | None, int]:
    """When to try a retryable error's step again: ``(delay in seconds, attempts to
    record)``, the delay None when the attempts are spent (give up: failed).

    ``Throttled`` is the provider's limit, not our failure: its ``retry_after`` (spread so
    that the throttled workers do not come back as a herd) or the backoff, and the attempt
    is given back.
    """
    delay = backoff_seconds(max(attempts, 1))
    if isinstance(error, Throttled):
        if error.retry_after:
            delay = error.retry_after * random.uniform(1.0, 1.5)
        return delay, max(attempts - 1, 0)
    if max(attempts, 1) >= moderation_settings.MAX_ATTEMPTS:
        return None, attempts
    return delay, attempts


def resend(due: QuerySet, enqueue: Callable[[int], None]) -> int:
    """Enqueue again (at most ``SWEEP_BATCH`` of) the rows ``due`` selects; how many."""
    ids = list(due.values_list("pk", flat=True)[:SWEEP_BATCH])
    for pk in ids:
        enqueue(pk)
    return len(ids)


__all__ = ["SWEEP_BATCH", "backoff_seconds", "next_try", "resend"]
