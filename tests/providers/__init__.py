"""Providers for the tests: the scripted one (shipped in moderation.testing) and its kin.

Only for the edges of the pipeline (error mapping, retries, polling); the real local
engine is exercised by the end-to-end tests.
"""

from __future__ import annotations

from moderation.providers.base import Provider
from moderation.testing import ScriptedProvider
from moderation.testing import scripted_result as result

__all__ = ["AliyunStub", "ScriptedProvider", "SlottedProvider", "WorkerKillingProvider",
           "result"]


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
