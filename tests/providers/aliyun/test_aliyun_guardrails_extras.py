"""Content Moderation 2.0 extras: ``oss://`` sources, ``referer``, ``offline`` (nearline, 288).

The wire is checked against a loopback recorder; behaviour against the emulator with our
client and with the official SDK (alibabacloud_green20220302); the pipeline test runs a
nearline video job from an ``oss://`` field value to ``done`` through 288 answers.
Media: demo_project/sample_media/qrcode.jpg (a QR code -> ``pt_qrCode``) and
tests/media/clean.mp4 (12 s, nothing to find).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from moderation.emulator import guardrails_video as emulator_video
from moderation.emulator.server import RunningEmulator
from moderation.providers import Expired, Media, MediaError, ModerationRequest, Result
from moderation.providers.aliyun import errors as aliyun_errors
from moderation.providers.aliyun import signing
from moderation.providers.aliyun.guardrails import GuardrailsProvider, service_parameters
from moderation.providers.aliyun.guardrails_video import submit_parameters
from moderation.providers.errors import ProviderError
from tests.conftest import SAMPLES, emulator_fixture

MEDIA = Path(__file__).resolve().parents[2] / "media"
AK_ID, AK_SECRET = "LTAI5tExtrasTest000001", "ExtrasTestSecret0000000000001"
REFERER = "https://www.example.com/posts/1"
POLL_LIMIT = 60.0
# The client's rate limiter keeps its budget in the database.
# slow: 10 s for the module in a full run
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_proxy"), pytest.mark.django_db]


# --- a recorder for the wire, and a hot-link-protected media server ---------------------------


class Recorder:
    """Loopback 2.0 endpoint: keeps each form body, answers ``answer``."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        self.answer: dict[str, Any] = {"Code": 200, "Data": {"TaskId": "vi_f_1"}}

    def parameters(self) -> dict[str, Any]:
        return json.loads(self.forms[-1]["ServiceParameters"])


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    state = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.forms.append(signing.form_decode(body.decode()))
            raw = json.dumps(state.answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    with _serve(Handler) as url:
        yield state, url


@contextmanager
def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` on a loopback port from a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)


@pytest.fixture(scope="module")
def guarded() -> Iterator[tuple[str, list[str]]]:
    """Serves qrcode.jpg and clean.mp4 only to requests whose Referer is REFERER (hot-link
    protection, else 403); yields the base URL and the Referer of every request."""
    files = {"/qrcode.jpg": SAMPLES / "qrcode.jpg", "/clean.mp4": MEDIA / "clean.mp4"}
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Referer") or "")
            path = files.get(self.path)
            if path is None or self.headers.get("Referer") != REFERER:
                self.send_error(403 if path else 404)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    with _serve(Handler) as url:
        yield url, seen


@pytest.fixture(scope="module")
def oss_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("oss")
    (root / "photos").mkdir()
    (root / "videos").mkdir()
    shutil.copy(SAMPLES / "qrcode.jpg", root / "photos" / "qr code.jpg")
    shutil.copy(MEDIA / "clean.mp4", root / "videos" / "clean.mp4")
    return root


emulator = emulator_fixture(scope="module", oss="oss_root", access_key_id=AK_ID,
                            access_key_secret=AK_SECRET)


def provider(endpoint: str, **options: Any) -> GuardrailsProvider:
    return GuardrailsProvider("aliyun_guardrails", {
        "ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET, "ENDPOINT": endpoint, **options,
    })


def poll(fetch: Callable[[], Result]) -> tuple[Result, list[int]]:
    """Fetch until finished; the result and the ``Code`` of every unfinished answer."""
    deadline, waiting = time.monotonic() + POLL_LIMIT, []
    while time.monotonic() < deadline:
        result = fetch()
        if result.finished:
            return result, waiting
        assert result.status == "in_progress" and result.task_id
        waiting.append(result.raw["Code"])
        time.sleep(0.2)
    pytest.fail(f"the video task did not finish in {POLL_LIMIT} s")


# --- what we send ------------------------------------------------------------------------------


def test_image_oss_uri_is_sent_as_the_oss_trio_in_the_provider_region(recorder):
    state, url = recorder
    state.answer = {"Code": 200, "Data": {"Result": [{"Label": "nonLabel"}], "RiskLevel": "none"}}
    client = provider(url, REGION="cn-shanghai", REFERER=REFERER)
    client.submit(Media(name="a", kind="image", url="oss://my-bucket/photos/a b.jpg"),
                  ModerationRequest(data_id="d1"))
    assert state.parameters() == {
        "ossBucketName": "my-bucket", "ossObjectName": "photos/a b.jpg",
        "ossRegionId": "cn-shanghai", "dataId": "d1", "referer": REFERER,
    }


def test_video_oss_referer_and_offline_options(recorder):
    state, url = recorder
    client = provider(url, REFERER=REFERER, OFFLINE=True)
    result = client.submit(Media(name="v", kind="video", url="oss://media-1/v/clip.mp4"),
                           ModerationRequest(data_id="d2"))
    assert result.status == "in_progress" and result.task_id == "vi_f_1"
    assert state.parameters() == {
        "ossBucketName": "media-1", "ossObjectName": "v/clip.mp4",
        "ossRegionId": "ap-southeast-1", "dataId": "d2", "referer": REFERER, "offline": True,
    }
    assert '"offline":true' in state.forms[-1]["ServiceParameters"]  # a JSON boolean


def test_registration_options_override_referer_and_offline(recorder):
    state, url = recorder
    client = provider(url, REFERER=REFERER, OFFLINE="true")
    video = Media(name="v", kind="video", url="https://cdn.example.com/v.mp4")
    client.submit(video, ModerationRequest(options={"offline": False,
                                                    "referer": "https://other.example/"}))
    assert state.parameters() == {"url": "https://cdn.example.com/v.mp4",
                                  "referer": "https://other.example/"}
    client.submit(video, ModerationRequest(options={"audio": True}))  # settings apply
    assert state.parameters()["offline"] is True


@pytest.mark.parametrize("uri", ["oss://bucket", "oss://bucket/", "oss:///key.jpg",
                                 "oss://Upper/key.jpg", "oss://bucket//key.jpg"])
def test_malformed_oss_uri_fails_the_media_without_a_request(recorder, uri):
    state, url = recorder
    with pytest.raises(MediaError) as caught:
        provider(url).submit(Media(name="a", kind="image", url=uri), ModerationRequest())
    assert caught.value.code == "invalid_oss_uri" and state.forms == []


def test_parameter_helpers_leave_out_what_is_not_asked_for():
    assert json.loads(service_parameters("https://x/a.jpg")) == {"imageUrl": "https://x/a.jpg"}
    assert json.loads(submit_parameters("https://x/v.mp4", offline=False, referer="")) == {
        "url": "https://x/v.mp4"}


def test_288_is_in_progress_for_results_and_retried_elsewhere(recorder):
    state, url = recorder
    state.answer = {"Code": 288, "Message": "QUEUED", "RequestId": "R",
                    "Data": {"TaskId": "vi_f_9"}}
    result = provider(url).fetch("vi_f_9", ModerationRequest())
    assert result.status == "in_progress" and not result.finished
    assert result.task_id == "vi_f_9" and result.raw["Code"] == 288
    # Outside VideoModerationResult a 288 is not a success: retried, never a media failure.
    error = aliyun_errors.error_from_response(200, state.answer)
    assert isinstance(error, ProviderError) and error.code == "queued"


# --- the emulator, with our client -------------------------------------------------------------


def test_client_image_from_oss(emulator):
    result = provider(emulator.url).submit(
        Media(name="qr", kind="image", url="oss://any-bucket/photos/qr code.jpg"),
        ModerationRequest(data_id="oss-1"))
    assert result.status == "done" and "pt_qrCode" in {lbl.label for lbl in result.labels}
    assert result.raw["Data"]["DataId"] == "oss-1"


def test_client_image_missing_oss_object_is_a_media_error(emulator):
    with pytest.raises(MediaError) as caught:
        provider(emulator.url).submit(
            Media(name="x", kind="image", url="oss://any-bucket/photos/nope.jpg"),
            ModerationRequest())
    assert caught.value.code == "download_failed" and "404" in caught.value.message


def test_client_image_referer_passes_hot_link_protection(emulator, guarded):
    base, seen = guarded
    image = Media(name="qr", kind="image", url=f"{base}/qrcode.jpg")
    result = provider(emulator.url, REFERER=REFERER).submit(image, ModerationRequest())
    assert "pt_qrCode" in {lbl.label for lbl in result.labels} and seen[-1] == REFERER
    # Without it the storage refuses; 2.0 says "could not download" (404), not 403 (QPS).
    with pytest.raises(MediaError) as caught:
        provider(emulator.url).submit(image, ModerationRequest())
    assert caught.value.code == "download_failed" and seen[-1] == ""


def test_client_video_referer_passes_hot_link_protection(emulator, guarded):
    base, seen = guarded
    video = Media(name="v", kind="video", url=f"{base}/clean.mp4")
    with pytest.raises(MediaError) as caught:
        provider(emulator.url).submit(video, ModerationRequest())
    assert caught.value.code == "download_failed" and seen[-1] == ""
    client = provider(emulator.url, REFERER=REFERER)
    task_id = client.submit(video, ModerationRequest()).task_id
    assert seen[-1] == REFERER
    result, waiting = poll(lambda: client.fetch(task_id, ModerationRequest()))
    assert result.status == "done" and result.frames and result.risk_level == "none"
    assert waiting and set(waiting) == {280}  # not offline: plain "processing"


def test_client_offline_video_from_oss_answers_288_until_done(emulator, monkeypatch):
    monkeypatch.setattr(emulator_video, "OFFLINE_QUEUE_SECONDS", 1.0)
    client = provider(emulator.url, OFFLINE=True)
    started = time.monotonic()
    task_id = client.submit(Media(name="v", kind="video", url="oss://media-bucket/videos/clean.mp4"),
                            ModerationRequest(data_id="near-1")).task_id
    result, waiting = poll(lambda: client.fetch(task_id, ModerationRequest()))
    assert time.monotonic() - started >= 1.0  # held queued first
    assert len(waiting) >= 3 and set(waiting) == {288}
    assert result.status == "done" and result.frames and result.risk_level == "none"
    assert result.raw["Data"]["DataId"] == "near-1"


def test_cancelling_a_held_nearline_task_keeps_it_gone(emulator, monkeypatch):
    monkeypatch.setattr(emulator_video, "OFFLINE_QUEUE_SECONDS", 0.3)
    client = provider(emulator.url, OFFLINE=True)
    task_id = client.submit(Media(name="v", kind="video", url="oss://media-bucket/videos/clean.mp4"),
                            ModerationRequest()).task_id
    assert client.fetch(task_id, ModerationRequest()).raw["Code"] == 288
    client.cancel(task_id)
    time.sleep(0.6)  # past the hold: the analysis must not have been started and stored
    with pytest.raises(Expired):
        client.fetch(task_id, ModerationRequest())


# --- the emulator, with the official SDK -------------------------------------------------------


def sdk_client(emulator: RunningEmulator):
    from alibabacloud_green20220302.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    return Client(Config(access_key_id=AK_ID, access_key_secret=AK_SECRET,
                         endpoint=emulator.endpoint, protocol="http"))


def test_sdk_image_with_referer(emulator, guarded):
    from alibabacloud_green20220302 import models

    base, seen = guarded
    response = sdk_client(emulator).image_moderation(models.ImageModerationRequest(
        service="baselineCheck_global",
        service_parameters=json.dumps({"imageUrl": f"{base}/qrcode.jpg", "referer": REFERER}),
    ))
    assert response.body.code == 200 and seen[-1] == REFERER
    assert "pt_qrCode" in {item.label for item in response.body.data.result}


def test_sdk_offline_video_from_oss_reads_288_then_200(emulator, monkeypatch):
    from alibabacloud_green20220302 import models

    monkeypatch.setattr(emulator_video, "OFFLINE_QUEUE_SECONDS", 0.5)
    client = sdk_client(emulator)
    submitted = client.video_moderation(models.VideoModerationRequest(
        service="videoDetection_global",
        service_parameters=json.dumps({
            "ossBucketName": "b", "ossObjectName": "videos/clean.mp4",
            "ossRegionId": "ap-southeast-1", "offline": True, "dataId": "sdk-1"}),
    ))
    assert submitted.body.code == 200
    request = models.VideoModerationResultRequest(
        service="videoDetection_global",
        service_parameters=json.dumps({"taskId": submitted.body.data.task_id}))
    codes = []
    deadline = time.monotonic() + POLL_LIMIT
    while (response := client.video_moderation_result(request)).body.code != 200:
        codes.append(response.body.code)
        assert time.monotonic() < deadline, codes
        time.sleep(0.2)
    assert codes and set(codes) == {288}
    assert response.body.data.data_id == "sdk-1" and response.body.data.frame_result.frames


# --- the pipeline: a nearline job keeps polling through 288 ------------------------------------


@pytest.mark.django_db(transaction=True)
def test_pipeline_polls_a_nearline_job_through_288_to_done(emulator, register, monkeypatch):
    from moderation import pipeline
    from moderation.models import Job, Status
    from moderation.providers import get_provider
    from tests.testapp.models import Photo

    monkeypatch.setattr(emulator_video, "OFFLINE_QUEUE_SECONDS", 1.5)
    codes: list[int] = []
    original = GuardrailsProvider.fetch

    def recording_fetch(self, task_id, request=None):
        result = original(self, task_id, request)
        codes.append(int(result.raw.get("Code", 0)))
        return result

    monkeypatch.setattr(GuardrailsProvider, "fetch", recording_fetch)
    conf = {"POLL_INTERVAL": 0.5, "POLL_INTERVAL_MAX": 0.5, "PROVIDERS": {"aliyun_guardrails": {
        "BACKEND": "moderation.providers.aliyun.guardrails.GuardrailsProvider",
        "OPTIONS": {"ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET,
                    "ENDPOINT": emulator.url},
    }}}
    with override_settings(MODERATION=conf):
        get_provider.cache_clear()
        # The registration's options ask for nearline mode; the field holds an OSS URI.
        register(Photo, fields=("title",), provider="aliyun_guardrails",
                 kinds={"title": "video"}, options={"offline": True})
        photo = Photo.objects.create(title="oss://media-bucket/videos/clean.mp4")
        job = Job.objects.get(object_id=str(photo.pk))
        assert pipeline.process(job.pk) == "submitted"

        job.refresh_from_db()
        submitted_next = job.next_attempt_at
        while pipeline.process(job.pk) == "skipped":  # not due before next_attempt_at
            time.sleep(0.05)
        job.refresh_from_db()
        assert codes == [288]
        assert job.status == Status.IN_PROGRESS and job.error_code == ""
        assert job.attempts == 1 and job.next_attempt_at > max(submitted_next, timezone.now())

        deadline, outcome = time.monotonic() + POLL_LIMIT, "in_progress"
        while outcome != "done" and time.monotonic() < deadline:
            time.sleep(0.1)
            outcome = pipeline.process(job.pk)
    assert outcome == "done", codes
    job.refresh_from_db()
    assert job.status == Status.DONE and job.risk_level == "none"
    assert set(codes[:-1]) == {288} and codes[-1] == 200
    assert job.raw_result["Data"]["DataId"] == job.data_id
