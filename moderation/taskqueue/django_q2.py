"""The django-q2 adapter: the only module of the app that imports django_q.

Tasks go to the app's cluster (``MODERATION["QUEUE"]``, else django-q2's default) in the
group ``moderation``; schedules are django-q2 ``Schedule`` rows (its admin shows them).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from ..conf import moderation_settings


def _cluster() -> dict[str, str]:
    return {"cluster": moderation_settings.QUEUE} if moderation_settings.QUEUE else {}


def enqueue(func_path: str, *args: object, name: str) -> None:
    options = {"task_name": name[:100], "group": "moderation", **_cluster()}
    async_task(func_path, *args, q_options=options)


def ensure_schedule(name: str, func_path: str, *, minutes: int,
                    first_run_in: float = 0) -> None:
    defaults = {"func": func_path, "schedule_type": Schedule.MINUTES, "minutes": minutes,
                "repeats": -1, **_cluster()}
    Schedule.objects.update_or_create(
        name=name, defaults=defaults,
        create_defaults={**defaults,
                         "next_run": timezone.now() + timedelta(seconds=first_run_in)})


def remove_schedules(names: list[str]) -> None:
    Schedule.objects.filter(name__in=names).delete()
