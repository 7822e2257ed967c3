"""What a site needs to test its integration without a real engine or a queue.

- :class:`ScriptedProvider`: a provider that answers what the test tells it to;
- :func:`scripted_provider`: configures it as a provider alias for the length of a block;
- :func:`scripted_result`: a ready-made finished answer;
- :func:`run_pending_jobs`: runs the due jobs inline, as a worker would.

A worked example (tested): docs/public-api.md, "Testing your integration".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.test import override_settings

from .models import Job
from .pipeline import process
from .providers import Label, Result
from .providers.base import Media, ModerationRequest, Provider
from .providers.result import Frame


class ScriptedProvider(Provider):
    """Answers each ``submit`` and ``fetch`` with the next item of ``script`` (a Result,
    or an exception instance to raise), and records every call in ``calls``.

    The lists live on the class, so a test reaches them without finding the instance the
    pipeline built; :func:`scripted_provider` empties them."""

    # Not ``sync``: a script may answer an image "processing", to be polled (the worker
    # fails a job whose ``sync`` provider does that).
    capabilities = frozenset({"image", "video", "audio"})
    default_scenes = ("porn",)
    script: list[Result | Exception] = []
    #: (method, media name or task id, first 16 bytes or None, request)
    calls: list[tuple[str, str, bytes | None, ModerationRequest]] = []

    def submit(self, media: Media, request: ModerationRequest) -> Result:
        ScriptedProvider.calls.append(("submit", media.name, media.read()[:16], request))
        return self._next()

    def fetch(self, task_id: str, request: ModerationRequest) -> Result:
        ScriptedProvider.calls.append(("fetch", task_id, None, request))
        return self._next()

    def _next(self) -> Result:
        item = ScriptedProvider.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def scripted_result(risk: str = "none", label: str = "nonLabel", confidence: float = 99.0,
                    status: str = "done", task_id: str = "") -> Result:
    """A provider answer: one frame with one label at ``risk`` (``status="processing"``
    with a ``task_id``: a task still running at the provider, polled later)."""
    frame = Frame(offset=0.0, risk_level=risk,
                  labels=[Label(label, confidence, risk_level=risk, service="test")],
                  image=b"\xff\xd8\xff\xe0 fake jpeg bytes")
    return Result(status=status, risk_level=risk, labels=frame.labels,
                  frames=[frame] if status == "done" else [], task_id=task_id,
                  raw={"answer": risk})


@contextmanager
def scripted_provider(alias: str = "scripted", *, only: bool = False,
                      **moderation: Any) -> Iterator[type[ScriptedProvider]]:
    """Route the provider ``alias`` to :class:`ScriptedProvider` (emptied) for the block.

    ``only``: it becomes the only provider (else it joins the site's). Other keyword
    arguments override ``MODERATION`` keys, e.g. ``DEFAULT_PROVIDER="scripted"``."""
    ScriptedProvider.script = []
    ScriptedProvider.calls = []
    current = getattr(settings, "MODERATION", {})
    providers = {} if only else dict(current.get("PROVIDERS", {}))
    providers[alias] = {"BACKEND": "moderation.testing.ScriptedProvider"}
    with override_settings(MODERATION={**current, "PROVIDERS": providers, **moderation}):
        yield ScriptedProvider


def run_pending_jobs(max_steps: int = 1000) -> int:
    """Process due jobs inline (``pipeline.process``) until none is due; returns the
    number of steps. A job polled later (a provider task still running, a retry with
    backoff) is due again only when its time comes, so it may be left unfinished."""
    steps = 0
    while steps < max_steps:
        due = list(Job.objects.due().order_by("pk").values_list("pk", flat=True)[:100])
        if not due:
            break
        for job_id in due:
            process(job_id)
            steps += 1
    return steps


__all__ = ["ScriptedProvider", "run_pending_jobs", "scripted_provider", "scripted_result"]
