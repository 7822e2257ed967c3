"""A queue adapter without a queue: each task runs in the calling process once the
transaction that queued it commits (``MODERATION["TASK_QUEUE"] =
"moderation.taskqueue.inline"``).

What it is for:

* a site's integration tests: no worker, no broker, no rows in django-q2's tables; a job
  created by a save has run by the time the transaction commits (in a test wrapped in a
  transaction, inside ``captureOnCommitCallbacks(execute=True)``, as with any on-commit
  work);
* a small site without a worker process whose jobs take a second (images and text on the
  local engine): the request that saves an upload waits for its job. Not for video, audio
  or live streams, whose tasks take minutes and would hold that request.

Why not a thread: work started by a request in a thread dies with the process (a deploy, a
restart) and competes with the web server for its connections; the sweeper would recover
it, but "runs when the transaction commits, in this process" is simple to reason about,
and deterministic in tests.

Tasks run one at a time per thread, in the order queued: a task queued by a running task
(a retry, a cancellation at the provider) runs after it, not inside it, as it would on a
worker. A task that raises is logged, never raised to the code that queued it (a worker
logs it too); the job's own state says what became of it.

Schedules are kept in this process's memory and nothing runs them by itself:
:func:`run_schedules` runs the due ones (a test of the sweeper). A site on this adapter
runs ``manage.py moderation_poll`` from cron for what the sweeper does (retries, polls of
asynchronous providers, lost work).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    """A repeating schedule: ``func_path()`` every ``minutes``, next at ``next_run``."""

    name: str
    func_path: str
    minutes: int
    next_run: datetime


_schedules: dict[str, Schedule] = {}
_lock = threading.Lock()
_running = threading.local()  # .pending: the tasks of this thread waiting their turn


def enqueue(func_path: str, *args: object, name: str) -> None:
    """Run ``func_path(*args)`` once the current transaction commits (at once outside
    one); a rolled-back transaction queues nothing, as with a real queue."""
    transaction.on_commit(partial(_deliver, func_path, args, name[:100]))


def _deliver(func_path: str, args: tuple, name: str) -> None:
    pending = getattr(_running, "pending", None)
    if pending is not None:  # a task of this thread is running: this one comes after it
        pending.append((func_path, args, name))
        return
    _running.pending = pending = deque([(func_path, args, name)])
    try:
        while pending:
            _run(*pending.popleft())
    finally:
        _running.pending = None


def _run(func_path: str, args: tuple, name: str) -> None:
    try:
        outcome = import_string(func_path)(*args)
    except Exception:
        logger.exception("task %s (%s) failed", name, func_path)
    else:
        logger.debug("task %s (%s): %s", name, func_path, outcome)


def ensure_schedule(name: str, func_path: str, *, minutes: int,
                    first_run_in: float = 0) -> None:
    with _lock:
        current = _schedules.get(name)
        next_run = (current.next_run if current
                    else timezone.now() + timedelta(seconds=first_run_in))
        _schedules[name] = Schedule(name, func_path, minutes, next_run)


def remove_schedules(names: list[str]) -> None:
    with _lock:
        for name in names:
            _schedules.pop(name, None)


def schedules() -> dict[str, Schedule]:
    """The schedules kept, by name (a copy)."""
    with _lock:
        return dict(_schedules)


def run_schedules(now: datetime | None = None) -> list[str]:
    """Run each schedule due by ``now`` once, in this thread, and move its next run an
    interval past ``now``; the names of those run."""
    now = now or timezone.now()
    with _lock:
        due = sorted((s for s in _schedules.values() if s.next_run <= now),
                     key=lambda s: (s.next_run, s.name))
        for schedule in due:
            _schedules[schedule.name] = replace(
                schedule, next_run=now + timedelta(minutes=schedule.minutes))
    for schedule in due:
        _deliver(schedule.func_path, (), schedule.name)
    return [schedule.name for schedule in due]


__all__ = ["Schedule", "enqueue", "ensure_schedule", "remove_schedules", "run_schedules",
           "schedules"]
