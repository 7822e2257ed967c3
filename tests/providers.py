"""A scripted provider for pipeline tests: answers what the test tells it to.

Only for the edges of the pipeline (error mapping, retries, polling); the real local
engine is exercised by the end-to-end tests.
"""

from __future__ import annotations

from moderation.providers import Label, Result
from moderation.providers.base import Provider
from moderation.providers.result import Frame


class ScriptedProvider(Provider):
    capabilities = frozenset({"image", "video", "audio", "sync"})
    default_scenes = ("porn",)
    script: list = []  # each item: a Result or an exception instance
    calls: list = []

    def submit(self, media, request):
        ScriptedProvider.calls.append(("submit", media.name, media.read()[:16], request))
        return self._next()

    def fetch(self, task_id, request):
        ScriptedProvider.calls.append(("fetch", task_id, None, request))
        return self._next()

    def _next(self):
        item = ScriptedProvider.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def result(risk="none", label="nonLabel", confidence=99.0, status="done", task_id=""):
    frame = Frame(offset=0.0, risk_level=risk,
                  labels=[Label(label, confidence, risk_level=risk, service="test")],
                  image=b"\xff\xd8\xff\xe0 fake jpeg bytes")
    return Result(status=status, risk_level=risk, suggestion="pass", labels=frame.labels,
                  frames=[frame] if status == "done" else [], task_id=task_id,
                  raw={"answer": risk})


class AliyunStub(Provider):
    """Stands in for an Alibaba backend in the credentials check test."""

    required_options = ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET")


class SlottedProvider(ScriptedProvider):
    """The scripted provider with an account limit of unfinished video tasks (OPTIONS
    ``VIDEO_TASK_LIMIT``), shared by every alias with the same ``ACCOUNT``."""

    @property
    def account(self):
        return f"slotted:{self.options.get('ACCOUNT', self.alias)}"

    @property
    def max_unfinished_tasks(self):
        return self.options.get("VIDEO_TASK_LIMIT")


class WorkerKillingProvider(Provider):
    """Kills the process that calls it (SIGKILL), like an engine the kernel's OOM killer
    stops mid-job. Only for a real qcluster worker: never call it in the test process.
    Each call first appends a line to OPTIONS ``TALLY`` (a file path), to count them."""

    capabilities = frozenset({"image", "sync"})
    default_scenes = ("porn",)

    def submit(self, media, request):
        import os
        import signal

        with open(self.options["TALLY"], "a") as tally:
            tally.write(f"{os.getpid()}\n")
        os.kill(os.getpid(), signal.SIGKILL)
