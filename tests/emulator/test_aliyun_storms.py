"""Throttling storms and outages, end to end: a real qcluster (two worker processes), the
real broker, the emulator on loopback with scripted faults and account limits, and the
signed media URLs of a live server. Every job must end done or visibly failed; none may be
lost or ingested twice.

The storm: the emulator is down when the uploads arrive (connection refused), then comes up
with a 20 requests/s quota and room for one running video task (past it, 2.0 answers Code
403), and injects 503s, a 500 on a poll, two answers slower than the client's read timeout
and a burst of throttling. The client limits itself to 15 requests/s and, on purpose, to no
video task limit of its own, so the emulator's refusals are what it meets.
"""

from __future__ import annotations

import socket

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

from demo_project.blog.models import Post
from moderation import pipeline
from moderation.emulator.app import Fault
from moderation.emulator.config import EmulatorConfig
from moderation.emulator.server import start
from moderation.models import Frame, Job, ReviewEvent, Status
from moderation.providers import get_provider
from tests.conftest import ROOT, png_bytes, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_proxy")]

KEY_ID, SECRET, UID = "LTAI5tStormKeyId000001", "StormSecret00000000000000001", "77"
IMAGES, TIMEOUT = 12, 240.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def storm_settings(live_server, port: int) -> dict:
    return {
        "DEFAULT_PROVIDER": "aliyun_guardrails",
        "PUBLIC_BASE_URL": live_server.url,
        "ALLOW_PRIVATE_ADDRESSES": True,  # evidence is copied from the emulator on loopback
        "POLL_INTERVAL": 0.5, "POLL_INTERVAL_MAX": 1,
        "RETRY_BACKOFF": 0.2, "RETRY_BACKOFF_MAX": 2, "MAX_ATTEMPTS": 12,
        "SWEEPER_SCHEDULE": False,
        "PROVIDERS": {"aliyun_guardrails": {
            "BACKEND": "moderation.providers.aliyun.guardrails.GuardrailsProvider",
            "OPTIONS": {"ACCESS_KEY_ID": KEY_ID, "ACCESS_KEY_SECRET": SECRET,
                        "ENDPOINT": f"http://127.0.0.1:{port}", "TIMEOUT": [1, 2],
                        "RATE_LIMIT": 15, "VIDEO_TASK_LIMIT": 0},
        }},
    }


def test_storm_and_outage_end_with_every_job_done_once(live_server, tmp_path, start_qcluster):
    port = free_port()
    conf = storm_settings(live_server, port)
    with override_settings(MODERATION=conf):
        get_provider.cache_clear()
        posts = [Post.objects.create(title=f"p{i}", image=ContentFile(
            png_bytes(color=(i * 20, 80, 160)), name=f"p{i}.png")) for i in range(IMAGES)]
        for name in ("clean.mp4", "speech_ad.mp4"):
            posts.append(Post.objects.create(title=name, video=ContentFile(
                (ROOT / "tests" / "media" / name).read_bytes(), name=name)))
        jobs = {job.pk for job in Job.objects.all()}
        assert len(jobs) == len(posts)

        start_qcluster(moderation=conf, workers=2)
        # The outage: nothing listens on the port yet, so the first submissions are refused.
        assert wait_for(lambda: ReviewEvent.objects.filter(
            action="retry", data__code="connection").exists(), 60)

        config = EmulatorConfig(access_key_id=KEY_ID, access_key_secret=SECRET, uid=UID,
                                oss_root=tmp_path, port=port, qps_limit=20,
                                max_running_tasks=1)
        with start(config) as emulator:
            scripted = [
                Fault("error", count=6, match="ImageModeration", status=503),
                Fault("error", count=1, match="VideoModerationResult", status=500,
                      code="InternalError"),
                Fault("delay", count=2, match="ImageModeration", seconds=3.0),
                Fault("throttle", count=4, match="ImageModeration"),
            ]
            for fault in scripted:
                emulator.faults.add(fault)

            def settled():
                pipeline.sweep()  # what the sweeper schedule does, every half second here
                return not Job.objects.filter(pk__in=jobs, status__in=(
                    Status.PENDING, Status.SUBMITTED, Status.IN_PROGRESS)).exists()

            finished = wait_for(settled, TIMEOUT)
            injected = dict(emulator.faults.injected)
            qps_refused = emulator.app.rate.refused

    states = list(Job.objects.values_list("pk", "status", "error_code", "attempts"))
    assert finished, states
    assert set(Job.objects.values_list("pk", flat=True)) == jobs  # none lost, none added
    assert all(status == Status.DONE for _, status, _, _ in states), states
    # Each job ingested once: one completion, one set of rows.
    for job in Job.objects.all():
        assert ReviewEvent.objects.filter(job=job, action="completed").count() == 1, job.pk
        frames = job.raw_result["Data"].get("FrameResult", {}).get("Frames")
        expected = len(frames) if frames is not None else 1
        assert Frame.objects.filter(job=job).count() == expected, job.pk
    # Every scripted fault was met, and the retries say why they happened.
    assert injected == {"error": 7, "delay": 2, "throttle": 4}, injected
    codes = set(ReviewEvent.objects.filter(action="retry")
                .values_list("data__code", flat=True))
    assert {"connection", "service_unavailable", "timeout", "qps_exceeded"} <= codes, codes
    # The client kept under the emulator's quota on its own (the planned throttles aside).
    assert qps_refused == 0

