"""What the operator commands share: reading their arguments, pacing, a progress line."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, OutputWrapper
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ..conf import moderation_settings
from ..models import Job
from ..registry import Registration, registry


class BadInput(ValueError):
    """An operator's argument that cannot be used; the commands exit with status 2."""


# --- arguments ----------------------------------------------------------------------------

_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """An aware datetime from ``YYYY-MM-DD`` (midnight, current time zone), an ISO 8601
    date-time (naive: current time zone), or an age such as ``7d``, ``12h``, ``30m``."""
    value = (text or "").strip()
    match = _AGE.match(value.lower())
    if match:
        delta = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
        return (now or timezone.now()) - delta
    try:
        when = parse_datetime(value)
        if when is None:
            day = parse_date(value)
            when = datetime(day.year, day.month, day.day) if day else None
    except ValueError:  # well-formed but impossible, e.g. 2024-02-30
        when = None
    if when is None:
        raise BadInput(f"{text!r} is not a date: use YYYY-MM-DD, an ISO 8601 date-time "
                       "or an age such as 7d, 12h or 30m")
    if timezone.is_naive(when):
        when = timezone.make_aware(when)
    return when


def check_number(value: float | None, name: str, *, minimum: float = 0,
                 allow_minimum: bool = False) -> None:
    """``value`` must be above ``minimum`` (or equal with ``allow_minimum``)."""
    if value is None:
        return
    if value < minimum or (value == minimum and not allow_minimum):
        bound = f">= {minimum:g}" if allow_minimum else f"> {minimum:g}"
        raise BadInput(f"{name} must be {bound}, not {value:g}")


def registered_model(label: str) -> tuple[type[models.Model], Registration]:
    """The model named ``app_label.ModelName`` and its registration."""
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        raise BadInput(f"unknown model {label!r}: use app_label.ModelName, e.g. "
                       f"{_example_label()}") from None
    registration = registry.get(model)
    if registration is None:
        raise BadInput(f"{model._meta.label} is not registered for moderation; registered: "
                       f"{', '.join(registered_labels()) or 'none'}")
    return model, registration


def registered_labels() -> list[str]:
    return sorted(reg.model._meta.label for reg in registry)


def _example_label() -> str:
    labels = registered_labels()
    return labels[0] if labels else "blog.Post"


def moderated_fields(registration: Registration, names: Iterable[str] | None) -> list[str]:
    """The registered fields named (all of them when none are)."""
    names = list(names or [])
    if not names:
        return list(registration.fields)
    label = registration.model._meta.label
    for name in names:
        if name in registration.fields:
            continue
        try:
            registration.model._meta.get_field(name)
        except Exception:
            raise BadInput(f"{label} has no field {name!r}; moderated fields: "
                           f"{', '.join(registration.fields)}") from None
        raise BadInput(f"{label}.{name} is not moderated; moderated fields: "
                       f"{', '.join(registration.fields)}")
    return names


def check_provider(alias: str | None) -> None:
    """A provider alias must be configured, or at least be the provider of some job (an
    alias since removed from the settings still has jobs to act on)."""
    if (alias and alias not in moderation_settings.providers
            and not Job.objects.filter(provider=alias).exists()):
        raise BadInput(f"unknown provider {alias!r}; configured: "
                       f"{', '.join(sorted(moderation_settings.providers))}")


def existing_job_ids(ids: Iterable[int]) -> list[int]:
    """``ids`` unchanged, once every one is known to be a job."""
    ids = list(dict.fromkeys(ids))
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        found.update(Job.objects.filter(pk__in=ids[start:start + 500])
                     .values_list("pk", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise BadInput(f"no job with id {', '.join(map(str, missing[:20]))}")
    return ids


def pk_value(model: type[models.Model], text: str):
    """A primary key value of ``model`` from the command line."""
    try:
        return model._meta.pk.to_python(text)
    except ValidationError:
        raise BadInput(f"{text!r} is not a primary key of {model._meta.label}") from None


def chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- pacing -------------------------------------------------------------------------------


class RateLimiter:
    """At most ``rate`` calls of :meth:`wait` per second, at an even cadence: call ``n``
    returns no earlier than ``(n - 1) / rate`` seconds after the first. ``None``: no limit.

    The clock and sleep are injectable, so a test can check the cadence without waiting.
    """

    def __init__(self, rate: float | None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / rate if rate else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_at: float | None = None

    def wait(self) -> float:
        """Sleep until the next call may go; returns how long it slept."""
        if not self.interval:
            return 0.0
        now = self.clock()
        start = now if self.next_at is None else max(self.next_at, now)
        if start > now:
            self.sleep(start - now)
        self.next_at = start + self.interval
        return start - now


# --- progress -----------------------------------------------------------------------------


class Progress:
    """One line on a terminal, rewritten in place (``\\r``) at most ten times a second.

    Silent unless the stream is a TTY, so logs and pipes get only the commands' summaries.
    Dependency-free on purpose (no tqdm needed).
    """

    def __init__(self, stream=None, label: str = "", total: int | None = None,
                 enabled: bool | None = None, clock: Callable[[], float] = time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.label, self.total, self.clock = label, total, clock
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self._last = 0.0
        self._width = 0
        self._started = clock()

    def update(self, done: int, note: str = "", *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        if self.total:
            share = min(done / self.total, 1.0)
            bar = "#" * int(share * 20)
            count = f"[{bar:<20}] {done}/{self.total} {share:4.0%}"
        else:
            count = f"{done}"
        line = f"{self.label}: {count} {note}".rstrip()
        elapsed = now - self._started
        if self.total and done and elapsed > 1 and done < self.total:
            line += f"  eta {_duration((self.total - done) * elapsed / done)}"
        self._write("\r" + line.ljust(self._width))
        self._width = len(line)

    def close(self) -> None:
        if self.enabled and self._width:
            self._write("\n")
            self._width = 0

    def _write(self, text: str) -> None:
        if isinstance(self.stream, OutputWrapper):
            self.stream.write(text, style_func=str, ending="")  # plain, not error red
        else:
            self.stream.write(text)
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# --- commands -----------------------------------------------------------------------------


@contextmanager
def exit_2_on_bad_input() -> Iterator[None]:
    """Turn :class:`BadInput` into a one-line ``CommandError`` with exit status 2."""
    try:
        yield
    except BadInput as exc:
        raise CommandError(str(exc), returncode=2) from exc


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def selected_jobs(job_ids: Iterable[int] | None, provider: str | None):
    """The jobs an operator named: all of them, narrowed to ``job_ids`` (each must exist)
    and to ``provider`` (which must be known)."""
    check_provider(provider)
    jobs = Job.objects.all()
    if job_ids:
        jobs = jobs.filter(pk__in=existing_job_ids(job_ids))
    if provider:
        jobs = jobs.filter(provider=provider)
    return jobs
