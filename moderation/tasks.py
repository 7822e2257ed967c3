"""django-q2 entry points. Thin on purpose: the logic is in moderation/pipeline/."""

from __future__ import annotations

from django_q.tasks import async_task

from .conf import moderation_settings


def _enqueue(func: str, *args, name: str) -> None:
    """Queue ``moderation.tasks.<func>(*args)`` on the app's cluster (MODERATION["QUEUE"])."""
    options = {"task_name": name[:100], "group": "moderation"}
    if moderation_settings.QUEUE:
        options["cluster"] = moderation_settings.QUEUE
    async_task(f"moderation.tasks.{func}", *args, q_options=options)


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

    return pipeline.sweep() + feedback.sweep()
