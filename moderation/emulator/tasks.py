"""In-memory, thread-safe store of the emulator's asynchronous tasks (video moderation).

A task is ``running`` until its background analysis ends, then ``done`` with the answer body
(or ``failed`` with a business code); it and its temporary files (frame images, audio slices)
are kept for ``retention`` after it finished (aliyun-api-reference.md §3.3: 24 h for video),
then forgotten, as the real service forgets them (aliyun-protocol.md §2.6 code 594).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

RUNNING, DONE, FAILED = "running", "done", "failed"


@dataclass
class Task:
    """One submitted task; ``files`` maps a name (``3.jpg``) to (bytes, content type)."""

    task_id: str
    data_id: str | None
    service: str
    state: str = RUNNING
    data: dict[str, Any] = field(default_factory=dict)  # the result ``Data`` when done
    error: tuple[int, str] | None = None  # (business code, message) when failed
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    finished_at: float | None = None
    # The callback trio of the submission (§2.5); no callback when ``callback`` is empty.
    callback: str = ""
    seed: str = ""
    crypt_type: str = "SHA256"
    # Seconds the finished task is kept; None: the store's default. Products differ
    # (1.0: 1 h, 2.0 video: 24 h, IMM: 7 days) and share one store.
    retention: float | None = None
    # Protocol-specific request details a renderer needs (scenes, live, ...).
    extra: dict[str, Any] = field(default_factory=dict)


def new_task_id(prefix: str = "vi_f_") -> str:
    """A task id shaped like the service's (a prefix and 32 hex digits)."""
    return f"{prefix}{uuid.uuid4().hex}"


class TaskStore:
    """Tasks by id under one lock; expired tasks are dropped whenever the store is read."""

    def __init__(self, retention: timedelta, clock: Callable[[], float] = time.monotonic) -> None:
        self.retention = retention.total_seconds()
        self.clock = clock
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def add(self, task: Task) -> None:
        with self._lock:
            self._tasks[task.task_id] = task

    def get(self, task_id: str) -> Task | None:
        """The task, or None when it never existed, was cancelled or has expired."""
        with self._lock:
            self._purge()
            return self._tasks.get(task_id)

    def finish(
        self,
        task_id: str,
        data: dict[str, Any] | None = None,
        files: dict[str, tuple[bytes, str]] | None = None,
        error: tuple[int, str] | None = None,
    ) -> None:
        """Record the outcome of a running task (ignored if it was cancelled meanwhile)."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.state != RUNNING:
                return
            task.state = FAILED if error else DONE
            task.data, task.files, task.error = data or {}, files or {}, error
            task.finished_at = self.clock()

    def running(self) -> int:
        """How many tasks have not finished (the account's concurrency)."""
        with self._lock:
            return sum(1 for task in self._tasks.values() if task.state == RUNNING)

    def remove(self, task_id: str) -> bool:
        """Forget a task (cancel); False when there was none."""
        with self._lock:
            self._purge()
            return self._tasks.pop(task_id, None) is not None

    def _purge(self) -> None:
        now = self.clock()
        for task_id in [
            key for key, task in self._tasks.items()
            if task.finished_at is not None
            and now - task.finished_at > (self.retention if task.retention is None
                                          else task.retention)
        ]:
            del self._tasks[task_id]
