"""The domain steps of moderation, as plain functions: create, submit, poll, ingest, and
the verdicts (the policy's, a moderator's).

Tasks and views only call these. Jobs are the source of truth and every step is
idempotent: a worker first takes a *lease* on the job with one conditional UPDATE (works
on SQLite and PostgreSQL alike), so a task delivered twice, or re-enqueued by the sweeper,
does the work once.

Layout (at run time each module imports only the ones listed above it):

- ``jobs.py``: create, cancel and log jobs; enqueue, sweep and retry them.
- ``verdict.py``: the policy's verdict on a finished job (``apply_policy``) and a
  moderator's (``resolve``): decision, block action, signals.
- ``ingest.py``: store a finished result as rows, then ``apply_policy``.
- ``live.py``: follow a live stream, ingesting its partial results as they come.
- ``worker.py``: the worker's step (lease, submit, poll, reuse) and error handling.

Everything is re-exported here: call ``pipeline.process(...)``, not the modules.
"""

from ..media import file_sha256
from .ingest import ingest
from .jobs import _cancel as _cancel  # private, but tests call pipeline._cancel
from .jobs import (
    cancel_field_jobs,
    cancel_object_jobs,
    create_adhoc_job,
    create_job,
    enqueue,
    last_job,
    log,
    retry,
    sweep,
)
from .live import finish_stream, follow_stream, ingest_partial
from .verdict import apply_policy, registration_for, resolve
from .worker import (
    TERMINAL_ERRORS,
    Lease,
    backoff_seconds,
    build_request,
    copy_evidence_and_ingest,
    handle_error,
    media_of,
    poll,
    process,
    reusable_result,
    submit,
)

__all__ = [
    "TERMINAL_ERRORS", "Lease", "apply_policy", "backoff_seconds", "build_request",
    "cancel_field_jobs", "cancel_object_jobs", "copy_evidence_and_ingest", "create_adhoc_job",
    "create_job", "enqueue", "file_sha256", "finish_stream", "follow_stream", "handle_error",
    "ingest", "ingest_partial", "last_job", "log", "media_of", "poll", "process",
    "registration_for", "resolve", "retry", "reusable_result", "submit", "sweep",
]
