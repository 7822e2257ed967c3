"""The sweeper schedule, created or updated after ``migrate``."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from .conf import moderation_settings

SWEEPER_NAME = "moderation sweeper"
# django-q2 looks at its schedules every 30 s but repeats them by whole minutes: a second
# schedule half a minute after the first makes a one-minute sweeper sweep every 30 s, so
# a dead worker's job is handed on about LEASE_SECONDS + 15 s after its last heartbeat.
HALF_PAST_NAME = "moderation sweeper (half past)"


def ensure_sweeper_schedule(**kwargs) -> None:
    from django_q.models import Schedule

    wanted = []
    if moderation_settings.SWEEPER_SCHEDULE:
        wanted.append(SWEEPER_NAME)
        if moderation_settings.SWEEPER_MINUTES == 1:
            wanted.append(HALF_PAST_NAME)
    Schedule.objects.filter(name__in=[SWEEPER_NAME, HALF_PAST_NAME]).exclude(
        name__in=wanted).delete()
    defaults = {
        "func": "moderation.tasks.sweep",
        "schedule_type": Schedule.MINUTES,
        "minutes": moderation_settings.SWEEPER_MINUTES,
        "repeats": -1,
    }
    if moderation_settings.QUEUE:
        defaults["cluster"] = moderation_settings.QUEUE
    for name in wanted:
        delay = 30 if name == HALF_PAST_NAME else 0
        Schedule.objects.update_or_create(
            name=name, defaults=defaults,
            create_defaults={**defaults, "next_run": timezone.now() + timedelta(seconds=delay)})
