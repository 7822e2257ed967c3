"""The task queue behind the app's background work, as three calls.

Everything in ``moderation`` that queues work or keeps a schedule calls these, never a
queue library. They delegate to the adapter ``MODERATION["TASK_QUEUE"]`` names: a dotted
path to a module (or any object) with the same three functions. Two ship:
``moderation.taskqueue.django_q2`` (the default, the only importer of django_q) and
``moderation.taskqueue.inline`` (runs each task in the calling process once the
transaction commits: tests, small sites). Another queue (Celery, Django Tasks) is one more
such module; see docs/architecture.md, "Queue adapters".

Tasks are named by dotted path (``moderation.tasks.process_job``) with JSON-friendly
arguments, so any queue that runs a function by path can run them; the work itself is
idempotent (leases), so an adapter may deliver a task more than once.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..conf import moderation_settings

#: what an adapter must provide (the signatures of the functions below)
ADAPTER_FUNCTIONS = ("enqueue", "ensure_schedule", "remove_schedules")

# (dotted path, adapter) of the adapter last loaded: loaded when first used, and again
# once the setting names another one (``override_settings`` clears the settings' cache).
_loaded: tuple[str, Any] | None = None


def load(path: str) -> Any:
    """Import the adapter at ``path``; ImproperlyConfigured when it does not import or
    lacks one of :data:`ADAPTER_FUNCTIONS` (system check E015 says so at start-up)."""
    if not isinstance(path, str) or not path:
        raise ImproperlyConfigured(f"MODERATION['TASK_QUEUE'] = {path!r} is not a dotted path.")
    try:
        adapter = _import(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"MODERATION['TASK_QUEUE'] = {path!r} cannot be imported ({exc}).") from exc
    if adapter is sys.modules[__name__]:  # it would call itself for ever
        raise ImproperlyConfigured(
            f"MODERATION['TASK_QUEUE'] = {path!r} is the facade, not an adapter.")
    missing = [name for name in ADAPTER_FUNCTIONS if not callable(getattr(adapter, name, None))]
    if missing:
        raise ImproperlyConfigured(
            f"MODERATION['TASK_QUEUE'] = {path!r} has no {', '.join(missing)}.")
    return adapter


def _import(path: str) -> Any:
    """The module ``path``, else the attribute ``path`` names in its module
    (``import_string`` alone finds a submodule only once something imported it)."""
    try:
        return import_module(path)
    except ModuleNotFoundError as exc:
        if not exc.name or not (path == exc.name or path.startswith(f"{exc.name}.")):
            raise  # the adapter module itself imports something missing: say so
    return import_string(path)


def adapter() -> Any:
    """The adapter in use (``MODERATION["TASK_QUEUE"]``)."""
    global _loaded
    path = moderation_settings.TASK_QUEUE
    if _loaded is None or _loaded[0] != path:
        _loaded = (path, load(path))
    return _loaded[1]


def enqueue(func_path: str, *args: object, name: str) -> None:
    """Run ``func_path(*args)`` on a worker soon. ``name`` labels the task for operators
    (cut to 100 characters); the app's queue (``MODERATION["QUEUE"]``) is the adapter's
    business."""
    adapter().enqueue(func_path, *args, name=name)


def ensure_schedule(name: str, func_path: str, *, minutes: int, first_run_in: float = 0) -> None:
    """Create or update the repeating schedule ``name``: ``func_path()`` every ``minutes``,
    the first run ``first_run_in`` seconds from now when the schedule is new (an existing
    schedule keeps its next run)."""
    adapter().ensure_schedule(name, func_path, minutes=minutes, first_run_in=first_run_in)


def remove_schedules(names: list[str]) -> None:
    """Delete the schedules called ``names`` (missing ones are fine)."""
    adapter().remove_schedules(names)


__all__ = ["ADAPTER_FUNCTIONS", "adapter", "enqueue", "ensure_schedule", "load",
           "remove_schedules"]
