"""Receiver of provider callbacks: ``POST moderation/callbacks/<alias>/``.

Alibaba pushes a finished result as form fields ``checksum`` + ``content`` and retries until
it gets HTTP 200 (aliyun-protocol.md §2.5; aliyun-api-reference.md §2.11, §3.6). Answers:

* 200 - stored now, or nothing to do (the job already finished or was cancelled: a repeated,
  replayed or late callback changes nothing);
* 400 - not a callback, refused for good (a retry cannot fix it): a body larger than
  ``CALLBACK_MAX_BYTES`` (refused from its ``Content-Length`` before anything is read, and
  never read past the cap), not UTF-8, not a form, a missing or repeated field, ``content``
  that is not a JSON object or nests too deeply, or a verified ``content`` whose fields have
  the wrong types for the provider's parser; 403 - checksum wrong (forged) or not verifiable;
* 404 - unknown provider alias or job; 503 - a worker holds the job right now, or the
  database is unreachable (the service retries, and polling remains the fallback).

Every refusal is a short plain-text answer, never an error page, and writes nothing.

The view only wires: parsing and verification are pure functions in
``providers.aliyun.callbacks``, storing is ``pipeline.ingest``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from io import BytesIO
from urllib.parse import parse_qsl

from django.core.exceptions import SuspiciousOperation
from django.db import DataError, InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import leases
from .conf import moderation_settings
from .models import UNFINISHED, Job
from .pipeline import handle_error, ingest
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


#: a callback form has two fields; a body with more than this many is not one
MAX_FIELDS = 20
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


def form_fields(request: HttpRequest, body: bytes) -> dict[str, str]:
    """The form fields of a callback body, strictly: UTF-8 (after percent-decoding too),
    urlencoded (what Alibaba sends) or multipart without files, no field repeated."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedCallback("the body is not UTF-8") from None
    kind = request.content_type or "application/x-www-form-urlencoded"
    if kind == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                              max_num_fields=MAX_FIELDS)
        except ValueError as exc:  # UnicodeDecodeError included
            raise MalformedCallback(f"not a form: {exc}") from None
    elif kind == "multipart/form-data":
        try:
            parser = MultiPartParser(request.META, BytesIO(body), request.upload_handlers,
                                     "utf-8")
            data, files = parser.parse()
        except (MultiPartParserError, SuspiciousOperation, ValueError) as exc:
            raise MalformedCallback(f"not a form: {exc}") from None
        if files:
            raise MalformedCallback("a callback carries no files")
        pairs = [(key, value) for key, values in data.lists() for value in values]
        if len(pairs) > MAX_FIELDS:
            raise MalformedCallback("too many fields")
    else:
        raise MalformedCallback(f"content type {kind!r} is not a form")
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise MalformedCallback(f"field {key!r} is repeated")
        fields[key] = value
    return fields


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
    try:
        body = read_body(request, int(moderation_settings.CALLBACK_MAX_BYTES))
        callback = read_callback(form_fields(request, body))
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


def _store(provider, provider_alias: str, callback: Callback) -> HttpResponse:
    """Find the job, verify the checksum, parse and ingest (the database part)."""
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
