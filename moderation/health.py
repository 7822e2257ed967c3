"""Is a provider refusing our credentials? Read from the job history, for the admin and
``manage.py check --database default`` (moderation.W003).

An authentication error (a wrong secret, a disabled key, a missing RAM permission, a
clock off by more than 15 minutes: ``AuthError``) fails every job of its provider until
someone fixes the settings, so it must be loud where people look, not only on each job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max
from django.utils import timezone

from .models import Job, ReviewEvent, Status

#: How far back a refusal still counts (older ones are history, not an outage).
WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class AuthFailure:
    """A provider whose most recent outcome is a refusal of our credentials."""

    provider: str
    jobs: int  # jobs failed that way within the window
    code: str
    message: str
    last_at: datetime


def auth_failures(now: datetime | None = None) -> list[AuthFailure]:
    """Providers with authentication failures in :data:`WINDOW` and no job completed after
    the last of them (a success means the settings were fixed)."""
    since = (now or timezone.now()) - WINDOW
    refused = (ReviewEvent.objects
               .filter(action=ReviewEvent.Action.FAILED, data__kind="auth", created_at__gte=since)
               .values("job__provider").annotate(jobs=Count("job", distinct=True),
                                                 last_at=Max("created_at")))
    failures = []
    for row in refused:
        provider, last_at = row["job__provider"], row["last_at"]
        if Job.objects.filter(provider=provider, status=Status.DONE,
                              completed_at__gt=last_at).exists():
            continue
        last = (ReviewEvent.objects.filter(action=ReviewEvent.Action.FAILED, data__kind="auth",
                                           job__provider=provider)
                .order_by("-created_at", "-id").first())
        if last is None:  # purged since the count above
            continue
        failures.append(AuthFailure(provider, row["jobs"], str(last.data.get("code", "")),
                                    last.reason, last_at))
    return sorted(failures, key=lambda failure: failure.provider)
