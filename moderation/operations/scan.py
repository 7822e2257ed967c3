"""Backfill: jobs for objects that existed before their model was registered (or whose
bytes were replaced outside a save), walked by primary key in batches.

Resumable by construction: an object field that already has a current job for its stored
file is skipped, so a scan that stopped half-way is simply run again; ``start_after``
skips straight to where it stopped (the report says where that is).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Q

from .. import pipeline
from ..media import stored_name
from ..models import Job
from ..registry import Registration
from .common import BadInput, RateLimiter, check_number, moderated_fields, pk_value

#: Names tried, in order, for the date ``since`` filters on; then any ``auto_now_add`` field.
DATE_FIELD_NAMES = ("created_at", "created", "date_created", "created_on", "uploaded_at",
                    "pub_date", "timestamp")


def date_field_of(model: type[models.Model], name: str | None = None) -> str | None:
    """The model's creation date field: ``name`` if given (it must be a date field),
    else the first of :data:`DATE_FIELD_NAMES`, else the first ``auto_now_add`` field."""
    opts = model._meta
    if name:
        try:
            found = opts.get_field(name)
        except Exception:
            raise BadInput(f"{opts.label} has no field {name!r}") from None
        if not isinstance(found, models.DateField):  # DateTimeField is a DateField
            raise BadInput(f"{opts.label}.{name} is not a date field")
        return name
    for candidate in DATE_FIELD_NAMES:
        try:
            found = opts.get_field(candidate)
        except Exception:
            continue
        if isinstance(found, models.DateField):
            return candidate
    for found in opts.concrete_fields:
        if isinstance(found, models.DateField) and getattr(found, "auto_now_add", False):
            return found.name
    return None


@dataclass
class ScanReport:
    model: str
    fields: list[str]
    dry_run: bool = False
    apply_block: bool = False
    resubmit: bool = False
    date_field: str | None = None  # what `since` filtered on; None: on jobs (or no since)
    total: int = 0  # objects to walk (with a file in a scanned field)
    objects: int = 0  # objects walked so far
    created: int = 0  # jobs created (dry run: that would be)
    existing: int = 0  # object fields skipped: a current job already covers the file
    empty: int = 0  # object fields skipped: no file
    last_pk: Any = None  # resume with start_after=last_pk
    finished: bool = False
    seconds: float = 0.0
    job_ids: list[int] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("job_ids")
        data["last_pk"] = None if self.last_pk is None else str(self.last_pk)
        return data


def scan(registration: Registration, *, fields: list[str] | None = None,
         since: datetime | None = None, date_field: str | None = None,
         resubmit: bool = False, dry_run: bool = False, apply_block: bool = False,
         rate: float | None = None, batch: int = 500, start_after: str | None = None,
         limit: int | None = None,
         progress: Callable[[ScanReport], None] | None = None,
         clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> ScanReport:
    """Create jobs for the files of ``registration``'s model that have none.

    - An object field is skipped when it is empty, or when a *current* job covers its
      stored name (any status: a failed one is for ``moderation_retry``). With
      ``resubmit``, every file gets a new job (same name, new bytes).
    - ``since``: only objects created since then, by their date field (``date_field``, else
      see :func:`date_field_of`). A model without one: ``since`` applies to the jobs; with
      ``resubmit``, a file whose current job was created since then is skipped, which makes a
      resubmission resumable.
    - ``apply_block`` False (the default): the jobs carry ``options["apply_block"] = False``
      and a ``block`` verdict does not run the block action (see pipeline.verdict.apply_policy).
    - ``rate``: at most that many jobs per second; ``batch``: objects read per query
      (keyset pagination by primary key); ``limit``: stop after that many jobs.
    - ``dry_run``: count only.

    Each job is created in its own transaction and enqueued when it commits, so an
    interrupted scan leaves nothing half-done.
    """
    check_number(rate, "--rate")
    check_number(batch, "--batch")
    check_number(limit, "--limit")
    model = registration.model
    fields = moderated_fields(registration, fields)
    report = ScanReport(model=model._meta.label, fields=fields, dry_run=dry_run,
                        apply_block=apply_block, resubmit=resubmit)
    started = clock()
    queryset = model._default_manager.order_by("pk")
    jobs_since = None
    if since is not None:
        report.date_field = date_field_of(model, date_field)
        if report.date_field:
            queryset = queryset.filter(**{f"{report.date_field}__gte": since})
        else:
            jobs_since = since
    elif date_field:
        date_field_of(model, date_field)  # still report a bad name
    with_file = Q()
    for name in fields:
        with_file |= ~Q(**{name: ""}) & Q(**{f"{name}__isnull": False})
    queryset = queryset.filter(with_file)
    attnames = [model._meta.get_field(name).attname for name in fields]
    queryset = queryset.only(model._meta.pk.attname, *attnames)
    last = pk_value(model, start_after) if start_after not in (None, "") else None
    if last is not None:
        queryset = queryset.filter(pk__gt=last)
        report.last_pk = last
    report.total = queryset.count()
    content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
    limiter = RateLimiter(rate, clock=clock, sleep=sleep)
    options = {} if apply_block else {"apply_block": False}

    while True:
        page_qs = queryset if last is None else queryset.filter(pk__gt=last)
        page = list(page_qs[:batch])
        if not page:
            report.finished = True
            break
        current = _current_jobs(content_type, page, fields)
        for instance in page:
            for name in fields:
                file_name = stored_name(getattr(instance, name))
                if not file_name:
                    report.empty += 1
                    continue
                job = current.get((str(instance.pk), name))
                if _covered(job, file_name, resubmit, jobs_since):
                    report.existing += 1
                    continue
                if limit is not None and report.created >= limit:
                    report.seconds = clock() - started
                    return report  # last_pk stays at the last object fully handled
                if not dry_run:
                    limiter.wait()
                    report.job_ids.append(
                        _create(instance, registration, name, options, first=job is None))
                report.created += 1
            report.objects += 1
            report.last_pk = last = instance.pk
        report.seconds = clock() - started
        if progress is not None:
            progress(report)
    report.seconds = clock() - started
    return report


def _current_jobs(content_type, page, fields) -> dict[tuple[str, str], tuple[str, datetime]]:
    ids = [str(instance.pk) for instance in page]
    rows = (Job.objects.filter(content_type=content_type, object_id__in=ids,
                               field_name__in=fields, is_current=True)
            .order_by("created_at", "pk")
            .values_list("object_id", "field_name", "file_name", "created_at"))
    return {(oid, name): (file_name, created) for oid, name, file_name, created in rows}


def _covered(current, file_name: str, resubmit: bool, jobs_since) -> bool:
    """Whether the current job (file name, created at) makes a new one unnecessary."""
    if current is None or current[0] != file_name:
        return False  # no job, or the file changed without a save that the handlers saw
    if not resubmit:
        return True
    return jobs_since is not None and current[1] >= jobs_since


def _create(instance, registration: Registration, name: str, options: dict,
            first: bool) -> int:
    """One job, enqueued on commit. ``first``: the field has no current job, so there is
    nothing to supersede (saves create_job two queries)."""
    with transaction.atomic():
        job = pipeline.create_job(instance, registration, name, created=first)
        if options:
            job.options = {**(job.options or {}), **options}
            job.save(update_fields=["options", "updated_at"])
        transaction.on_commit(partial(pipeline.enqueue, job.pk))
    return job.pk


__all__ = ["DATE_FIELD_NAMES", "BadInput", "ScanReport", "date_field_of", "scan"]
