"""The task queue behind the app's background work, as three calls.

Everything in ``moderation`` that queues work or keeps a schedule calls these, never a
queue library: the adapter module (``django_q2``, the only importer of django_q) is the one
place to change for another queue (Celery, Django Tasks; see docs/architecture.md, "Queue
adapters"). Tasks are named by dotted path (``moderation.tasks.process_job``) with
JSON-friendly arguments, so any queue that runs a function by path can run them; the work
itself is idempotent (leases), so an adapter may deliver a task more than once.
"""

from __future__ import annotations

from . import django_q2 as _adapter


def enqueue(func_path: str, *args: object, name: str) -> None:
    """Run ``func_path(*args)`` on a worker soon. ``name`` labels the task for operators
    (cut to 100 characters); the app's queue (``MODERATION["QUEUE"]``) is the adapter's
    business."""
    _adapter.enqueue(func_path, *args, name=name)


def ensure_schedule(name: str, func_path: str, *, minutes: int, first_run_in: float = 0) -> None:
    """Create or update the repeating schedule ``name``: ``func_path()`` every ``minutes``,
    the first run ``first_run_in`` seconds from now when the schedule is new (an existing
    schedule keeps its next run)."""
    _adapter.ensure_schedule(name, func_path, minutes=minutes, first_run_in=first_run_in)


def remove_schedules(names: list[str]) -> None:
    """Delete the schedules called ``names`` (missing ones are fine)."""
    _adapter.remove_schedules(names)


__all__ = ["enqueue", "ensure_schedule", "remove_schedules"]
