"""Account limits shared by every worker: request rates and unfinished-task slots.

Alibaba Cloud limits an *account*, not a process: 100 requests/s (2.0), 20 feedback calls/s,
50 unfinished video tasks. Several qcluster workers on several machines must therefore count
in one place, and the one place every worker already shares is the database.

* :func:`acquire` is a GCRA limiter (the "generic cell rate algorithm" behind most API
  gateways): a row holds ``next_at``, the earliest moment the next call may go; a call takes
  its turn with one conditional ``UPDATE`` (atomic on SQLite and PostgreSQL alike) and pushes
  ``next_at`` one interval on. Calls keep a cadence of ``1/rate``, so a window of T seconds
  sees at most ``rate * T + 1`` of them. A call that cannot get a turn within ``max_wait`` raises
  :class:`Throttled` with ``retry_after``: the job goes back to the table and waits, it is
  never dropped.
* :func:`task_slot` serialises "count the unfinished tasks, then claim one" on a lock row,
  so two workers cannot both take the 50th slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import IntegrityError, transaction
from django.db.models import F, FloatField, Value
from django.db.models.functions import Greatest

from .models import RateBudget
from .providers.errors import Throttled

#: Longest a worker sleeps in :func:`acquire` before it hands the job back to the table.
MAX_WAIT = 2.0
_known_keys: set[str] = set()


def _ensure(key: str) -> None:
    """Create the budget row once per process (rows are never deleted)."""
    if key in _known_keys:
        return
    try:
        with transaction.atomic():
            RateBudget.objects.get_or_create(key=key)
    except IntegrityError:  # another worker created it between our SELECT and INSERT
        pass
    _known_keys.add(key)


def acquire(key: str, rate: float, *, max_wait: float = MAX_WAIT,
            clock: Callable[[], float] = time.time,
            sleep: Callable[[float], None] = time.sleep) -> float:
    """Wait for a turn under ``rate`` calls/s on ``key``; the seconds waited.

    Raises :class:`Throttled` (code ``rate_limited``, ``retry_after`` set) when no turn comes
    within ``max_wait``. A ``rate`` of 0 or None means no limit.
    """
    if not rate or rate <= 0:
        return 0.0
    interval = 1.0 / rate
    _ensure(key)
    started = clock()
    while True:
        now = clock()
        # A turn taken late keeps the cadence: the next one is due one interval after the
        # scheduled turn, not after ``now``; an idle budget gives at most half an interval
        # of credit (no bursts are saved up).
        earliest = Value(now - interval / 2, output_field=FloatField())
        if RateBudget.objects.filter(key=key, next_at__lte=now).update(
                next_at=Greatest(F("next_at"), earliest) + interval):
            return now - started
        next_at = RateBudget.objects.filter(key=key).values_list("next_at", flat=True).first()
        if next_at is None:  # the row went away (a flushed test database): make it again
            _known_keys.discard(key)
            _ensure(key)
            continue
        wait = max(next_at - now, 0.0005)
        if now + wait - started > max_wait:
            raise Throttled(
                f"rate limit {rate:g}/s of {key!r} is in use by other workers; "
                f"the job waits in the table", code="rate_limited", retry_after=max(wait, 1.0),
            )
        sleep(min(wait, interval))


def reset(key: str) -> None:
    """Forget a budget's schedule (tests, and after changing a limit)."""
    RateBudget.objects.filter(key=key).update(next_at=0.0)


@contextmanager
def task_slot(key: str) -> Iterator[None]:
    """Hold the lock of ``key``'s task slots for a count-then-claim, inside one transaction.

    The ``UPDATE`` of the lock row takes a row lock on PostgreSQL and the write lock on
    SQLite, so concurrent claimers queue here instead of racing on the count.
    """
    _ensure(key)
    with transaction.atomic():
        if not RateBudget.objects.filter(key=key).update(next_at=time.time()):
            # The row went away (a rolled-back or flushed test database): make it, then lock.
            _known_keys.discard(key)
            _ensure(key)
            RateBudget.objects.filter(key=key).update(next_at=time.time())
        yield
