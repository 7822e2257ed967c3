"""Receiver of provider callbacks: ``POST moderation/callbacks/<alias>/``.

The view is find -> verify -> ingest through the provider's hooks (``read_callback``,
``verify_callback``, ``parse_callback``; see ``providers.base``), so any provider declaring
the ``callback`` capability can take pushed results in its own format. Alibaba's (form
fields ``checksum`` + ``content``, retried until HTTP 200: aliyun-protocol.md §2.5;
aliyun-api-reference.md §2.11, §3.6) live in ``providers.aliyun.callbacks``. Answers:

* 200 - stored now, or nothing to do (the job already finished or was cancelled: a repeated,
  replayed or late callback changes nothing);
* 400 - not a callback, refused for good (a retry cannot fix it): a body larger than
  ``CALLBACK_MAX_BYTES`` (refused from its ``Content-Length`` before anything is read, and
  never read past the cap), not UTF-8, not a form, a missing or repeated field, ``content``
  that is not a JSON object or nests too deeply, or a verified ``content`` whose fields have
  the wrong types for the provider's parser (for Alibaba; another provider's
  ``read_callback`` decides what it refuses); 403 - checksum wrong (forged) or not verifiable;
* 404 - unknown provider alias, a provider without the ``callback`` capability, or no job;
  503 - a worker holds the job right now, or the database is unreachable
  (the service retries, and polling remains the fallback).

Every refusal is a short plain-text answer, never an error page, and writes nothing.

The view only wires: reading, verifying and parsing are the provider's, storing is
``pipeline.ingest``; the size cap, the job lookup, the lease and the answers are the view's.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import DataError, InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .. import leases
from ..conf import moderation_settings
from ..models import UNFINISHED, Job
from ..pipeline import handle_error, ingest
from ..providers import ModerationError, NotSupported, UnknownProvider, get_provider
from ..providers.base import CALLBACK, Provider, ReceivedCallback
from ..providers.errors import MalformedCallback

logger = logging.getLogger("moderation.callbacks")  # its name before views/ (log configs)


def _answer(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def _refuse(status: int, alias: str, reason: str, *args: object) -> HttpResponse:
    logger.warning("callback for %r refused (%s): " + reason, alias, status, *args)
    return _answer(status, "refused")


#: the provider parser's errors on a verified ``content`` whose values have the wrong types
PARSE_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError,
                RecursionError)


def read_body(request: HttpRequest, cap: int) -> bytes:
    """At most ``cap`` bytes of the body: a declared ``Content-Length`` over the cap is
    refused before reading, and at most ``cap + 1`` bytes are ever read."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(declared)
    except ValueError:
        raise MalformedCallback("Content-Length is not a number") from None
    if length > cap:
        raise MalformedCallback(f"body of {length} bytes is over CALLBACK_MAX_BYTES ({cap})")
    body = request.read(cap + 1)
    if len(body) > cap:
        raise MalformedCallback(f"body is over CALLBACK_MAX_BYTES ({cap})")
    return body


def find_job(alias: str, callback: ReceivedCallback) -> Job | None:
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
    until = leases.until(moderation_settings.LEASE_SECONDS, now)
    unfinished = Job.objects.filter(leases.free("lease_until", now), pk=job.pk,
                                    status__in=UNFINISHED)
    return until if leases.take(unfinished, "lease_until", until) else None


@csrf_exempt
@require_POST
@transaction.non_atomic_requests
def receive(request: HttpRequest, provider_alias: str) -> HttpResponse:
    """Verify and store one pushed result; see the module docstring for the answers."""
    try:
        provider = get_provider(provider_alias)
    except UnknownProvider:
        return _refuse(404, provider_alias, "no such provider")
    if not provider.supports(CALLBACK):
        return _refuse(404, provider_alias, "the provider takes no callbacks")
    try:
        body = read_body(request, int(moderation_settings.CALLBACK_MAX_BYTES))
        callback = provider.read_callback(request, body)
    except MalformedCallback as exc:
        return _refuse(400, provider_alias, "%s", exc)
    try:
        return _store(provider, provider_alias, callback)
    except (OperationalError, InterfaceError) as exc:  # the database is unreachable
        logger.error("callback for %r not stored, database unavailable: %s", provider_alias,
                     exc)
        response = _answer(503, "database unavailable")
        response["Retry-After"] = "30"
        return response


def _store(provider: Provider, provider_alias: str, callback: ReceivedCallback) -> HttpResponse:
    """Find the job, verify it through the provider, parse and ingest (the database part)."""
    job = find_job(provider_alias, callback)
    if job is None:
        return _refuse(404, provider_alias, "no job for task %r / data id %r",
                       callback.task_id, callback.data_id)
    if not provider.verify_callback(callback, job.seed, dict(job.options or {})):
        return _refuse(403, provider_alias, "checksum mismatch for job %s (not authentic)", job.pk)
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
    except PARSE_ERRORS as exc:  # verified, yet not shaped like a result
        return _refuse(400, provider_alias, "malformed content for job %s: %r", job.pk, exc)
    until = _take_lease(job)
    if until is None:
        job.refresh_from_db()
        if job.status not in UNFINISHED:
            return _answer(200, "OK")
        return _refuse(503, provider_alias, "job %s is held by a worker", job.pk)
    try:
        ingest(job, result, raw=callback.content)
    except ModerationError as exc:
        # A verified answer that is no verdict (the provider failed, or analysed nothing):
        # the job records it like a worker would (failed, or retried by polling), and the
        # provider is told it arrived: a resent callback would say the same.
        logger.warning("callback for job %s is no verdict: %s", job.pk, exc)
        handle_error(job, exc)
        return _answer(200, "OK")
    except DataError as exc:  # a value the database refuses (too long, out of range)
        return _refuse(400, provider_alias, "content of job %s not storable: %s", job.pk, exc)
    finally:
        leases.release(Job.objects.filter(pk=job.pk), "lease_until", until)
    return _answer(200, "OK")
