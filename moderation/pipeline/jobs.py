"""Creating, cancelling, logging and queueing jobs: the bookkeeping around a job's life.

Nothing here calls a provider; the worker (``worker.py``) does.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from .. import taskqueue
from ..conf import moderation_settings
from ..media import guess_kind, save_adhoc_input
from ..models import UNFINISHED, Job, ReviewEvent, Status, _new_data_id
from ..registry import Registration
from ..retrying import resend

Action = ReviewEvent.Action


# --- creating and cancelling ------------------------------------------------------------


def last_job(instance, field_name: str) -> Job | None:
    return Job.objects.for_object(instance).filter(field_name=field_name).first()


def create_job(instance, registration: Registration, field_name: str, *, sha256: str = "",
               created: bool = False) -> Job:
    """A pending job for the current file of ``instance.<field_name>``.

    Older jobs of the same field are superseded (unfinished ones cancelled). A just
    created object has none: deleting an object retires its jobs, even if its pk returns.
    """
    value = getattr(instance, field_name)
    name = value.name if hasattr(value, "name") else str(value)
    field = instance._meta.get_field(field_name)
    kind = registration.kinds.get(field_name) or guess_kind(field, name)
    if not created:
        cancel_field_jobs(instance, field_name, reason="superseded by a newer file")
        Job.objects.for_object(instance).filter(field_name=field_name, is_current=True).update(
            is_current=False
        )
    job = Job.objects.create(
        content_type=ContentType.objects.get_for_model(instance, for_concrete_model=False),
        object_id=str(instance.pk),
        field_name=field_name,
        file_name=name,
        media_kind=kind,
        sha256=sha256,
        provider=registration.provider_alias(),
        scenes=list(registration.scenes),
        biz_type=registration.biz_type,
        options=registration.job_options(),
    )
    log(job, Action.CREATED)
    return job


def create_adhoc_job(*, kind: str | None = None, name: str = "", content: bytes | None = None,
                     url: str = "", frames: list[tuple[float, bytes]] | None = None,
                     provider: str | None = None, scenes: list[str] | None = None,
                     biz_type: str = "", options: dict | None = None) -> Job:
    """A job for media that belongs to no model field: one file (``name`` + ``content``),
    a URL (video file or live stream), or a frame sequence of (offset, image bytes).

    The input is kept in evidence storage (private) so that a worker can read it; the job
    is enqueued when the transaction commits.
    """
    given = [x for x in (content is not None, bool(url), frames is not None) if x]
    if len(given) != 1:
        raise ValueError("give exactly one of content, url or frames")
    data_id = _new_data_id()
    job_options = dict(options or {})
    if frames is not None:
        kind = "frames"
        stored = [[float(offset), save_adhoc_input(data_id, f"{i:05d}.img", data)]
                  for i, (offset, data) in enumerate(frames)]
        job_options["frames"] = stored
        file_name = f"{len(stored)} frames"
    elif url:
        kind = kind or guess_kind(models.URLField(), url)
        file_name = url
    else:  # content, the one given
        kind = kind or guess_kind(models.FileField(), name)
        file_name = save_adhoc_input(data_id, name, content or b"")
    job = Job.objects.create(
        data_id=data_id, field_name="", file_name=file_name, media_kind=kind,
        provider=provider or moderation_settings.DEFAULT_PROVIDER, scenes=list(scenes or []),
        biz_type=biz_type, options=job_options,
    )
    log(job, Action.CREATED)
    transaction.on_commit(lambda: enqueue(job.pk))
    return job


def cancel_field_jobs(instance, field_name: str, reason: str) -> int:
    jobs = Job.objects.for_object(instance).filter(field_name=field_name).unfinished()
    return _cancel(jobs, reason)


def cancel_object_jobs(instance, reason: str) -> int:
    """The object is gone: cancel its unfinished jobs and retire all of them."""
    count = _cancel(Job.objects.for_object(instance).unfinished(), reason)
    Job.objects.for_object(instance).filter(is_current=True).update(is_current=False)
    return count


def _cancel(jobs, reason: str) -> int:
    """Cancel unfinished jobs; a task already at the provider is cancelled there too, by a
    queued task once this transaction commits (no HTTP inside a model save)."""
    count = 0
    for job in jobs.only("pk", "provider", "provider_task_id"):
        cancelled = Job.objects.filter(pk=job.pk, status__in=UNFINISHED).update(
            status=Status.CANCELLED, error_message=reason, lease_until=None,
            completed_at=timezone.now(),
        )
        count += cancelled
        log(job, Action.CANCELLED, reason)
        if cancelled and job.provider_task_id:
            transaction.on_commit(
                partial(enqueue_provider_cancel, job.provider, job.provider_task_id))
    return count


def enqueue_provider_cancel(alias: str, task_id: str) -> None:
    """Queue ``moderation.tasks.cancel_at_provider`` (tasks are named by path: the tasks
    module imports the pipeline, not the other way round)."""
    taskqueue.enqueue("moderation.tasks.cancel_at_provider", alias, task_id,
                      name=f"moderation-cancel-{task_id}")


def log(job: Job, action: str, reason: str = "", actor=None, **data: Any) -> ReviewEvent:
    return ReviewEvent.objects.create(job=job, action=action, reason=reason, actor=actor,
                                      data=data)


# --- queueing -----------------------------------------------------------------------------


def enqueue(job_id: int) -> None:
    """Put the job on the task queue (called on transaction commit): see ``taskqueue``."""
    Job.objects.filter(pk=job_id).update(enqueued_at=timezone.now())
    enqueue_job(job_id)


def enqueue_job(job_id: int) -> None:
    """Queue ``moderation.tasks.process_job`` (named by path, as above)."""
    taskqueue.enqueue("moderation.tasks.process_job", job_id, name=f"moderation-job-{job_id}")


#: A task still queued this long after its enqueue is taken for lost (the Redis broker drops
#: the task of a worker that dies before it leased the job). Not LEASE_SECONDS: a backlog
#: that waits its turn must not be enqueued again and again. A worker that died holding
#: the lease is found sooner, by its lease running out (``needing_enqueue``).
LOST_TASK_SECONDS = 900


def lost_before(now):
    """Tasks enqueued before this time and not yet run are taken for lost."""
    return now - timedelta(seconds=LOST_TASK_SECONDS)


def sweep(now=None) -> int:
    """Re-enqueue due, stuck or lost jobs; returns how many. Run by a schedule."""
    now = now or timezone.now()
    return resend(Job.objects.needing_enqueue(now, lost_before(now)), enqueue)


def retry(job: Job, actor=None) -> Job:
    """Put a failed or expired job back in line (by hand: admin action, command)."""
    updated = Job.objects.filter(
        pk=job.pk, status__in=(Status.FAILED, Status.EXPIRED)
    ).update(
        status=Status.PENDING, attempts=0, next_attempt_at=None, lease_until=None,
        error_code="", error_message="", provider_task_id=None,
    )
    if updated:
        log(job, Action.REQUEUED, actor=actor)
        transaction.on_commit(lambda: enqueue(job.pk))
    job.refresh_from_db()
    return job


__all__ = [
    "LOST_TASK_SECONDS", "cancel_field_jobs", "cancel_object_jobs", "create_adhoc_job",
    "create_job", "enqueue", "last_job", "log", "lost_before", "retry", "sweep",
]
