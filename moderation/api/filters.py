"""Query-string filters of the job list, as plain functions (no extra dependency).

Every filter is documented in the OpenAPI schema (``JOB_FILTERS``) and validated: a bad value
answers 400, never a server error.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.exceptions import ValidationError

from ..models import Job, MediaKind, ReviewState, RiskLevel, Status, Suggestion
from .schema import OpenApiParameter, OpenApiTypes

CHOICES = {
    "status": Status, "suggestion": Suggestion, "risk_level": RiskLevel,
    "media_kind": MediaKind, "review_state": ReviewState,
}

JOB_FILTERS = [
    *(OpenApiParameter(name, OpenApiTypes.STR, enum=list(choices.values))
      for name, choices in CHOICES.items()),
    OpenApiParameter("label", OpenApiTypes.STR, description="jobs carrying this label"),
    OpenApiParameter("provider", OpenApiTypes.STR),
    OpenApiParameter("content_type", OpenApiTypes.STR, description='"app_label.model"'),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME,
                     description="ISO date or date-time (inclusive)"),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME,
                     description="ISO date or date-time (exclusive)"),
]


def parse_moment(value: str, name: str) -> datetime:
    """An aware datetime from an ISO date or date-time; ValidationError (400) otherwise."""
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = datetime.combine(day, time.min) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationError({name: f"not an ISO date or date-time: {value!r}"})
    try:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, timezone.get_default_timezone())
        # In UTC: PostgreSQL refuses odd offsets such as -18:08 that ISO 8601 allows.
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValidationError({name: f"out of range: {value!r}"}) from None


def filter_jobs(queryset: QuerySet[Job], params) -> QuerySet[Job]:
    for name, choices in CHOICES.items():
        value = params.get(name)
        if value:
            if value not in choices.values:
                raise ValidationError({name: f"one of {', '.join(choices.values)}"})
            queryset = queryset.filter(**{name: value})
    if params.get("provider"):
        queryset = queryset.filter(provider=params["provider"])
    if params.get("label"):
        queryset = queryset.carrying_label(params["label"])
    if params.get("content_type"):
        app_label, _, model = params["content_type"].lower().partition(".")
        if not model:
            raise ValidationError({"content_type": 'use "app_label.model"'})
        queryset = queryset.filter(content_type__app_label=app_label,
                                   content_type__model=model)
    if params.get("created_after"):
        queryset = queryset.filter(
            created_at__gte=parse_moment(params["created_after"], "created_after"))
    if params.get("created_before"):
        queryset = queryset.filter(
            created_at__lt=parse_moment(params["created_before"], "created_before"))
    return queryset
