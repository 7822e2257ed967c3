"""django-q2 entry points. Thin on purpose: the logic is in moderation/pipeline/."""

from __future__ import annotations

from django_q.tasks import async_task

from .conf import moderation_settings


def enqueue_job(job_id: int) -> None:
    options = {"task_name": f"moderation-job-{job_id}", "group": "moderation"}
    if moderation_settings.QUEUE:
        options["cluster"] = moderation_settings.QUEUE
    async_task("moderation.tasks.process_job", job_id, q_options=options)


def process_job(job_id: int) -> str:
    from . import pipeline

    return pipeline.process(job_id)


def sweep() -> int:
    from . import pipeline

    return pipeline.sweep()
