"""IMM (2020-09-30) moderation tasks against the emulator: with the official SDK
(alibabacloud-imm20200930, its own response models) and with our client
(``ImmProvider.submit/fetch``), plus the parsers against the documented bodies.

Media: tests/media/speech_ad.mp4 (a QR code on screen 5-9 s, an "Add me on WhatsApp" caption
16-19 s; tests/media/make_videos.py) and clean.mp4, placed in the emulator's OSS root, which
stands in for every bucket. IMM has no audio moderation, so the speech is ignored.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from moderation.emulator import imm as imm_emulator
from moderation.emulator.config import EmulatorConfig
from moderation.emulator.server import RunningEmulator, start
from moderation.emulator.video_tasks import VideoTasks
from moderation.providers import (
    AuthError,
    Expired,
    Media,
    MediaError,
    ModerationRequest,
    NotSupported,
    ProviderError,
    Result,
)
from moderation.providers.aliyun.imm import (
    CATEGORIES,
    ImmProvider,
    category_for_label,
    create_parameters,
    label_for_category,
    parse_moderation_result,
    source_uri,
    task_type_of,
)
from tests.conftest import SAMPLES, emulator_fixture, poll_until_finished

MEDIA = Path(__file__).resolve().parents[2] / "media"
AK_ID, AK_SECRET = "LTAI5tImmTest00000001", "ImmTestSecret000000000000001"
PROJECT, BUCKET = "demo-project", "demo-bucket"
QR, AD = "pt_qrCode", "pt_toDirectContact_tii"
POLL_LIMIT = 60.0
# Provider calls take their turn under the account rate limit, kept in the database.
# slow: 12 s for the module in a full run
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_proxy"), pytest.mark.django_db]


def _oss_root(root: Path) -> Path:
    for name in ("speech_ad.mp4", "clean.mp4"):
        shutil.copy(MEDIA / name, root / name)
    (root / "images").mkdir()
    shutil.copy(SAMPLES / "qrcode.jpg", root / "images" / "qr.jpg")
    (root / "broken.mp4").write_bytes(b"not a video at all")
    return root


def _config(root: Path, **kwargs: Any) -> EmulatorConfig:
    return EmulatorConfig(access_key_id=AK_ID, access_key_secret=AK_SECRET, oss_root=root,
                          **kwargs)


emulator = emulator_fixture(scope="module", oss=_oss_root, access_key_id=AK_ID,
                            access_key_secret=AK_SECRET)


def provider(emulator: RunningEmulator, **options: Any) -> ImmProvider:
    return ImmProvider("aliyun_imm", {
        "ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET, "PROJECT_NAME": PROJECT,
        "ENDPOINT": emulator.url, **options,
    })


def oss(key: str, kind: str = "video") -> Media:
    return Media(name=key, kind=kind, url=f"oss://{BUCKET}/{key}")


def poll(fetch: Callable[[], Result]) -> tuple[Result, int]:
    return poll_until_finished(fetch, POLL_LIMIT)


def sdk_client(emulator: RunningEmulator, secret: str = AK_SECRET):
    from alibabacloud_imm20200930.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    return Client(Config(access_key_id=AK_ID, access_key_secret=secret,
                         endpoint=emulator.endpoint, protocol="http"))


# --- (a) the official SDK --------------------------------------------------------------------


def test_sdk_video_task_get_task_and_result(emulator):
    from alibabacloud_imm20200930 import models

    client = sdk_client(emulator)
    created = client.create_video_moderation_task(models.CreateVideoModerationTaskRequest(
        project_name=PROJECT, source_uri=f"oss://{BUCKET}/speech_ad.mp4",
        scenes=["porn", "ad"], interval=1, max_frames=100,
        notification=models.Notification(mns=models.MNS(topic_name="t1")),
        tags={"k": "v"}, user_data='{"a":1}',
    ))
    task_id = created.body.task_id
    assert task_id.startswith("VideoModeration-") and created.body.event_id
    running = client.get_task(models.GetTaskRequest(
        project_name=PROJECT, task_id=task_id, task_type="VideoModeration",
        request_definition=True)).body
    assert running.status == "Running" and running.task_type == "VideoModeration"
    assert running.tags == {"k": "v"} and running.user_data == '{"a":1}'
    assert json.loads(running.task_request_definition)["SourceURI"].endswith("speech_ad.mp4")
    request = models.GetVideoModerationResultRequest(
        project_name=PROJECT, task_id=task_id, task_type="VideoModeration")
    deadline = time.monotonic() + POLL_LIMIT
    while (body := client.get_video_moderation_result(request).body).status == "Running":
        assert body.moderation_result is None
        assert time.monotonic() < deadline, "the IMM task did not finish"
        time.sleep(0.25)
    assert body.status == "Succeeded" and body.task_id == task_id and body.end_time
    result = body.moderation_result
    assert result.suggestion == "review" and result.uri == f"oss://{BUCKET}/speech_ad.mp4"
    assert set(result.categories) == {"qrcode", "ad"}
    assert result.frames.total_count == 24
    by_label: dict[str, list[int]] = {}
    for frame in result.frames.block_frames:
        by_label.setdefault(frame.label, []).append(frame.offset)
        assert 0 < frame.rate <= 100
    assert by_label["qrcode"] and all(5 <= o <= 9 for o in by_label["qrcode"])
    assert by_label["ad"] and all(16 <= o <= 19 for o in by_label["ad"])
    done = client.get_task(models.GetTaskRequest(
        project_name=PROJECT, task_id=task_id, task_type="VideoModeration")).body
    assert done.status == "Succeeded" and done.end_time
    assert running.progress is None and done.progress is None  # "GetTask does not support" it
    assert done.task_request_definition is None


def test_sdk_image_task(emulator):
    from alibabacloud_imm20200930 import models

    client = sdk_client(emulator)
    task_id = client.create_image_moderation_task(models.CreateImageModerationTaskRequest(
        project_name=PROJECT, source_uri=f"oss://{BUCKET}/images/qr.jpg")).body.task_id
    assert task_id.startswith("ImageModeration-")
    request = models.GetImageModerationResultRequest(
        project_name=PROJECT, task_id=task_id, task_type="ImageModeration")
    deadline = time.monotonic() + POLL_LIMIT
    while (body := client.get_image_moderation_result(request).body).status == "Running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert body.status == "Succeeded"
    assert body.moderation_result.categories == ["qrcode"]
    assert body.moderation_result.suggestion == "review"


def test_sdk_sees_gateway_errors(emulator):
    from alibabacloud_imm20200930 import models
    from alibabacloud_tea_openapi.exceptions import ClientException

    client = sdk_client(emulator)
    with pytest.raises(ClientException) as unknown:
        client.get_video_moderation_result(models.GetVideoModerationResultRequest(
            project_name=PROJECT, task_id="VideoModeration-nope", task_type="VideoModeration"))
    assert unknown.value.code == "ResourceNotFound" and unknown.value.status_code == 404
    with pytest.raises(ClientException) as http_uri:
        client.create_video_moderation_task(models.CreateVideoModerationTaskRequest(
            project_name=PROJECT, source_uri="https://example.com/v.mp4"))
    assert http_uri.value.code == "InvalidArgument" and http_uri.value.status_code == 400
    with pytest.raises(ClientException) as bad_interval:
        client.create_video_moderation_task(models.CreateVideoModerationTaskRequest(
            project_name=PROJECT, source_uri=f"oss://{BUCKET}/clean.mp4", interval=601))
    assert bad_interval.value.code == "InvalidArgument"
    with pytest.raises(ClientException) as signature:
        sdk_client(emulator, "wrong-secret").get_task(models.GetTaskRequest(
            project_name=PROJECT, task_id="x", task_type="VideoModeration"))
    assert signature.value.code == "SignatureDoesNotMatch"


# --- (b) our client ------------------------------------------------------------------------


def test_client_video_submit_and_fetch(emulator):
    client = provider(emulator)
    submitted = client.submit(oss("speech_ad.mp4"), ModerationRequest(data_id="d1"))
    assert submitted.status == "in_progress" and submitted.task_id.startswith("VideoModeration-")
    result, pending = poll(lambda: client.fetch(submitted.task_id, ModerationRequest()))
    assert pending >= 1  # the first fetch right after submit sees Running
    assert result.status == "done" and result.task_id == submitted.task_id
    assert result.risk_level == "medium"
    qr = [f for f in result.frames if QR in {lbl.label for lbl in f.labels}]
    ad = [f for f in result.frames if AD in {lbl.label for lbl in f.labels}]
    assert qr and all(5 <= f.offset <= 9 and f.risk_level == "medium" for f in qr)
    assert ad and all(16 <= f.offset <= 19 for f in ad)
    assert result.frame_summary == {QR: len(qr), AD: len(ad)}
    assert {lbl.label for lbl in result.labels} == {QR, AD}
    assert all(lbl.service == "imm" for lbl in result.all_labels())
    assert qr[0].labels[0].scene == "qrcode" and qr[0].image is None  # IMM has no frame URLs
    assert result.slices == []  # IMM does not moderate sound
    raw = result.raw
    assert raw["Status"] == "Succeeded" and json.loads(raw["UserData"]) == {"dataId": "d1"}
    assert raw["ModerationResult"]["Frames"]["TotalCount"] == 24


def test_client_scenes_and_interval_reach_the_service(emulator):
    """Scenes ``porn`` only (no ad scene: the QR code and caption are not reported) and
    Interval 2 (12 frames of 24 s)."""
    client = provider(emulator, INTERVAL=2)
    task_id = client.submit(oss("speech_ad.mp4"), ModerationRequest(scenes=["porn"])).task_id
    result, _ = poll(lambda: client.fetch(task_id, ModerationRequest()))
    assert result.risk_level == "none" and not result.frames
    assert result.raw["ModerationResult"]["Frames"] == {"TotalCount": 12, "BlockFrames": []}


def test_client_clean_video_passes_with_rpc_v1_signature(emulator):
    client = provider(emulator, SIGNATURE="rpc_v1")
    task_id = client.submit(oss("clean.mp4"), ModerationRequest()).task_id
    result, _ = poll(lambda: client.fetch(task_id, ModerationRequest()))
    assert result.status == "done"
    assert result.frames == [] and result.labels == []
    assert result.raw["ModerationResult"]["Categories"] == []


def test_client_image(emulator):
    # A notification with UTF-8, a space, ``*`` and ``~``: the signed query survives them.
    client = provider(emulator, NOTIFICATION={"MNS": {"TopicName": "主题 t*~"}})
    submitted = client.submit(oss("images/qr.jpg", "image"), ModerationRequest())
    assert submitted.task_id.startswith("ImageModeration-")
    result, _ = poll(lambda: client.fetch(submitted.task_id, ModerationRequest()))
    assert result.status == "done"
    assert [f.offset for f in result.frames] == [0.0]
    assert [lbl.label for lbl in result.frames[0].labels] == [QR]


# --- (c) errors ----------------------------------------------------------------------------


def test_http_url_is_not_supported_before_any_request():
    client = ImmProvider("aliyun_imm", {"ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET,
                                        "PROJECT_NAME": PROJECT, "ENDPOINT": "http://127.0.0.1:9"})
    with pytest.raises(NotSupported) as caught:
        client.submit(Media(name="v.mp4", kind="video", url="https://cdn.example.com/v.mp4"),
                      ModerationRequest())
    assert caught.value.code == "imm_needs_oss" and "OSS" in caught.value.message
    with pytest.raises(NotSupported):
        client.submit(Media(name="a.wav", kind="audio", url="oss://b/a.wav"), ModerationRequest())


def test_missing_object_fails_the_task_as_media_error(emulator):
    client = provider(emulator)
    task_id = client.submit(oss("nope/missing.mp4"), ModerationRequest()).task_id
    with pytest.raises(MediaError) as caught:
        client.fetch(task_id, ModerationRequest())
    assert caught.value.code == "file_missing" and "ResourceNotFound" in caught.value.message


def test_undecodable_video_fails_the_task_as_media_error(emulator):
    client = provider(emulator)
    task_id = client.submit(oss("broken.mp4"), ModerationRequest()).task_id
    with pytest.raises(MediaError) as caught:
        poll(lambda: client.fetch(task_id, ModerationRequest()))
    assert caught.value.code == "invalid_file" and "InvalidFile" in caught.value.message


def test_bad_source_uri_and_wrong_secret(emulator):
    with pytest.raises(MediaError) as bad_key:
        provider(emulator).submit(oss("../outside.mp4"), ModerationRequest())
    assert bad_key.value.code == "invalid_argument" and "SourceURI" in bad_key.value.message
    with pytest.raises(AuthError) as wrong:
        provider(emulator, ACCESS_KEY_SECRET="wrong").submit(oss("clean.mp4"),
                                                             ModerationRequest())
    assert wrong.value.code == "signature_mismatch"


def test_unknown_task_is_expired(emulator):
    with pytest.raises(Expired) as caught:
        provider(emulator).fetch("VideoModeration-doesnotexist", ModerationRequest())
    assert caught.value.code == "expired" and "ResourceNotFound" in caught.value.message


def test_unknown_project_is_a_configuration_error(tmp_path):
    config = _config(tmp_path)
    tasks = VideoTasks(config)
    with start(config, imm_emulator.routes(tasks, projects=["other-project"])) as running:
        with pytest.raises(AuthError) as caught:
            provider(running).submit(oss("clean.mp4"), ModerationRequest())
        with pytest.raises(AuthError):
            provider(running).fetch("VideoModeration-x", ModerationRequest())
    tasks.close()
    assert caught.value.code == "project_not_found" and "Project" in caught.value.message


def test_result_expires_after_retention(tmp_path, monkeypatch):
    shutil.copy(SAMPLES / "benign.jpg", tmp_path / "b.jpg")
    with start(_config(tmp_path, imm_retention=timedelta(seconds=1))) as running:
        client = provider(running)
        task_id = client.submit(oss("b.jpg", "image"), ModerationRequest()).task_id
        result, _ = poll(lambda: client.fetch(task_id, ModerationRequest()))
        assert result.status == "done"
        time.sleep(1.5)
        with pytest.raises(Expired):
            client.fetch(task_id, ModerationRequest())


def test_retention_is_seven_days():
    assert timedelta(days=7) == EmulatorConfig().imm_retention


# --- (d) parsers and requests against the documented shapes --------------------------------

#: The GetVideoModerationResult answer captured from the SDK (emulator notes §6).
CAPTURED_PASS = {
    "ModerationResult": {"Categories": [], "Frames": {"BlockFrames": [], "TotalCount": 10},
                         "Suggestion": "pass"},
    "ProjectName": "demo-project", "RequestId": "35BDFF69-A88C-421D-8F27-22F5262E8204",
    "Status": "Succeeded", "TaskId": "VideoModeration-abc", "TaskType": "VideoModeration",
}


def test_parse_documented_pass():
    result = parse_moderation_result(CAPTURED_PASS)
    assert (result.status, result.risk_level) == ("done", "none")
    assert result.task_id == "VideoModeration-abc" and result.raw == CAPTURED_PASS
    # IMM lists only blocked frames: TotalCount says the clean video was looked at, so the
    # pipeline passes it instead of failing it as "nothing_analysed"
    assert result.frames == [] and result.frames_analysed == 10 and result.analysed
    assert Result.from_dict(result.to_dict()).analysed


def test_parse_pass_without_a_frame_count_analysed_nothing():
    body = {**CAPTURED_PASS, "ModerationResult": {"Categories": [], "Suggestion": "pass",
                                                  "Frames": {"BlockFrames": []}}}
    assert not parse_moderation_result(body).analysed


def test_parse_block_frames_grouped_by_offset():
    body = {**CAPTURED_PASS, "ModerationResult": {
        "Suggestion": "block", "Categories": ["porn", "qrcode", "bloody"],
        "Frames": {"TotalCount": 30, "BlockFrames": [
            {"Label": "porn", "Offset": 3, "Rate": 99.5},
            {"Label": "qrcode", "Offset": 3, "Rate": 88.0},
            {"Label": "porn", "Offset": 4, "Rate": 40.0},
            {"Label": "normal", "Offset": 5, "Rate": 99.0},
        ]}}}
    result = parse_moderation_result(body)
    assert result.risk_level == "high"
    assert [f.offset for f in result.frames] == [3.0, 4.0, 5.0]
    first, second, normal = result.frames
    assert [lbl.label for lbl in first.labels] == ["pornographic_adultContent", QR]
    assert first.risk_level == "high"
    assert second.risk_level == "none"  # Rate 40 is under the label's 50 threshold
    assert normal.labels == [] and normal.risk_level == "none"
    assert result.frame_summary == {"pornographic_adultContent": 2, QR: 1}
    confidence = {lbl.label: lbl.confidence for lbl in result.labels}
    # job labels: best frame Rate per category; a listed category without frames counts 100
    assert confidence == {"pornographic_adultContent": 99.5, QR: 88.0, "bloody": 100.0}
    assert next(lbl for lbl in result.labels if lbl.label == "bloody").risk_level == "medium"


def test_parse_running_and_failed():
    running = parse_moderation_result({"Status": "Running", "TaskId": "VideoModeration-1"})
    assert running.status == "in_progress" and running.task_id == "VideoModeration-1"
    documented = {"Status": "Failed", "Code": "ResourceNotFound",
                  "Message": "The specified resource TaskId is not found.", "RequestId": "R1"}
    with pytest.raises(MediaError) as missing:
        parse_moderation_result(documented, "VideoModeration-1")
    assert "R1" in missing.value.message and "VideoModeration-1" in missing.value.message
    with pytest.raises(MediaError) as invalid:
        parse_moderation_result({"Status": "Failed", "Code": "InvalidFile.Corrupted"})
    assert invalid.value.code == "invalid_file"
    with pytest.raises(ProviderError) as other:
        parse_moderation_result({"Status": "Failed", "Code": "InternalError"})
    assert other.value.code == "task_failed"
    with pytest.raises(ProviderError):
        parse_moderation_result({"Status": "Succeeded", "TaskId": "VideoModeration-1"})


def test_image_result_without_frames_is_one_frame():
    result = parse_moderation_result({"Status": "Succeeded", "TaskId": "ImageModeration-1",
                                      "ModerationResult": {"Suggestion": "review",
                                                           "Categories": ["sexy"]}})
    assert result.risk_level == "medium" and len(result.frames) == 1
    assert result.frames[0].labels[0].label == "sexual_suggestiveContent"


def test_category_table_reads_both_ways():
    assert label_for_category("porn") == "pornographic_adultContent"
    assert label_for_category("sexy") == "sexual_suggestiveContent"  # the first row wins
    assert label_for_category("normal") is None and label_for_category("logo") == "logo"
    assert category_for_label("sexual_partialNudity").category == "sexy"
    assert category_for_label("pt_qrCode_lib").category == "qrcode"
    assert category_for_label("profanity") is None  # speech: IMM has no audio
    for row in CATEGORIES:  # every label the emulator renders is read back to a row
        assert category_for_label(label_for_category(row.category)).category == row.category


def test_source_uri_and_task_type():
    assert source_uri("oss://b/dir/v.mp4") == "oss://b/dir/v.mp4"
    assert source_uri("https://b1.oss-cn-hangzhou.aliyuncs.com/dir/a%20b.mp4?Expires=1"
                      "&Signature=x") == "oss://b1/dir/a b.mp4"
    assert source_uri("http://b1.oss-cn-hangzhou-internal.aliyuncs.com/k") == "oss://b1/k"
    for url in ("", "oss://b/", "https://example.com/v.mp4", "ftp://b.oss-x.aliyuncs.com/k"):
        with pytest.raises(NotSupported):
            source_uri(url)
    assert task_type_of("ImageModeration-1") == "ImageModeration"
    assert task_type_of("VideoModeration-1") == task_type_of("other") == "VideoModeration"


def test_create_parameters_shrink_like_the_sdk():
    params = create_parameters("p", "oss://b/v.mp4", scenes=["porn", "qrcode", "ad"],
                               interval=2, max_frames=100,
                               notification={"MNS": {"TopicName": "t1"}}, user_data="é")
    assert list(params) == sorted(params)
    assert params["Scenes"] == '["porn","ad"]'  # our qrcode scene is IMM's ad scene
    assert params["Notification"] == '{"MNS":{"TopicName":"t1"}}'
    assert (params["Interval"], params["MaxFrames"], params["UserData"]) == ("2", "100", "é")
    assert create_parameters("p", "oss://b/i.jpg") == {"ProjectName": "p",
                                                        "SourceURI": "oss://b/i.jpg"}
    with pytest.raises(ValueError):
        create_parameters("p", "oss://b/v.mp4", user_data="x" * 2049)


def test_default_endpoint_and_required_options():
    client = ImmProvider("aliyun_imm", {"REGION": "cn-shanghai"})
    assert client.endpoint == ("https", "imm.cn-shanghai.aliyuncs.com")
    assert "PROJECT_NAME" in ImmProvider.required_options
    with pytest.raises(AuthError):
        client.fetch("VideoModeration-1", ModerationRequest())
