"""Content Moderation 1.0 image async scans, feedback and callback contents
(aliyun-api-reference.md §2.4, §2.5, §2.7, §2.11): the official 1.0 SDK and our client
against the emulator, and ``GreenProvider.parse_callback`` on documented bodies."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from moderation import ratelimit
from moderation.emulator import green as emulator_green
from moderation.emulator.server import RunningEmulator
from moderation.models import RateBudget
from moderation.providers import (
    Expired,
    Feedback,
    Media,
    MediaError,
    ModerationRequest,
    NotSupported,
    ProviderContext,
    ProviderError,
)
from moderation.providers.aliyun.checksum import verify_checksum
from moderation.providers.aliyun.green import GreenProvider, scan_body
from moderation.providers.aliyun.green_tasks import image_body
from tests.conftest import emulator_fixture

AK_ID, AK_SECRET = "LTAI5tGreenAsync000001", "GreenAsyncSecret0000000000001"
UID = "1500000000000001"
pytestmark = [pytest.mark.usefixtures("no_proxy"), pytest.mark.django_db]


emulator = emulator_fixture(scope="module", access_key_id=AK_ID, access_key_secret=AK_SECRET,
                            uid=UID, callback_retries=(0.1, 0.2))



def provider(emulator: RunningEmulator, context: ProviderContext | None = None,
             **options: Any) -> GreenProvider:
    return GreenProvider("aliyun_green", {"ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET,
                                          "ENDPOINT": emulator.url, **options}, context=context)


def image(url: str) -> Media:
    return Media(name="image", kind="image", url=url)


def until_done(client: GreenProvider, task_id: str):
    deadline, pending = time.monotonic() + 30, 0
    while time.monotonic() < deadline:
        result = client.fetch(task_id, ModerationRequest())
        if result.finished:
            return result, pending
        pending += 1
        time.sleep(0.05)
    pytest.fail("the image task did not finish")


def sdk_call(emulator: RunningEmulator, request_class: str, body: Any) -> dict[str, Any]:
    import importlib

    from aliyunsdkcore.client import AcsClient

    module = importlib.import_module(f"aliyunsdkgreen.request.v20180509.{request_class}")
    request = getattr(module, request_class)()
    request.set_endpoint(emulator.endpoint)
    request.set_accept_format("JSON")
    request.set_content(json.dumps(body).encode())
    return json.loads(AcsClient(AK_ID, AK_SECRET, "cn-shanghai").do_action_with_exception(request))


# --- image async: the official SDK -----------------------------------------------------------


def test_sdk_image_async_scan_and_results(emulator, image_server):
    submitted = sdk_call(emulator, "ImageAsyncScanRequest", {
        "scenes": ["porn", "qrcode"],
        "tasks": [{"dataId": "a1", "url": f"{image_server}/qrcode.jpg"},
                  {"dataId": "a2"}],
    })
    first, second = submitted["data"]
    assert submitted["code"] == 200 and first["code"] == 200 and first["dataId"] == "a1"
    assert first["taskId"].startswith("img") and first["url"].endswith("/qrcode.jpg")
    assert second["code"] == 400 and second["dataId"] == "a2"  # a task without url
    deadline = time.monotonic() + 30
    while (answer := sdk_call(emulator, "ImageAsyncScanResultsRequest",
                              [first["taskId"], "img-unknown"]))["data"][0]["code"] == 280:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    done, unknown = answer["data"]
    assert done["code"] == 200 and done["dataId"] == "a1" and done["taskId"] == first["taskId"]
    results = {r["scene"]: r for r in done["results"]}
    assert (results["qrcode"]["label"], results["qrcode"]["suggestion"]) == ("qrcode", "review")
    assert results["porn"]["label"] == "normal"
    assert (unknown["code"], unknown["msg"], unknown["taskId"]) == (594, "EXPIRED",
                                                                   "img-unknown")


# --- image async: our client -----------------------------------------------------------------


def test_client_async_images_by_option(emulator, image_server):
    client = provider(emulator, ASYNC_IMAGES=True)
    submitted = client.submit(image(f"{image_server}/qrcode.jpg"), ModerationRequest(data_id="o1"))
    assert submitted.status == "in_progress" and submitted.task_id.startswith("img")
    result, _ = until_done(client, submitted.task_id)
    assert result.status == "done" and result.task_id == submitted.task_id
    assert [lbl.label for lbl in result.labels] == ["pt_qrCode"] and result.risk_level == "medium"
    assert len(result.frames) == 1 and result.frames[0].offset == 0
    assert result.raw["data"][0]["dataId"] == "o1"


def test_client_async_images_by_registration_option_else_sync(emulator, image_server):
    client = provider(emulator)
    asked = client.submit(image(f"{image_server}/benign.jpg"),
                          ModerationRequest(options={"async": True}))
    assert asked.status == "in_progress"
    result, _ = until_done(client, asked.task_id)
    assert result.labels == [] and result.risk_level == "none"
    sync = client.submit(image(f"{image_server}/benign.jpg"), ModerationRequest())
    assert sync.status == "done"


def test_client_async_download_failure_is_raised_by_fetch(emulator, image_server):
    client = provider(emulator, ASYNC_IMAGES=True)
    submitted = client.submit(image(f"{image_server}/missing.jpg"), ModerationRequest())
    assert submitted.status == "in_progress"  # the service downloads later
    with pytest.raises(MediaError) as caught:
        until_done(client, submitted.task_id)
    assert caught.value.code == "download_failed" and "404" in caught.value.message


def test_client_unknown_image_task_is_expired(emulator):
    with pytest.raises(Expired):
        provider(emulator).fetch("img0000notatask", ModerationRequest())


def test_async_body_has_the_callback_trio_only_when_async_with_a_callback():
    request = ModerationRequest(data_id="d", callback_url="https://cb/x", seed="s3")
    body = json.loads(image_body("https://i/a.jpg", request, ["porn"], "biz", "SM3",
                                 asynchronous=True))
    assert body == {"scenes": ["porn"], "tasks": [{"dataId": "d", "url": "https://i/a.jpg"}],
                    "bizType": "biz", "callback": "https://cb/x", "seed": "s3",
                    "cryptType": "SM3"}
    assert "callback" not in json.loads(scan_body("https://i/a.jpg", request))
    no_callback = ModerationRequest(seed="s3")
    assert "seed" not in json.loads(image_body("https://i/a.jpg", no_callback, ["porn"],
                                               asynchronous=True))


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    """A loopback URL that records callback forms and answers 200."""
    received: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(parse_qs(self.rfile.read(length).decode()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/cb", received
    server.shutdown()
    server.server_close()


def test_async_image_callback_is_signed_and_parses(emulator, image_server, receiver):
    url, received = receiver
    client = provider(emulator, ASYNC_IMAGES=True, CRYPT_TYPE="SM3")
    request = ModerationRequest(data_id="cb1", callback_url=url, seed="seed-1")
    task_id = client.submit(image(f"{image_server}/qrcode.jpg"), request).task_id
    deadline = time.monotonic() + 30
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received, "no callback arrived"
    content = received[0]["content"][0]
    assert verify_checksum(UID, "seed-1", content, received[0]["checksum"][0], "SM3")
    assert not verify_checksum(UID, "seed-1", content, received[0]["checksum"][0], "SHA256")
    result = client.parse_callback(json.loads(content))
    assert result.status == "done" and result.task_id == task_id
    assert [lbl.label for lbl in result.labels] == ["pt_qrCode"]


# --- callback contents -----------------------------------------------------------------------

#: A 1.0 image scan-result callback ``content``: one ``data[]`` element (§2.11).
IMAGE_CONTENT = {"code": 200, "msg": "OK", "dataId": "d9", "taskId": "img4wlJcb7p4wH4lAP3111111",
                 "url": "https://example.com/a.jpg",
                 "results": [{"scene": "porn", "label": "porn", "suggestion": "block",
                              "rate": 99.1}]}


def test_parse_callback_image_video_and_unfinished(emulator):
    client = provider(emulator)
    result = client.parse_callback(IMAGE_CONTENT)
    assert result.status == "done" and result.risk_level == "high"
    assert [lbl.label for lbl in result.labels] == ["pornographic_adultContent"]
    assert result.raw == IMAGE_CONTENT and result.task_id == IMAGE_CONTENT["taskId"]
    video = {"code": 200, "msg": "OK", "taskId": "vi3Mwnhr7jt", "dataId": "v9",
             "results": [{"scene": "ad", "label": "ad", "suggestion": "review", "rate": 90,
                          "frames": [{"url": "https://t/1.jpg", "offset": 4, "label": "qrcode",
                                      "rate": 90}]}]}
    parsed = client.parse_callback(video)
    assert [f.offset for f in parsed.frames] == [4.0] and parsed.frames[0].image
    with pytest.raises(ProviderError) as caught:
        client.parse_callback({"code": 280, "msg": "PROCESSING", "taskId": "vi1"})
    assert caught.value.code == "processing"
    with pytest.raises(MediaError):
        client.parse_callback({"code": 480, "msg": "DOWNLOAD_FAILED", "taskId": "img1"})


# --- feedback --------------------------------------------------------------------------------


def last_feedback(path: str) -> dict[str, Any]:
    sent = [item for item in emulator_green.FEEDBACK if item["path"] == path]
    assert sent, f"no feedback arrived at {path}"
    return sent[-1]["body"]


def test_sdk_feedback_requests(emulator):
    image_ok = sdk_call(emulator, "ImageScanFeedbackRequest", {
        "taskId": "img1", "url": "https://x/a.jpg", "scenes": ["porn"], "suggestion": "pass",
        "note": "fine"})
    assert (image_ok["code"], image_ok["msg"]) == (200, "OK") and "data" not in image_ok
    assert last_feedback("/green/image/feedback")["note"] == "fine"
    video_ok = sdk_call(emulator, "VideoFeedbackRequest", {
        "taskId": "vi1", "suggestion": "block", "scenes": ["ad"],
        "frames": [{"url": "https://x/1.jpg", "offset": 3}],
        "results": [{"scene": "ad", "label": "ad"}]})
    assert video_ok["code"] == 200
    assert last_feedback("/green/video/feedback")["frames"][0]["offset"] == 3
    no_scenes = sdk_call(emulator, "ImageScanFeedbackRequest", {"suggestion": "block"})
    assert no_scenes["code"] == 400
    no_task = sdk_call(emulator, "VideoFeedbackRequest", {"suggestion": "pass",
                                                           "scenes": ["porn"]})
    assert no_task["code"] == 400


def test_client_image_feedback_maps_labels_and_counts_as_feedback(emulator):
    client = provider(emulator, context=ProviderContext(acquire=ratelimit.acquire))
    client.feedback(Feedback(decision="block", task_id="img7", data_id="d7",
                             url="https://x/q.jpg", labels=["pt_qrCode"], note="a QR ad"))
    assert last_feedback("/green/image/feedback") == {
        "taskId": "img7", "dataId": "d7", "url": "https://x/q.jpg", "scenes": ["qrcode"],
        "suggestion": "block", "label": "qrcode", "note": "a QR ad"}
    assert RateBudget.objects.filter(key=f"green:{AK_ID}:feedback").exists()
    client.feedback(Feedback(decision="pass", url="https://x/b.jpg",
                             labels=["pornographic_adultContent"], scenes=["porn"]))
    passed = last_feedback("/green/image/feedback")
    assert (passed["scenes"], passed["suggestion"], passed["label"]) == (
        ["porn"], "pass", "normal")


def test_client_video_feedback_sends_frames_and_results(emulator):
    client = provider(emulator)
    client.feedback(Feedback(decision="block", kind="video", task_id="vi7",
                             url="https://x/v.mp4", labels=["pt_qrCode", "profanity"],
                             frames=[(5.0, "https://x/5.jpg"), (6.0, "https://x/6.jpg")]))
    assert last_feedback("/green/video/feedback") == {
        "taskId": "vi7", "url": "https://x/v.mp4",
        "frames": [{"url": "https://x/5.jpg", "offset": 5.0},
                   {"url": "https://x/6.jpg", "offset": 6.0}],
        "suggestion": "block", "scenes": ["ad"], "results": [{"scene": "ad", "label": "qrcode"}],
    }
    with pytest.raises(NotSupported) as caught:
        client.feedback(Feedback(decision="pass", kind="video"))
    assert caught.value.code == "no_task_id"
    with pytest.raises(ValueError):
        client.feedback(Feedback(decision="review", task_id="img1"))
