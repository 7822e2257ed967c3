"""The queued tasks' entry points (run by a worker of whatever queue the adapter feeds).
Thin on purpose: the logic is in moderation/pipeline/; queuing is ``taskqueue``'s."""

from __future__ import annotations

from . import alerts, feedback, pipeline
from .pipeline.worker import cancel_at_provider as _cancel_at_provider

# Queuing is the callers': ``pipeline.jobs.enqueue_job`` / ``enqueue_provider_cancel`` and
# ``feedback.enqueue`` name these functions by dotted path through ``taskqueue``, so this
# module imports the pipeline and nothing imports this one.


def send_feedback(feedback_id: int) -> str:
    return feedback.send(feedback_id)


def cancel_at_provider(alias: str, task_id: str) -> str:
    return _cancel_at_provider(alias, task_id)


def process_job(job_id: int) -> str:
    return pipeline.process(job_id)


def sweep() -> int:
    swept = pipeline.sweep() + feedback.sweep()
    alerts.check()  # review-queue alerts (MODERATION["ALERTS"]); no query when unset
    return swept
