"""Which objects may be shown: every registered field empty, passed or approved.

Matches jobs on the *current* stored name of each field, so a replaced file hides the
object again until its new job passes.
"""

from __future__ import annotations

from typing import TypeVar

from django.contrib.contenttypes.models import ContentType
from django.db import connections, models
from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.expressions import Combinable
from django.db.models.functions import Cast, Replace

from .models import SHOWABLE, Job
from .registry import registry

_M = TypeVar("_M", bound=models.Model)


def _object_id_expression(model: type[models.Model],
                          using: str) -> tuple[Cast, Replace | None]:
    """The object's pk as the text stored in Job.object_id (``str(pk)``)."""
    pk = model._meta.pk
    as_text = Cast(OuterRef("pk"), models.CharField())
    if isinstance(pk, models.UUIDField) and not connections[using].features.has_native_uuid_field:
        # Stored as 32 hex digits there; str(uuid) has dashes.
        return as_text, Replace("object_id", Value("-"), Value(""))
    return as_text, None


def visible(queryset: models.QuerySet[_M]) -> models.QuerySet[_M]:
    model = queryset.model
    registration = registry.get(model)
    if registration is None:
        return queryset
    ct = ContentType.objects.db_manager(queryset.db).get_for_model(model, for_concrete_model=False)
    pk_text, job_id_expr = _object_id_expression(model, queryset.db)
    condition: Q | Combinable = Q()
    for name in registration.fields:
        jobs = Job.objects.filter(
            content_type=ct, field_name=name, file_name=OuterRef(name), is_current=True,
            decision__in=SHOWABLE,
        )
        if job_id_expr is not None:
            jobs = jobs.alias(_oid=job_id_expr).filter(_oid=pk_text)
        else:
            jobs = jobs.filter(object_id=pk_text)
        condition &= Q(**{name: ""}) | Q(**{f"{name}__isnull": True}) | Exists(jobs)
    return queryset.filter(condition)
