"""Content Moderation 2.0 video moderation (submit, poll, cancel) against the emulator: with
the official SDK (alibabacloud-green20220302, its own response models) and with our client
(``GuardrailsProvider.submit/fetch/cancel``). Expectations come from the timeline of
tests/media/speech_ad.mp4 (tests/media/make_videos.py): a QR code on screen 5-9 s, a
profane utterance at 14 s. No database: the emulator and the providers only need settings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from moderation.emulator.config import EmulatorConfig
from moderation.emulator.server import RunningEmulator, start
from moderation.providers import Expired, Media, ModerationRequest, Result
from moderation.providers.aliyun.guardrails import GuardrailsProvider
from moderation.providers.aliyun.guardrails_video import submit_parameters
from tests.conftest import emulator_fixture, poll_until_finished

AK_ID, AK_SECRET = "LTAI5tVideoTest000001", "VideoTestSecret00000000000001"
SERVICE = "videoDetection_global"
QR, PROFANITY = "pt_qrCode", "profanity"
POLL_LIMIT = 60.0  # seconds; one analysis of speech_ad.mp4 takes a few
# Provider calls take their turn under the account rate limit, kept in the database.
# slow: 8 s for the module in a full run
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_proxy"), pytest.mark.django_db]



def _start(tmp_path: Path, **config: Any) -> RunningEmulator:
    return start(EmulatorConfig(access_key_id=AK_ID, access_key_secret=AK_SECRET,
                                oss_root=tmp_path, **config))


emulator = emulator_fixture(scope="module", access_key_id=AK_ID, access_key_secret=AK_SECRET)


def provider(emulator: RunningEmulator) -> GuardrailsProvider:
    return GuardrailsProvider("aliyun_video", {
        "ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET, "ENDPOINT": emulator.url,
    })


def video(url: str) -> Media:
    return Media(name=url.rsplit("/", 1)[-1], kind="video", url=url)


def poll(fetch: Callable[[], Result]) -> tuple[Result, int]:
    return poll_until_finished(fetch, POLL_LIMIT)


# --- (a) the official SDK --------------------------------------------------------------------


def test_sdk_video_moderation_and_result(emulator, media_server):
    from alibabacloud_green20220302 import models
    from alibabacloud_green20220302.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    client = Client(Config(access_key_id=AK_ID, access_key_secret=AK_SECRET,
                           endpoint=emulator.endpoint, protocol="http"))
    submitted = client.video_moderation(models.VideoModerationRequest(
        service=SERVICE,
        service_parameters=json.dumps({"url": f"{media_server}/speech_ad.mp4", "dataId": "a1"}),
    ))
    assert submitted.body.code == 200 and submitted.body.data.data_id == "a1"
    task_id = submitted.body.data.task_id
    request = models.VideoModerationResultRequest(
        service=SERVICE, service_parameters=json.dumps({"taskId": task_id}))
    deadline = time.monotonic() + POLL_LIMIT
    while (response := client.video_moderation_result(request)).body.code == 280:
        assert time.monotonic() < deadline, "the video task did not finish"
        time.sleep(0.25)
    body = response.body
    assert body.code == 200 and body.data.task_id == task_id and body.data.data_id == "a1"
    frames = body.data.frame_result.frames
    qr = [f.offset for f in frames if QR in {hit.label for r in f.results for hit in r.result}]
    assert qr and all(5 <= offset <= 9 for offset in qr)
    assert all(f.temp_url for f in frames if f.offset in qr)
    assert {s.label: s.label_sum for s in body.data.frame_result.frame_summarys}[QR] == len(qr)
    slices = body.data.audio_result.slice_details
    profane = [s for s in slices if PROFANITY in s.labels.split(",")]
    assert any(abs(s.start_time - 14) <= 1 for s in profane)
    assert body.data.risk_level in ("medium", "high")


# --- (b) our client ------------------------------------------------------------------------


def test_client_submit_fetch_and_temp_urls(emulator, media_server):
    client = provider(emulator)
    submitted = client.submit(video(f"{media_server}/speech_ad.mp4"),
                              ModerationRequest(data_id="b1"))
    assert submitted.status == "in_progress" and submitted.task_id
    result, pending = poll(lambda: client.fetch(submitted.task_id, ModerationRequest()))
    # Asserted: the first fetch right after submit sees 280 (an analysis takes seconds).
    assert pending >= 1
    assert result.status == "done" and result.task_id == submitted.task_id
    qr = [f for f in result.frames if QR in {lbl.label for lbl in f.labels}]
    assert qr and all(5 <= f.offset <= 9 and f.risk_level != "none" for f in qr)
    assert result.frame_summary[QR] == len(qr)
    assert all(lbl.service == "guardrails" and lbl.scene == SERVICE for lbl in qr[0].labels)
    profane = [s for s in result.slices if PROFANITY in {lbl.label for lbl in s.labels}]
    assert any(abs(s.start - 14) <= 1 for s in profane)
    assert all(s.risk_words and s.risk_level != "none" for s in profane)
    assert result.risk_level != "none"
    assert {QR, PROFANITY} <= {lbl.label for lbl in result.labels}
    # Evidence stays a URL (the pipeline copies it); the emulator serves it.
    assert isinstance(qr[0].image, str) and isinstance(profane[0].audio, str)
    image = requests.get(qr[0].image, timeout=5)
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    audio = requests.get(profane[0].audio, timeout=5)
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"


# --- (c) retention, (d) unknown task, (e) cancel -------------------------------------------


def test_result_expires_after_retention(tmp_path, media_server):
    with _start(tmp_path, result_retention=timedelta(seconds=1)) as running:
        client = provider(running)
        task_id = client.submit(video(f"{media_server}/clean.mp4"), ModerationRequest()).task_id
        result, _ = poll(lambda: client.fetch(task_id, ModerationRequest()))
        assert result.status == "done" and result.risk_level == "none"
        time.sleep(1.5)
        with pytest.raises(Expired) as caught:
            client.fetch(task_id, ModerationRequest())
    assert caught.value.code == "expired" and "594" in caught.value.message


def test_unknown_task_is_expired(emulator):
    with pytest.raises(Expired) as caught:
        provider(emulator).fetch("vi_f_doesnotexist", ModerationRequest())
    assert caught.value.code == "expired" and "594" in caught.value.message


def test_cancel(emulator, media_server):
    client = provider(emulator)
    task_id = client.submit(video(f"{media_server}/clean.mp4"), ModerationRequest()).task_id
    assert client.cancel(task_id) is None
    with pytest.raises(Expired):
        client.fetch(task_id, ModerationRequest())
    with pytest.raises(Expired):
        client.cancel(task_id)


def test_callback_parameters_are_passed_through():
    assert json.loads(submit_parameters("https://x/v.mp4", "d", "https://cb/", "s3", "SHA256")) == {
        "url": "https://x/v.mp4", "dataId": "d", "callback": "https://cb/", "seed": "s3",
        "cryptType": "SHA256",
    }
    assert json.loads(submit_parameters("https://x/v.mp4")) == {"url": "https://x/v.mp4"}
