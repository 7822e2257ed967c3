"""The sweeper schedule, created or updated after ``migrate``."""

from __future__ import annotations

from .conf import moderation_settings

SWEEPER_NAME = "moderation sweeper"


def ensure_sweeper_schedule(**kwargs) -> None:
    from django_q.models import Schedule

    if not moderation_settings.SWEEPER_SCHEDULE:
        Schedule.objects.filter(name=SWEEPER_NAME).delete()
        return
    defaults = {
        "func": "moderation.tasks.sweep",
        "schedule_type": Schedule.MINUTES,
        "minutes": moderation_settings.SWEEPER_MINUTES,
        "repeats": -1,
    }
    if moderation_settings.QUEUE:
        defaults["cluster"] = moderation_settings.QUEUE
    Schedule.objects.update_or_create(name=SWEEPER_NAME, defaults=defaults)
