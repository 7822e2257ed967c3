"""Receiver of provider callbacks: ``POST moderation/callbacks/<alias>/``.

Alibaba pushes a finished result as form fields ``checksum`` + ``content`` and retries until
it gets HTTP 200 (aliyun-protocol.md §2.5; aliyun-api-reference.md §2.11, §3.6). Answers:

* 200 - stored now, or nothing to do (the job already finished or was cancelled: a repeated,
  replayed or late callback changes nothing);
* 400 - not a callback (missing fields, bad JSON), 403 - checksum wrong (forged) or not
  verifiable; both refused for good, a retry cannot fix them;
* 404 - unknown provider alias or job; 503 - a worker holds the job right now (the service
  retries, and polling remains the fallback).

The view only wires: parsing and verification are pure functions in
``providers.aliyun.callbacks``, storing is ``pipeline.ingest``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .conf import moderation_settings
from .models import UNFINISHED, Job
from .pipeline import ingest
from .providers import ModerationError, NotSupported, UnknownProvider, get_provider
from .providers.aliyun.callbacks import (
    Callback,
    MalformedCallback,
    is_authentic,
    read_callback,
)

logger = logging.getLogger(__name__)


def _answer(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def _refuse(status: int, alias: str, reason: str, *args: object) -> HttpResponse:
    logger.warning("callback for %r refused (%s): " + reason, alias, status, *args)
    return _answer(status, "refused")


def find_job(alias: str, callback: Callback) -> Job | None:
    """The job by (provider, task id), else by data id (a callback may beat our save of the
    task id; the data id was sent with the submission)."""
    if callback.task_id:
        job = Job.objects.filter(provider=alias, provider_task_id=callback.task_id).first()
        if job is not None:
            return job
    if callback.data_id:
        return Job.objects.filter(provider=alias, data_id=callback.data_id).first()
    return None


def _take_lease(job: Job) -> datetime | None:
    """Hold the unfinished job like a worker does (conditional UPDATE on a free lease);
    unlike ``Lease.take`` a callback need not wait for the job's next poll time."""
    now = timezone.now()
    until = now + timedelta(seconds=moderation_settings.LEASE_SECONDS)
    free = Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    taken = Job.objects.filter(free, pk=job.pk, status__in=UNFINISHED).update(lease_until=until)
    return until if taken else None


@csrf_exempt
@require_POST
@transaction.non_atomic_requests
def receive(request: HttpRequest, provider_alias: str) -> HttpResponse:
    """Verify and store one pushed result; see the module docstring for the answers."""
    try:
        provider = get_provider(provider_alias)
    except UnknownProvider:
        return _refuse(404, provider_alias, "no such provider")
    try:
        callback = read_callback(request.POST)
    except MalformedCallback as exc:
        return _refuse(400, provider_alias, "%s", exc)
    job = find_job(provider_alias, callback)
    if job is None:
        return _refuse(404, provider_alias, "no job for task %r / data id %r",
                       callback.task_id, callback.data_id)
    uid = str(provider.options.get("UID") or "")
    crypt_type = str((job.options or {}).get("crypt_type")
                     or provider.options.get("CRYPT_TYPE") or "SHA256")
    if not uid:
        logger.error("provider %r has no OPTIONS['UID']: callbacks cannot be verified",
                     provider_alias)
    if not is_authentic(callback, uid, job.seed, crypt_type):
        return _refuse(403, provider_alias, "checksum mismatch for job %s", job.pk)
    if job.status not in UNFINISHED:
        logger.info("callback for finished job %s (%s) ignored", job.pk, job.status)
        return _answer(200, "OK")
    if job.provider_task_id and callback.task_id and job.provider_task_id != callback.task_id:
        logger.info("callback of an earlier task %r of job %s ignored", callback.task_id, job.pk)
        return _answer(200, "OK")
    try:
        result = provider.parse_callback(callback.content)
    except NotSupported:
        return _refuse(404, provider_alias, "the provider takes no callbacks")
    except ModerationError as exc:
        return _refuse(400, provider_alias, "unusable content for job %s: %s", job.pk, exc)
    until = _take_lease(job)
    if until is None:
        job.refresh_from_db()
        if job.status not in UNFINISHED:
            return _answer(200, "OK")
        return _refuse(503, provider_alias, "job %s is held by a worker", job.pk)
    try:
        ingest(job, result, raw=callback.content)
    except ModerationError as exc:
        logger.warning("callback for job %s could not be stored: %s", job.pk, exc)
        return _answer(503, "not stored")
    finally:
        Job.objects.filter(pk=job.pk, lease_until=until).update(lease_until=None)
    return _answer(200, "OK")
