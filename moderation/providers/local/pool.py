"""Where frame and speech analyses run: worker processes, or threads where processes cannot be.

Measured on 2 cores (bench/video_engine.py, 60 s video, dedup and OCR gate on):

* One process per core, each with one ONNX thread: 5.9 s wall. Threads in this process:
  9.5 s (1.6x), for the same CPU time. RapidOCR and the QR detector run under a lock
  (one OCR at a time per process), and pocketsphinx holds the GIL while it decodes (a
  Python thread beside it ran 9x slower): the decoding thread then spent 6.8 s instead
  of 1.2 s waiting for the GIL.
* Processes start with ``forkserver`` (``spawn`` where there is none), never ``fork``: a
  fork after RapidOCR has run deadlocks in the child (P2). The pool is module-level,
  created on first use and kept, so each child loads its models once (~500 MB each).
  Like any spawned child, it imports the parent's ``__main__``: scripts need the
  ``if __name__ == "__main__":`` guard (manage.py, qcluster and pytest have it).
* django-q2 workers are daemonic by default and a daemonic process cannot have children:
  there the work runs in threads of the calling process. ``Q_CLUSTER["daemonize_workers"]
  = False`` lets each worker have its own pool of processes.

Risk levels are computed again in the parent (the child sees default settings unless
DJANGO_SETTINGS_MODULE names a module), so ``MODERATION["LABELS"]`` always applies. For the
same reason a site's ``DETECTORS`` travel with each task (in ``engine_options``, as
picklable specs) and the child builds them itself, never from settings or parent state.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.util
import os
import select
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from numpy.typing import NDArray

from ..errors import ProviderError
from ..result import Label, Slice
from .engine import get_engine
from .speech import analyse_speech, get_recogniser
from .textgate import may_have_text

AUTO, PROCESSES, THREADS = "auto", "processes", "threads"
PARALLELISM = (AUTO, PROCESSES, THREADS)

_lock = threading.Lock()
_pools: dict[int, ProcessPoolExecutor] = {}


@dataclass
class FrameOutcome:
    """One analysed frame: labels and details from the engine, and what it cost."""

    labels: list[Label]
    details: dict[str, Any]
    cpu: float
    wall: float
    ocr_gated: bool = False


@dataclass
class SpeechOutcome:
    slices: list[Slice] = field(default_factory=list)
    cpu: float = 0.0
    wall: float = 0.0


def choose_mode(parallelism: str) -> str:
    """Processes unless asked for threads, or unless this process may not have children."""
    if parallelism == THREADS or multiprocessing.current_process().daemon:
        return THREADS
    return PROCESSES


def default_workers() -> int:
    """The usable cores, at most 4: each worker process holds ~500 MB of models."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


@contextmanager
def executor_for(mode: str, workers: int) -> Iterator[Executor]:
    """The shared process pool, or a thread pool that lives as long as the block."""
    if mode == PROCESSES:
        yield process_pool(workers)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="moderation-video") as pool:
        yield pool


def process_pool(workers: int) -> ProcessPoolExecutor:
    with _lock:
        pool = _pools.get(workers)
        if pool is None:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context(
                "forkserver" if "forkserver" in methods else "spawn"
            )
            pool = _pools[workers] = ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_init_child,
                initargs=(os.getpid(),),
            )
            _stop_pools_at_exit()
        return pool


_exit_hooks_installed = False


def _stop_pools_at_exit() -> None:
    """Children must not outlive the process that made them: a django-q2 worker that
    stops would otherwise wait on them forever, and orphans would keep its pipes open.

    multiprocessing children (the qcluster workers) run ``Finalize`` hooks on exit but
    skip ``atexit``; a plain process (manage.py, a script) runs ``atexit``. Both call the
    same idempotent shutdown.
    """
    global _exit_hooks_installed
    if _exit_hooks_installed:
        return
    multiprocessing.util.Finalize(None, shutdown_pools, exitpriority=100)
    atexit.register(shutdown_pools)
    _exit_hooks_installed = True


@contextmanager
def crash_guard(workers: int) -> Iterator[None]:
    """A worker that died (killed, out of memory) breaks its pool: start afresh next time,
    and fail this job as retryable."""
    try:
        yield
    except BrokenProcessPool as exc:
        discard_pool(workers)
        raise ProviderError(
            "a video worker process died (out of memory?)", code="worker_crashed"
        ) from exc


def discard_pool(workers: int) -> None:
    """Forget a broken pool (a child died) so that the next job starts a new one."""
    with _lock:
        pool = _pools.pop(workers, None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def shutdown_pools() -> None:
    """Stop every worker process (tests and benchmarks; a server keeps its pool)."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


def _init_child(owner_pid: int | None = None) -> None:
    """Tie a fresh child's life to the process that owns the pool, and give it usable
    settings: risk_of reads MODERATION (redone in the parent)."""
    if owner_pid is not None:
        exit_with(owner_pid)

    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        try:
            getattr(settings, "MODERATION", None)
            return
        except Exception:  # the module does not import here: fall back to defaults
            pass
    if not settings.configured:
        settings.configure()


def exit_with(owner_pid: int) -> None:
    """End this process as soon as ``owner_pid`` ends (a daemon thread watches it).

    A pool child's parent is the forkserver, not the owner, so it is never told of the
    owner's death (PR_SET_PDEATHSIG would watch the forkserver), and the forkserver
    outlives the owner: every child holds the write end of its "alive" pipe, and a child
    waits for work on a queue whose write end it holds too (so with ``spawn`` as well).
    After a ``kill -9`` of a django-q2 worker its children (~500 MB each), forkserver and
    resource tracker stayed for good; now the children exit, then the other two follow.
    """
    threading.Thread(target=_watch_owner, args=(owner_pid,), daemon=True,
                     name="moderation-owner-watch").start()


def _watch_owner(owner_pid: int) -> None:
    try:
        pidfd = os.pidfd_open(owner_pid)  # Linux 5.3+: readable when the process ends
    except (AttributeError, OSError):  # elsewhere (or already gone): look once a second
        while _alive(owner_pid):
            time.sleep(1.0)
    else:
        select.select([pidfd], [], [])
    os._exit(0)  # no cleanup: the owner, and so this child's work, is gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (the pid was reused)
        return False
    return True


# --- Tasks (run in a worker; arguments and results cross a process boundary) -------------


def analyse_frame(
    bgr: NDArray[np.uint8],
    scenes: list[str],
    libraries: Any,
    keywords: dict[str, list[str]] | None,
    engine_options: Mapping[str, Any],
    ocr_gate: bool,
) -> FrameOutcome:
    """The image engine on one frame; with ``ocr_gate``, OCR only where text may be.

    ``engine_options`` carries the site's ``detectors`` specs: a pool child builds its
    detectors from them (it has none of the parent's state), once per configuration.
    """
    wall, cpu = time.perf_counter(), time.thread_time()
    engine = get_engine(engine_options)
    gated = False
    if ocr_gate and engine.needs_text(scenes):
        gated = not may_have_text(bgr)
    labels, details = engine.analyse_image(bgr, scenes, libraries, keywords,
                                           read_text=not gated)
    return FrameOutcome(
        labels=labels,
        details=details,
        cpu=time.thread_time() - cpu,
        wall=time.perf_counter() - wall,
        ocr_gated=gated,
    )


def analyse_audio(
    pcm: NDArray[np.int16],
    keywords: dict[str, list[str]] | None,
    options: Mapping[str, Any],
    offset: float = 0.0,
) -> SpeechOutcome:
    wall, cpu = time.perf_counter(), time.thread_time()
    slices = analyse_speech(pcm, keywords=keywords, options=dict(options), offset=offset)
    return SpeechOutcome(slices, time.thread_time() - cpu, time.perf_counter() - wall)


def warm_up(engine_options: Mapping[str, Any], speech_options: Mapping[str, Any]) -> float:
    """Load the image models and the recogniser in this worker; returns the seconds taken."""
    start = time.perf_counter()
    get_engine(engine_options).warm_up()
    get_recogniser(dict(speech_options)).load()
    return time.perf_counter() - start


def warm_workers(mode: str, workers: int, options: Mapping[str, Any]) -> None:
    """Run ``warm_up`` once per worker (each busy warm-up leaves the next to another worker)."""
    with executor_for(mode, workers) as executor:
        futures = [executor.submit(warm_up, dict(options), dict(options)) for _ in range(workers)]
        for future in futures:
            future.result()
