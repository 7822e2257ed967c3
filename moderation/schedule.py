"""The sweeper schedule, created or updated after ``migrate``."""

from __future__ import annotations

from . import taskqueue
from .conf import moderation_settings

SWEEPER_NAME = "moderation sweeper"
# django-q2 looks at its schedules every 30 s but repeats them by whole minutes: a second
# schedule half a minute after the first makes a one-minute sweeper sweep every 30 s, so
# a dead worker's job is handed on about LEASE_SECONDS + 15 s after its last heartbeat.
HALF_PAST_NAME = "moderation sweeper (half past)"


def ensure_sweeper_schedule(**kwargs) -> None:
    wanted = []
    if moderation_settings.SWEEPER_SCHEDULE:
        wanted.append(SWEEPER_NAME)
        if moderation_settings.SWEEPER_MINUTES == 1:
            wanted.append(HALF_PAST_NAME)
    taskqueue.remove_schedules([name for name in (SWEEPER_NAME, HALF_PAST_NAME)
                                if name not in wanted])
    for name in wanted:
        taskqueue.ensure_schedule(name, "moderation.tasks.sweep",
                                  minutes=moderation_settings.SWEEPER_MINUTES,
                                  first_run_in=30 if name == HALF_PAST_NAME else 0)
