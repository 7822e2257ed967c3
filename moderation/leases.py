"""Holds on one row, taken with one conditional UPDATE: the one lease mechanism of the app.

A hold is a timestamp column (``Job.lease_until`` for a worker or a callback,
``FeedbackRequest.next_attempt_at`` for a feedback send, ``Job.claimed_until`` for a
moderator's claim). Taking it is an UPDATE filtered by "still free" (whatever that means
for the caller), so of two racing takers exactly one changes the row; renewing and releasing
are filtered by the value we wrote, so a holder that lost the row changes nothing.
A hold that is not renewed ends by itself: that is how work held by a dead process is
handed on (the sweeper, or the next taker, sees the time has passed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, connections
from django.db.models import Q, QuerySet
from django.utils import timezone

logger = logging.getLogger("moderation.pipeline")  # where the worker's lease logs always went


def until(seconds: float, now: datetime | None = None) -> datetime:
    """When a hold taken now for ``seconds`` runs out."""
    return (now or timezone.now()) + timedelta(seconds=seconds)


def free(field: str, now: datetime) -> Q:
    """Nobody holds the row: the hold ``field`` is unset or has run out by ``now``."""
    return Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__lte": now})


def take(rows: QuerySet, field: str, held_until: datetime, **extra_updates) -> bool:
    """Hold the row(s) ``rows`` selects until ``held_until`` (and apply ``extra_updates`` in
    the same UPDATE); False when the filter no longer matches (someone else won).

    ``rows`` carries the caller's whole "may I take it" condition, e.g. ``free(field, now)``
    and a status: the condition and the write are one statement, hence race-free.
    """
    return bool(rows.update(**{field: held_until}, **extra_updates))


def renew(rows: QuerySet, field: str, held_until: datetime, new_until: datetime) -> bool:
    """Extend our hold (still ``held_until``) to ``new_until``; False if we lost it."""
    return bool(rows.filter(**{field: held_until}).update(**{field: new_until}))


def release(rows: QuerySet, field: str, held_until: datetime | None = None,
            **extra_updates) -> bool:
    """Give the hold up. With ``held_until`` only our own hold is cleared (a holder that
    lost the row to another must not free it); without, ``rows`` says whose it is."""
    if held_until is not None:
        rows = rows.filter(**{field: held_until})
    return bool(rows.update(**{field: None}, **extra_updates))


@contextmanager
def heartbeat(renew_hold: Callable[[], bool], interval: float, label: str) -> Iterator[None]:
    """Call ``renew_hold`` every ``interval`` seconds in a thread while the block runs; the
    thread stops early once ``renew_hold`` says the hold is lost.

    Not inside a transaction: there the hold is not committed, so no other process can see
    it (nor take the row), and the thread's own connection could not renew it.
    """
    if connection.in_atomic_block:
        yield
        return
    stop = threading.Event()
    beat = threading.Thread(target=_beat, args=(renew_hold, interval, label, stop),
                            daemon=True, name=f"moderation-lease ({label})")
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()


def _beat(renew_hold: Callable[[], bool], interval: float, label: str,
          stop: threading.Event) -> None:
    wait = interval
    try:
        while not stop.wait(wait):
            try:
                if not renew_hold():
                    logger.warning("%s: lease lost to another holder", label)
                    return
                wait = interval
            except DatabaseError as exc:  # e.g. SQLite busy: try again soon
                logger.warning("%s: lease not renewed (%s)", label, exc)
                wait = min(interval, 2.0)
    finally:
        connections.close_all()  # this thread's own connections


__all__ = ["free", "heartbeat", "release", "renew", "take", "until"]
