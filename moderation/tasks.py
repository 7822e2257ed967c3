"""The queued tasks' entry points (run by a worker of whatever queue the adapter feeds).
Thin on purpose: the logic is in moderation/pipeline/; queuing is ``taskqueue``'s."""

from __future__ import annotations

from . import alerts, taskqueue


def _enqueue(func: str, *args, name: str) -> None:
    """Queue ``moderation.tasks.<func>(*args)`` on the app's queue (MODERATION["QUEUE"])."""
    taskqueue.enqueue(f"moderation.tasks.{func}", *args, name=name)


def enqueue_job(job_id: int) -> None:
    _enqueue("process_job", job_id, name=f"moderation-job-{job_id}")


def enqueue_provider_cancel(alias: str, task_id: str) -> None:
    _enqueue("cancel_at_provider", alias, task_id, name=f"moderation-cancel-{task_id}")


def enqueue_feedback(feedback_id: int) -> None:
    _enqueue("send_feedback", feedback_id, name=f"moderation-feedback-{feedback_id}")


def send_feedback(feedback_id: int) -> str:
    from . import feedback

    return feedback.send(feedback_id)


def cancel_at_provider(alias: str, task_id: str) -> str:
    from .pipeline.worker import cancel_at_provider

    return cancel_at_provider(alias, task_id)


def process_job(job_id: int) -> str:
    from . import pipeline

    return pipeline.process(job_id)


def sweep() -> int:
    from . import feedback, pipeline

    swept = pipeline.sweep() + feedback.sweep()
    alerts.check()  # review-queue alerts (MODERATION["ALERTS"]); no query when unset
    return swept
