"""django-q2 entry points. Thin on purpose: the logic is in moderation/pipeline/."""

from __future__ import annotations

from django_q.tasks import async_task

from .conf import moderation_settings


def enqueue_job(job_id: int) -> None:
    options = {"task_name": f"moderation-job-{job_id}", "group": "moderation"}
    if moderation_settings.QUEUE:
        options["cluster"] = moderation_settings.QUEUE
    async_task("moderation.tasks.process_job", job_id, q_options=options)


def enqueue_provider_cancel(alias: str, task_id: str) -> None:
    options = {"task_name": f"moderation-cancel-{task_id}"[:100], "group": "moderation"}
    if moderation_settings.QUEUE:
        options["cluster"] = moderation_settings.QUEUE
    async_task("moderation.tasks.cancel_at_provider", alias, task_id, q_options=options)


def cancel_at_provider(alias: str, task_id: str) -> str:
    from .pipeline.worker import cancel_at_provider

    return cancel_at_provider(alias, task_id)


def process_job(job_id: int) -> str:
    from . import pipeline

    return pipeline.process(job_id)


def sweep() -> int:
    from . import pipeline

    return pipeline.sweep()
