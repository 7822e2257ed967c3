"""Content Moderation 1.0 video (aliyun-api-reference.md §2.6): VideoAsyncScan /
VideoAsyncScanResults with the official 1.0 SDK and with our client against the emulator,
VideoSyncScan of frame URLs, live streams (submit, poll, cancel), retention, and the parser
against documented bodies. Expectations come from the timeline of tests/media/speech_ad.mp4
(tests/media/make_videos.py): a QR code on screen 5-9 s, a contact caption 16-19 s, a profane
sentence at 14 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests

from moderation.emulator.config import EmulatorConfig
from moderation.emulator.server import RunningEmulator, start
from moderation.providers import Expired, Media, MediaError, ModerationRequest, NotSupported
from moderation.providers.aliyun import green_video
from moderation.providers.aliyun.green import GreenProvider
from moderation.providers.local import pool
from moderation.providers.result import Result
from tests.conftest import emulator_fixture, poll_until_finished
from tests.media.make_videos import TIMELINES

AK_ID, AK_SECRET = "LTAI5tGreenVideo000001", "GreenVideoSecret0000000000001"
QR_START, QR_END = TIMELINES["speech_ad.mp4"]["screen"][0][:2]
PROFANITY_AT = TIMELINES["speech_ad.mp4"]["speech"][2][0]
POLL_LIMIT = 60.0
# slow: 16 s for the module in a full run
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_proxy"), pytest.mark.django_db]




emulator = emulator_fixture(scope="module", access_key_id=AK_ID, access_key_secret=AK_SECRET)


def provider(emulator: RunningEmulator, **options: Any) -> GreenProvider:
    return GreenProvider("aliyun_green", {"ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET,
                                          "ENDPOINT": emulator.url, **options})


def video(url: str, kind: str = "video") -> Media:
    return Media(name=url.rsplit("/", 1)[-1], kind=kind, url=url)


def poll(fetch: Callable[[], Result]) -> tuple[Result, int]:
    return poll_until_finished(fetch, POLL_LIMIT)


def labels_of(part) -> set[str]:
    return {lbl.label for lbl in part.labels}


# --- the official 1.0 SDK --------------------------------------------------------------------


def sdk_call(emulator: RunningEmulator, request_class: str, body: Any) -> dict[str, Any]:
    import importlib

    from aliyunsdkcore.client import AcsClient

    module = importlib.import_module(f"aliyunsdkgreen.request.v20180509.{request_class}")
    request = getattr(module, request_class)()
    request.set_endpoint(emulator.endpoint)
    request.set_accept_format("JSON")
    request.set_content(json.dumps(body).encode())
    client = AcsClient(AK_ID, AK_SECRET, "cn-shanghai")
    return json.loads(client.do_action_with_exception(request))


def test_sdk_video_async_scan_and_results(emulator, media_server):
    submitted = sdk_call(emulator, "VideoAsyncScanRequest", {
        "scenes": ["porn", "ad"], "audioScenes": ["antispam"],
        "tasks": [{"dataId": "v1", "url": f"{media_server}/speech_ad.mp4", "interval": 1,
                   "maxFrames": 200}],
    })
    assert (submitted["code"], submitted["msg"]) == (200, "OK")
    task = submitted["data"][0]
    assert task["code"] == 200 and task["dataId"] == "v1" and task["taskId"].startswith("vi")
    deadline, states = time.monotonic() + POLL_LIMIT, []
    while True:
        answer = sdk_call(emulator, "VideoAsyncScanResultsRequest", [task["taskId"]])
        assert answer["code"] == 200
        states.append(answer["data"][0]["code"])
        if states[-1] != 280:
            break
        assert answer["data"][0]["msg"] == "PROCESSING"
        assert time.monotonic() < deadline
        time.sleep(0.25)
    assert states[0] == 280 and states[-1] == 200
    done = answer["data"][0]
    assert done["taskId"] == task["taskId"] and done["dataId"] == "v1"
    results = {r["scene"]: r for r in done["results"]}
    assert list(results) == ["porn", "ad"]
    assert (results["porn"]["label"], results["porn"]["suggestion"]) == ("normal", "pass")
    assert (results["ad"]["label"], results["ad"]["suggestion"]) == ("ad", "review")
    qr = [f for f in results["ad"]["frames"] if f["label"] == "qrcode"]
    assert qr and all(QR_START <= f["offset"] <= QR_END for f in qr)
    image = requests.get(qr[0]["url"], timeout=5)
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    (audio,) = done["audioScanResults"]
    assert audio["scene"] == "antispam" and audio["suggestion"] in ("review", "block")
    abuse = [d for d in audio["details"] if d["label"] == "abuse"]
    assert abuse and abs(abuse[0]["startTime"] - PROFANITY_AT) <= 1
    assert "fucking" in abuse[0]["text"]
    assert any(d["label"] == "normal" for d in audio["details"])  # every sentence is listed


def test_sdk_video_sync_scan_of_frames(emulator, image_server, monkeypatch):
    # The emulator analyses the frames in the request thread. It used to start the engine's
    # pool of worker processes, each loading the models, while this SDK call's 10 s read
    # timeout ran: under CPU load that alone took 7 s. Starting the pool now fails the call.
    def no_process_pool(workers: int):
        raise AssertionError("VideoSyncScan started the engine's worker processes")

    monkeypatch.setattr(pool, "process_pool", no_process_pool)
    answer = sdk_call(emulator, "VideoSyncScanRequest", {
        "scenes": ["porn", "ad"],
        "tasks": [{"dataId": "f1", "framePrefix": f"{image_server}/",
                   "frames": [{"url": "benign.jpg", "offset": 0},
                              {"url": "qrcode.jpg", "offset": 5}]}],
    })
    task = answer["data"][0]
    assert answer["code"] == 200 and task["code"] == 200 and task["dataId"] == "f1"
    results = {r["scene"]: r for r in task["results"]}
    assert results["porn"]["label"] == "normal"
    assert results["ad"]["frames"] == [{"url": f"{image_server}/qrcode.jpg", "offset": 5.0,
                                        "label": "qrcode", "rate": results["ad"]["rate"]}]


def test_sdk_unemulated_video_scene_and_bad_results_body(emulator, media_server):
    refused = sdk_call(emulator, "VideoAsyncScanRequest", {
        "scenes": ["terrorism"], "tasks": [{"url": f"{media_server}/clean.mp4"}]})
    assert refused["code"] == 400 and "data" not in refused
    bad = sdk_call(emulator, "VideoAsyncScanResultsRequest", {"taskId": "x"})
    assert bad["code"] == 400


# --- our client ------------------------------------------------------------------------------


def test_client_video_submit_and_fetch(emulator, media_server):
    client = provider(emulator)
    submitted = client.submit(video(f"{media_server}/speech_ad.mp4"),
                              ModerationRequest(data_id="c1"))
    assert submitted.status == "in_progress" and submitted.task_id.startswith("vi")
    sent = submitted.raw["data"][0]
    assert sent["dataId"] == "c1"
    result, pending = poll(lambda: client.fetch(submitted.task_id, ModerationRequest()))
    assert pending >= 1  # per-task 280 while the engine works
    assert result.status == "done" and result.task_id == submitted.task_id
    qr = [f for f in result.frames if "pt_qrCode" in labels_of(f)]
    assert qr and all(QR_START <= f.offset <= QR_END and f.risk_level == "medium" for f in qr)
    assert all(isinstance(f.image, str) and "/_emulator/frames/" in f.image for f in qr)
    assert result.frame_summary["pt_qrCode"] == len(qr)
    assert all(lbl.service == "green" and lbl.scene == "ad" for lbl in qr[0].labels)
    caption = [f for f in result.frames if "pt_toDirectContact_tii" in labels_of(f)]
    assert caption and min(f.offset for f in caption) >= 15
    profane = [s for s in result.slices if "profanity" in labels_of(s)]
    assert profane and abs(profane[0].start - PROFANITY_AT) <= 1
    assert profane[0].risk_level != "none" and "fucking" in profane[0].text
    assert any(not s.labels and s.risk_level == "none" for s in result.slices)
    assert result.risk_level == "medium"
    assert {"pt_qrCode", "profanity"} <= labels_of(result)


def test_client_video_without_audio_has_no_slices(emulator, media_server):
    client = provider(emulator)
    submitted = client.submit(video(f"{media_server}/clean.mp4"),
                              ModerationRequest(options={"audio": False}))
    result, _ = poll(lambda: client.fetch(submitted.task_id, ModerationRequest()))
    assert result.slices == [] and "audioScanResults" not in result.raw["data"][0]
    assert result.frames == [] and result.risk_level == "none"


def test_missing_video_is_a_per_task_media_error(emulator, media_server):
    with pytest.raises(MediaError) as caught:
        provider(emulator).submit(video(f"{media_server}/nope.mp4"), ModerationRequest())
    assert caught.value.code == "download_failed" and "404" in caught.value.message


def test_unknown_task_and_image_id_on_video_results_are_expired(emulator):
    client = provider(emulator)
    with pytest.raises(Expired) as caught:
        client.fetch("vi0000notatask", ModerationRequest())
    assert caught.value.code == "expired" and "594" in caught.value.message
    with pytest.raises(Expired):
        client.fetch("img0000notatask", ModerationRequest())


def test_result_expires_after_one_hour_of_retention(tmp_path, media_server, monkeypatch):
    assert EmulatorConfig().green_retention == timedelta(hours=1)  # 1.0: 1 h (§2.6)
    config = EmulatorConfig(access_key_id=AK_ID, access_key_secret=AK_SECRET, oss_root=tmp_path,
                            green_retention=timedelta(seconds=0.5))
    with start(config) as running:
        client = provider(running)
        task_id = client.submit(video(f"{media_server}/clean.mp4"), ModerationRequest()).task_id
        result, _ = poll(lambda: client.fetch(task_id, ModerationRequest()))
        assert result.status == "done"
        time.sleep(1.0)
        with pytest.raises(Expired):
            client.fetch(task_id, ModerationRequest())


def test_client_scan_frames_by_url(emulator, image_server):
    client = provider(emulator)
    frames = [(0.0, f"{image_server}/benign.jpg"), (2.0, f"{image_server}/qrcode.jpg"),
              (4.0, f"{image_server}/ad_text.png")]
    result = client.scan_frames(frames, ModerationRequest(data_id="fr1"))
    assert result.status == "done" and result.slices == []
    assert [f.offset for f in result.frames] == [2.0, 4.0]  # only frames with a hit
    assert labels_of(result.frames[0]) == {"pt_qrCode"}
    assert result.frames[0].image == f"{image_server}/qrcode.jpg"
    assert labels_of(result.frames[1]) == {"pt_toDirectContact_tii"}
    assert result.risk_level == "medium"
    via_submit = client.submit(Media("f", "frames"),
                               ModerationRequest(options={"frame_urls": frames[1:2]}))
    assert [f.offset for f in via_submit.frames] == [2.0]


def test_frames_without_urls_are_not_supported(emulator):
    media = Media("f", "frames", frames=[(0.0, b"\xff\xd8")])
    with pytest.raises(NotSupported) as caught:
        provider(emulator).submit(media, ModerationRequest())
    assert caught.value.code == "no_frame_urls"


# --- live streams ----------------------------------------------------------------------------


def test_live_stream_submits_live_and_ends_with_the_result(emulator, media_server):
    client = provider(emulator, LIVE_POLL_INTERVAL=0.2)
    sent: list[tuple[str, dict]] = []
    call = client.call

    def recording(action, path, body, **kwargs):
        sent.append((action, json.loads(body)))
        return call(action, path, body, **kwargs)

    client.call = recording  # type: ignore[method-assign]
    request = ModerationRequest(callback_url="http://127.0.0.1:9/cb", seed="s")
    results = list(client.stream(video(f"{media_server}/speech_ad.mp4", "live"), request))
    action, body = sent[0]
    assert action == "VideoAsyncScan" and body["live"] is True
    assert "callback" not in body  # the stream polls; a callback would race with it
    assert [r.status for r in results[:-1]] == ["in_progress"] * (len(results) - 1)
    assert len(results) >= 2 and results[-1].status == "done"
    assert any("pt_qrCode" in labels_of(f) for f in results[-1].frames)
    first = results[0].raw["data"][0]
    assert first["code"] == 280 and first["taskId"] == results[-1].task_id
    assert {a for a, _ in sent[1:]} == {"VideoAsyncScanResults"}  # no cancel once done


def test_live_partials_are_yielded_once_each():
    """A 280 answer that already carries frames (results accumulate on a live task, §2.6)
    yields them at once; the final answer yields only what is new."""
    def element(code, offsets, details):
        return {"code": code, "taskId": "vi1", "results": [
            {"scene": "ad", "label": "ad", "suggestion": "review", "rate": 90,
             "frames": [{"offset": o, "label": "qrcode", "rate": 90} for o in offsets]}],
            "audioScanResults": [{"scene": "antispam", "label": "abuse", "suggestion": "review",
                                  "details": details}]}

    sentence = {"startTime": 0, "endTime": 3, "text": "hi", "label": "normal"}
    answers = iter([element(280, [1], [sentence]), element(280, [1, 2], [sentence]),
                    element(200, [1, 2, 3], [sentence])])
    client = GreenProvider("g", {"LIVE_POLL_INTERVAL": 0})
    client.fetch = lambda task_id, request=None: green_video.parse_video_task(  # type: ignore
        (item := next(answers)), {"data": [item]})
    parts = list(client._follow("vi1", ModerationRequest()))
    assert [[f.offset for f in r.frames] for r in parts] == [[1.0], [2.0], [3.0]]
    assert [len(r.slices) for r in parts] == [1, 0, 0]
    assert [r.status for r in parts] == ["in_progress", "in_progress", "done"]


def test_closing_a_live_stream_cancels_the_task(emulator, media_server):
    client = provider(emulator, LIVE_POLL_INTERVAL=0.1)
    stream = client.stream(video(f"{media_server}/speech_ad.mp4", "live"), ModerationRequest())
    first = next(stream)
    assert first.status == "in_progress"
    stream.close()
    with pytest.raises(Expired):  # the emulator forgot the cancelled task
        client.fetch(first.task_id, ModerationRequest())


def test_a_file_task_cannot_be_cancelled(emulator, media_server):
    client = provider(emulator)
    task_id = client.submit(video(f"{media_server}/clean.mp4"), ModerationRequest()).task_id
    with pytest.raises(MediaError) as caught:
        client.cancel(task_id)
    assert caught.value.code == "bad_request"
    result, _ = poll(lambda: client.fetch(task_id, ModerationRequest()))  # it ran on
    assert result.status == "done"


def test_rtmp_streams_are_accepted_other_schemes_not(emulator):
    client = provider(emulator)
    assert client.stream_url(Media("s", "live", url="rtmp://example.com/live/x")).startswith("rtmp")
    with pytest.raises(NotSupported):
        client.stream_url(Media("s", "live", url="file:///etc/passwd"))


# --- request bodies and the parser -----------------------------------------------------------


def test_async_body_carries_scenes_audio_live_callback_and_sampling():
    request = ModerationRequest(data_id="d", callback_url="https://cb/", seed="s3",
                                options={"interval": 2.0, "max_frames": 50})
    body = json.loads(green_video.async_body(
        "https://x/v.mp4", request, ["porn", "qrcode", "ad"], audio=True, live=True,
        biz_type="biz", crypt_type="SM3"))
    assert body == {
        "scenes": ["porn", "ad"], "live": True, "audioScenes": ["antispam"], "bizType": "biz",
        "callback": "https://cb/", "seed": "s3", "cryptType": "SM3",
        "tasks": [{"dataId": "d", "url": "https://x/v.mp4", "interval": 2, "maxFrames": 50}],
    }
    plain = json.loads(green_video.async_body("https://x/v.mp4", ModerationRequest(), ["porn"]))
    assert plain == {"scenes": ["porn"], "tasks": [{"url": "https://x/v.mp4"}]}


#: A finished VideoAsyncScanResults element built from the documented fields (API reference
#: §2.4 and §2.6 tables: results[].frames[] {url, offset, label, rate}, audioScanResults[]
#: {scene, label, suggestion, rate, details[] {startTime, endTime, text, label, keyword}}).
DOCUMENTED = {
    "code": 200, "msg": "OK", "requestId": "R1",
    "data": [{
        "code": 200, "msg": "OK", "dataId": "v1", "taskId": "vi3Mwnhr7jtJiRt1sQ8E3UCU-1q2ea2",
        "results": [
            {"scene": "porn", "label": "porn", "suggestion": "block", "rate": 99.2,
             "frames": [{"url": "https://oss/f1.jpg", "offset": 1, "label": "porn", "rate": 99.2},
                        {"url": "https://oss/f2.jpg", "offset": 3, "label": "sexy", "rate": 30}]},
            {"scene": "ad", "label": "ad", "suggestion": "review", "rate": 91,
             "frames": [{"url": "https://oss/f2b.jpg", "offset": 3, "label": "qrcode",
                         "rate": 91}]},
            {"scene": "terrorism", "label": "terrorism", "suggestion": "review", "rate": 70},
            {"scene": "logo", "label": "normal", "suggestion": "pass", "rate": 99.9},
        ],
        "audioScanResults": [{
            "scene": "antispam", "label": "customized", "suggestion": "block", "rate": 99.9,
            "details": [
                {"startTime": 0, "endTime": 4, "text": "hello", "label": "normal"},
                {"startTime": 5, "endTime": 9, "text": "buy pills", "label": "customized",
                 "keyword": "pills", "libName": "my words"},
                {"startTime": 10, "endTime": 12, "text": "you idiot", "label": "abuse"},
            ]}],
    }],
}


def test_parser_on_a_documented_body():
    result = green_video.parse_video_task(DOCUMENTED["data"][0], DOCUMENTED)
    assert result.status == "done" and result.task_id == "vi3Mwnhr7jtJiRt1sQ8E3UCU-1q2ea2"
    assert result.risk_level == "high"
    assert [f.offset for f in result.frames] == [1.0, 3.0]
    first, second = result.frames
    assert labels_of(first) == {"pornographic_adultContent"} and first.risk_level == "high"
    assert first.image == "https://oss/f1.jpg"
    # A frame named by two scenes is one Frame; below our threshold the "sexy" hit still
    # carries its scene's verdict (the service listed it as evidence).
    assert labels_of(second) == {"sexual_suggestiveContent", "pt_qrCode"}
    assert second.risk_level == "high" and second.image == "https://oss/f2.jpg"
    assert "terrorism_terrorism" in labels_of(result)  # a scene without frames: job label
    assert [(s.start, s.end) for s in result.slices] == [(0, 4), (5, 9), (10, 12)]
    clean, keyword, abuse = result.slices
    assert clean.labels == [] and clean.risk_level == "none"
    assert labels_of(keyword) == {"C_customized"} and keyword.risk_words == ["pills"]
    assert keyword.risk_level == "high"
    assert labels_of(abuse) == {"profanity"} and abuse.risk_level == "medium"
    assert result.audio_summary == {"C_customized": 1, "profanity": 1}
    assert result.raw == DOCUMENTED


def test_parser_processing_and_failed_tasks():
    running = {"code": 280, "msg": "PROCESSING", "taskId": "vi1"}
    result = green_video.parse_video_task(running, {"data": [running]})
    assert result.status == "in_progress" and result.task_id == "vi1" and not result.frames
    with pytest.raises(MediaError) as caught:
        green_video.parse_video_task({"code": 595, "msg": "CATCH_FRAME_FAILED"}, {})
    assert caught.value.code == "frame_extraction_failed"
    with pytest.raises(MediaError) as refused:  # the 1.0 meaning of 403 (V1_OVERRIDES)
        green_video.parse_video_task({"code": 403, "msg": "FORBIDDEN"}, {})
    assert refused.value.code == "download_forbidden"
    with pytest.raises(Expired):
        green_video.parse_video_task({"code": 594, "msg": "EXPIRED"}, {})


def test_audio_vocabulary_round_trips_the_engine_labels():
    for ours in ("profanity", "ad", "C_customized"):
        assert green_video.audio_from_v1(green_video.audio_to_v1(ours)) == ours
    assert green_video.audio_from_v1("normal") is None
    assert green_video.audio_from_v1("flood") == "spam"
    assert green_video.audio_from_v1("weird") == "antispam_weird"
    assert green_video.video_scenes(["porn", "qrcode", "ad", "terrorism"]) == [
        "porn", "ad", "terrorism"]
