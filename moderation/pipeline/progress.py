"""Live progress of a running job: what a provider reports through
``ModerationRequest.progress`` written onto ``Job.progress`` for the job page and the list.

A provider may report per frame; the writer keeps at most one UPDATE per ``INTERVAL``
seconds (and per ``MIN_STEP`` of the total), so a 2-hour video costs at most about a
hundred writes. Each write is one autocommitted UPDATE of that column alone on the
calling thread's connection - the worker's step runs outside a transaction (as its lease
heartbeat needs), so another process sees it at once; inside a transaction (a test, an
eager task in a request) it stays in that transaction, as a separate connection would
wait on the job row's lock there. A failed write is logged and skipped: progress never
fails a job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import DatabaseError
from django.utils import timezone

from ..models import UNFINISHED, Job

logger = logging.getLogger(__package__)

#: seconds between two writes of one job's progress
INTERVAL = 1.0
#: the least advance (a fraction of the total) worth a write, when the total is known
MIN_STEP = 0.01

UNITS = ("s", "frames")


class ProgressWriter:
    """The ``ModerationRequest.progress`` of one job's step: ``(done, total, unit)``.

    The first report is written at once (the page shows "0 s of 90 s" from the start);
    later ones when ``interval`` seconds have passed since the last write and the work has
    advanced by ``min_step`` of the total. Reports in between are dropped: the next write
    carries the newest. ``writes`` counts the UPDATEs (for tests and logs).
    """

    def __init__(self, job_id: int, *, interval: float | None = None,
                 min_step: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.job_id = job_id
        self.interval = INTERVAL if interval is None else interval
        self.min_step = MIN_STEP if min_step is None else min_step
        self.clock = clock
        self.writes = 0
        self._last_at: float | None = None
        self._last_done: float | None = None

    def __call__(self, done: float, total: float, unit: str = "s") -> None:
        done, total = float(done), max(float(total or 0.0), 0.0)
        if unit not in UNITS:
            raise ValueError(f"progress unit must be one of {UNITS}, not {unit!r}")
        now = self.clock()
        if self._last_at is not None:
            if now - self._last_at < self.interval:
                return
            if done <= (self._last_done or 0.0) or (
                    total and done - (self._last_done or 0.0) < self.min_step * total):
                return
        self._last_at, self._last_done = now, done
        self._write({"done": round(min(done, total) if total else done, 3),
                     "total": round(total, 3), "unit": unit,
                     "at": timezone.now().isoformat()})

    def _write(self, progress: dict) -> None:
        try:
            # Only while the job runs: a cancelled or finished job keeps what it has.
            Job.objects.filter(pk=self.job_id, status__in=UNFINISHED).update(progress=progress)
        except DatabaseError as exc:  # e.g. SQLite busy under a writer: the next one counts
            logger.warning("job %s: progress not written (%s)", self.job_id, exc)
            return
        self.writes += 1


def describe(progress: dict | None) -> dict | None:
    """What the job page and the list show of a job's ``progress``: ``done``, ``total``,
    ``unit`` and ``percent`` (None when the total is unknown); None when there is none."""
    if not progress or "done" not in progress:
        return None
    done = float(progress.get("done") or 0.0)
    total = float(progress.get("total") or 0.0)
    percent = min(100, int(done * 100 / total)) if total else None
    return {"done": done, "total": total, "unit": progress.get("unit", "s"),
            "percent": percent}


__all__ = ["INTERVAL", "MIN_STEP", "ProgressWriter", "describe"]
