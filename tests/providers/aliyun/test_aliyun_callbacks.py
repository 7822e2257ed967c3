"""Alibaba callbacks: the checksum (SHA-256 / SM3), the receiving view, and the emulator
pushing a finished video result to a live server (aliyun-protocol.md §2.5)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import Client, override_settings
from django.urls import reverse

from moderation import pipeline
from moderation.emulator.config import EmulatorConfig
from moderation.models import Frame, Job, ReviewEvent, Status
from moderation.providers import get_provider
from moderation.providers.aliyun.checksum import callback_checksum, sm3_hex, verify_checksum
from tests.conftest import emulator_fixture
from tests.testapp.models import Photo

ALIAS, UID = "aliyun_guardrails", "1234567890"
MEDIA = Path(__file__).resolve().parents[2] / "media"
KEY_ID, SECRET = "LTAI5tCbKeyId000000001", "cb-secret-0000000000000000000"


# --- checksum ----------------------------------------------------------------------------


def test_sm3_standard_vectors():
    assert sm3_hex(b"abc") == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
    assert sm3_hex(b"abcd" * 16) == (
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732")


@pytest.mark.parametrize("crypt_type", ["SHA256", "SM3"])
def test_checksum_round_trip(crypt_type):
    content = json.dumps({"TaskId": "t1", "Text": "héllo"}, ensure_ascii=False)
    checksum = callback_checksum(UID, "seed", content, crypt_type)
    assert len(checksum) == 64
    assert verify_checksum(UID, "seed", content, checksum, crypt_type)
    assert verify_checksum(UID, "seed", content, checksum.upper(), crypt_type)
    assert not verify_checksum(UID, "other", content, checksum, crypt_type)
    assert not verify_checksum(UID, "seed", content + " ", checksum, crypt_type)
    assert not verify_checksum(UID, "seed", content, checksum, "MD5")


def test_sha256_is_the_plain_digest_of_the_concatenation():
    import hashlib

    assert callback_checksum("u", "s", "c") == hashlib.sha256(b"usc").hexdigest()


# --- the view ----------------------------------------------------------------------------


def provider_settings(**extra):
    options = {"ACCESS_KEY_ID": KEY_ID, "ACCESS_KEY_SECRET": SECRET, "UID": UID}
    return {"PROVIDERS": {ALIAS: {
        "BACKEND": "moderation.providers.aliyun.guardrails.GuardrailsProvider",
        "OPTIONS": options}}, **extra}


@pytest.fixture
def aliyun():
    with override_settings(MODERATION=provider_settings()):
        get_provider.cache_clear()
        yield
    get_provider.cache_clear()


def submitted_job(**fields) -> Job:
    return Job.objects.create(provider=ALIAS, media_kind="video", file_name="v.mp4",
                              status=Status.SUBMITTED, provider_task_id="vi_f_task1", **fields)


def content_for(job: Job, task_id: str = "vi_f_task1") -> str:
    def frame(offset, level, label, confidence=None):
        hit = {"Label": label} | ({"Confidence": confidence} if confidence else {})
        return {"Offset": offset, "RiskLevel": level,
                "Results": [{"Result": [hit], "Service": "videoDetection_global"}]}

    data = {
        "TaskId": task_id, "DataId": job.data_id, "RiskLevel": "high",
        "FrameResult": {"FrameNum": 2,
                        "FrameSummarys": [{"Label": "pt_qrCode", "LabelSum": 1}],
                        "Frames": [frame(1, "none", "nonLabel"),
                                   frame(2, "high", "pt_qrCode", 99.0)]},
        "AudioResult": {"AudioSummarys": [], "SliceDetails": [
            {"StartTime": 0, "EndTime": 3, "Text": "hello", "Labels": "", "RiskLevel": "none"}]},
    }
    return json.dumps(data, separators=(",", ":"))


def post(content: str, checksum: str, alias: str = ALIAS):
    client = Client(enforce_csrf_checks=True)  # csrf_exempt: no token needed
    url = reverse("moderation:callback", args=[alias])
    return client.post(url, {"checksum": checksum, "content": content})


def signed(job: Job, content: str, crypt_type: str = "SHA256") -> str:
    return callback_checksum(UID, job.seed, content, crypt_type)


def snapshot(job: Job):
    job.refresh_from_db()
    return (job.status, sorted(Frame.objects.filter(job=job).values_list("pk", flat=True)),
            ReviewEvent.objects.filter(job=job).count(), job.raw_result)


@pytest.mark.django_db
def test_forged_checksum_is_refused_and_changes_nothing(aliyun, caplog):
    job = submitted_job()
    content = content_for(job)
    before = snapshot(job)
    forged = callback_checksum(UID, "guessed-seed", content)
    with caplog.at_level("WARNING", logger="moderation.callbacks"):
        answer = post(content, forged)
    assert answer.status_code == 403
    assert snapshot(job) == before and not Frame.objects.exists()
    assert "checksum mismatch" in caplog.text


@pytest.mark.django_db
@pytest.mark.parametrize("form", [
    {}, {"checksum": "ab"}, {"checksum": "ab", "content": "not json"},
    {"checksum": "ab", "content": "[1, 2]"}, {"checksum": "ab", "content": '{"x": 1}'},
])
def test_malformed_body_is_400(aliyun, form):
    job = submitted_job()
    before = snapshot(job)
    answer = Client().post(reverse("moderation:callback", args=[ALIAS]), form)
    assert answer.status_code == 400
    assert snapshot(job) == before


@pytest.mark.django_db
def test_get_unknown_job_and_unknown_provider(aliyun):
    url = reverse("moderation:callback", args=[ALIAS])
    assert Client().get(url).status_code == 405
    job = submitted_job()
    other = json.dumps({"TaskId": "vi_f_nobody", "DataId": "nobody"})
    assert post(other, signed(job, other)).status_code == 404
    content = content_for(job)
    assert post(content, signed(job, content), alias="nope").status_code == 404


@pytest.mark.django_db
def test_valid_callback_ingests_and_a_repeat_changes_nothing(aliyun):
    job = submitted_job()
    content = content_for(job)
    answer = post(content, signed(job, content))
    assert answer.status_code == 200
    status, frame_ids, events, raw = snapshot(job)
    assert status == Status.DONE and len(frame_ids) == 2
    assert raw == json.loads(content) and job.lease_until is None
    assert "pt_qrCode" in job.labels and job.risk_level == "high"
    assert job.slices.count() == 1
    assert post(content, signed(job, content)).status_code == 200
    assert snapshot(job) == (status, frame_ids, events, raw)
    assert ReviewEvent.objects.filter(job=job, action="completed").count() == 1


@pytest.mark.django_db
def test_a_verified_callback_that_analysed_nothing_fails_the_job_once(aliyun):
    """No frame and no audio is no verdict: the job fails visibly (never passes), and the
    provider gets its 200 (a resent callback would carry the same nothing)."""
    job = submitted_job()
    content = json.dumps({"TaskId": "vi_f_task1", "DataId": job.data_id, "RiskLevel": "none",
                          "FrameResult": {"FrameNum": 0, "Frames": []}})
    assert post(content, signed(job, content)).status_code == 200
    job.refresh_from_db()
    assert (job.status, job.error_code) == (Status.FAILED, "nothing_analysed")
    assert job.suggestion != "pass" and job.lease_until is None
    assert post(content, signed(job, content)).status_code == 200  # a resend: no change
    assert ReviewEvent.objects.filter(job=job, action="failed").count() == 1


@pytest.mark.django_db
def test_replay_of_an_old_callback_for_a_finished_job_changes_nothing(aliyun):
    job = submitted_job()
    old = content_for(job)  # a first result, stored
    assert post(old, signed(job, old)).status_code == 200
    before = snapshot(job)
    replay = old.replace('"RiskLevel":"high"', '"RiskLevel":"none"')
    assert post(replay, signed(job, replay)).status_code == 200
    assert post(old, signed(job, old)).status_code == 200
    assert snapshot(job) == before


@pytest.mark.django_db
def test_callback_for_a_cancelled_job_changes_nothing(aliyun):
    job = submitted_job()
    pipeline._cancel(Job.objects.filter(pk=job.pk), "gone")
    before = snapshot(job)
    content = content_for(job)
    assert post(content, signed(job, content)).status_code == 200
    assert snapshot(job) == before and before[0] == Status.CANCELLED


@pytest.mark.django_db
def test_found_by_data_id_before_the_task_id_is_saved_with_sm3(aliyun):
    job = submitted_job(options={"crypt_type": "SM3"})
    Job.objects.filter(pk=job.pk).update(provider_task_id=None)
    content = content_for(job, task_id="vi_f_race")
    assert post(content, signed(job, content, "SHA256")).status_code == 403
    assert post(content, signed(job, content, "SM3")).status_code == 200
    job.refresh_from_db()
    assert job.status == Status.DONE


@pytest.mark.django_db
def test_callback_while_a_worker_holds_the_job_asks_for_a_retry(aliyun):
    from datetime import timedelta

    from django.utils import timezone

    job = submitted_job()
    Job.objects.filter(pk=job.pk).update(lease_until=timezone.now() + timedelta(minutes=5))
    content = content_for(job)
    assert post(content, signed(job, content)).status_code == 503
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED


@pytest.mark.django_db
def test_without_uid_nothing_is_accepted():
    conf = provider_settings()
    del conf["PROVIDERS"][ALIAS]["OPTIONS"]["UID"]
    with override_settings(MODERATION=conf):
        get_provider.cache_clear()
        job = submitted_job()
        content = content_for(job)
        assert post(content, signed(job, content)).status_code == 403
    get_provider.cache_clear()


# --- end to end: the emulator pushes to a live server -------------------------------------


emulator = emulator_fixture(access_key_id=KEY_ID, access_key_secret=SECRET, uid=UID, port=0,
                            callback_retries=(0.2, 0.5, 1.0))


@pytest.mark.django_db(transaction=True)
def test_emulator_callback_finishes_the_job_without_polling(live_server, emulator, register):
    media = MEDIA / "clean.mp4"
    conf = provider_settings(
        PUBLIC_BASE_URL=live_server.url, CALLBACK_BASE_URL=live_server.url,
        POLL_INTERVAL=3600, POLL_INTERVAL_MAX=3600, ALLOW_PRIVATE_ADDRESSES=True)
    conf["PROVIDERS"][ALIAS]["OPTIONS"]["ENDPOINT"] = emulator.url
    with override_settings(MODERATION=conf):
        get_provider.cache_clear()
        register(Photo, provider=ALIAS, kinds={"image": "video"})
        photo = Photo.objects.create(image=ContentFile(media.read_bytes(), name="v.mp4"))
        job = Job.objects.get(object_id=str(photo.pk))
        assert pipeline.process(job.pk) == "submitted"
        job.refresh_from_db()
        assert job.next_attempt_at is not None and job.provider_task_id
        deadline = time.monotonic() + 60
        while job.status != Status.DONE and time.monotonic() < deadline:
            time.sleep(0.3)
            job.refresh_from_db()
    get_provider.cache_clear()
    assert job.status == Status.DONE
    assert Frame.objects.filter(job=job).exists()
    assert job.raw_result["TaskId"] == job.provider_task_id
    assert job.raw_result["DataId"] == job.data_id
    assert ReviewEvent.objects.filter(job=job, action="completed").count() == 1


def test_emulator_retries_a_callback_until_200():
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from urllib.parse import parse_qs

    from moderation.emulator.guardrails_video import VideoService
    from moderation.emulator.tasks import Task

    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(parse_qs(self.rfile.read(length).decode()))
            self.send_response(503 if len(received) < 3 else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        video = VideoService(EmulatorConfig(uid=UID, callback_retries=(0.05, 0.05, 0.05)))
        task = Task("vi_f_retry", "d1", "videoDetection_global", data={"TaskId": "vi_f_retry"},
                    callback=f"http://127.0.0.1:{server.server_port}/cb", seed="s",
                    crypt_type="SM3")
        assert video.deliver(task) is True
        video.close()
    finally:
        server.shutdown()
    assert len(received) == 3
    content = received[0]["content"][0]
    assert verify_checksum(UID, "s", content, received[0]["checksum"][0], "SM3")
