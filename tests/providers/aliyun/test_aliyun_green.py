"""Content Moderation 1.0 (ImageSyncScan): the vocabulary table, the official 1.0 SDK against
the emulator, and our GreenProvider against the emulator (aliyun-protocol.md §2, §3)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from moderation.emulator.server import RunningEmulator
from moderation.providers import AuthError, Media, MediaError, ModerationRequest
from moderation.providers.aliyun import vocabulary
from moderation.providers.aliyun.green import GreenProvider, default_endpoint
from tests.conftest import SAMPLES, emulator_fixture

AK_ID, AK_SECRET = "LTAI5tGreenKeyId0000001", "GreenSecret000000000000000001"
# Provider calls take their turn under the account rate limit, kept in the database.
pytestmark = [pytest.mark.usefixtures("no_proxy"), pytest.mark.django_db]


emulator = emulator_fixture(scope="module", access_key_id=AK_ID, access_key_secret=AK_SECRET)



# --- vocabulary ----------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["pornographic_adultContent", "sexual_suggestiveContent",
                                   "pt_qrCode", "pt_toDirectContact_tii",
                                   "profanity_offensive_tii"])
def test_vocabulary_round_trips(label):
    mapped = vocabulary.to_v1(label)
    assert mapped is not None and mapped.label in _v1_labels()[mapped.scene]
    assert vocabulary.from_v1(mapped.scene, mapped.label) == label


def test_vocabulary_edges():
    assert vocabulary.to_v1("sexual_partialNudity") == ("porn", "sexy", "review")
    assert vocabulary.to_v1("nonLabel") is None and vocabulary.to_v1("nonLabel_lib") is None
    assert vocabulary.to_v1("political_flag_tii") == ("ad", "politics", "block")
    assert vocabulary.to_v1("drugs_tii") == ("ad", "spam", "block")
    assert vocabulary.to_v1("pornographic_adultContent_lib") == ("porn", "porn", "block")
    assert vocabulary.to_v1("my_list_lib") == ("ad", "spam", "block")
    assert vocabulary.to_v1("unheard_of") is None
    assert vocabulary.from_v1("porn", "normal") is None
    assert vocabulary.from_v1("terrorism", "bloody") == "terrorism_bloody"
    for result in [*vocabulary.TO_V1.values(), vocabulary.to_v1("x_tii")]:
        assert result.label in _v1_labels()[result.scene]


def _v1_labels() -> dict[str, list[str]]:
    path = SAMPLES.parent.parent.parent / "shared" / "specs" / "aliyun-labels.json"
    if not path.exists():  # the spec lives next to the repo; fall back to the documented sets
        return {"porn": ["normal", "sexy", "porn"], "qrcode": ["normal", "qrcode"],
                "ad": ["normal", "ad", "politics", "porn", "abuse", "terrorism", "contraband",
                       "spam", "npx", "qrcode", "programCode"]}
    return json.loads(path.read_text())["v1"]


def test_default_endpoints_follow_the_sdk_map():
    assert default_endpoint("ap-southeast-1") == "green.ap-southeast-1.aliyuncs.com"
    assert default_endpoint("cn-qingdao") == "green.aliyuncs.com"
    assert default_endpoint("us-east-1") == "green.ap-southeast-1.aliyuncs.com"


# --- the official 1.0 SDK ------------------------------------------------------------------


def sdk_scan(emulator: RunningEmulator, url: str, scenes: list[str]) -> dict[str, Any]:
    try:
        from aliyunsdkcore.client import AcsClient
        from aliyunsdkgreen.request.v20180509 import ImageSyncScanRequest
    except ImportError as exc:  # never skip: the SDK test must run
        pytest.fail(f"install aliyun-python-sdk-core and aliyun-python-sdk-green: {exc}")
    client = AcsClient(AK_ID, AK_SECRET, "cn-shanghai")
    request = ImageSyncScanRequest.ImageSyncScanRequest()
    request.set_endpoint(emulator.endpoint)  # emulator notes §1.1, plain http by default
    request.set_accept_format("JSON")
    request.set_content(json.dumps({"scenes": scenes,
                                    "tasks": [{"dataId": "d1", "url": url}]}).encode())
    return json.loads(client.do_action_with_exception(request))


def test_sdk_qr_code(emulator, image_server):
    body = sdk_scan(emulator, f"{image_server}/qrcode.jpg", ["porn", "qrcode", "ad"])
    assert (body["code"], body["msg"]) == (200, "OK") and body["requestId"]
    task = body["data"][0]
    assert task["code"] == 200 and task["dataId"] == "d1" and task["taskId"]
    assert task["url"].endswith("/qrcode.jpg")
    results = {r["scene"]: r for r in task["results"]}
    assert list(results) == ["porn", "qrcode", "ad"]
    assert (results["qrcode"]["label"], results["qrcode"]["suggestion"]) == ("qrcode", "review")
    assert results["qrcode"]["rate"] > 50


def test_sdk_benign_image_is_normal(emulator, image_server):
    body = sdk_scan(emulator, f"{image_server}/benign.jpg", ["porn", "qrcode", "ad"])
    results = body["data"][0]["results"]
    assert [r["scene"] for r in results] == ["porn", "qrcode", "ad"]
    assert all((r["label"], r["suggestion"]) == ("normal", "pass") for r in results)


def test_sdk_download_failure_is_a_task_code(emulator, image_server):
    body = sdk_scan(emulator, f"{image_server}/missing.jpg", ["porn"])
    assert body["code"] == 200
    assert (body["data"][0]["code"], body["data"][0]["msg"]) == (404, "NOT_FOUND")
    assert "results" not in body["data"][0]


def test_sdk_unemulated_scene_is_bad_request(emulator, image_server):
    body = sdk_scan(emulator, f"{image_server}/benign.jpg", ["terrorism"])
    assert body["code"] == 400 and "data" not in body


# --- our client ----------------------------------------------------------------------------


def provider(emulator: RunningEmulator, secret: str = AK_SECRET) -> GreenProvider:
    return GreenProvider("aliyun_green", {"ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": secret,
                                          "ENDPOINT": emulator.url})


def scan(emulator: RunningEmulator, url: str, secret: str = AK_SECRET, **request: Any):
    media = Media(name="image", kind="image", url=url)
    return provider(emulator, secret).submit(media, ModerationRequest(data_id="d1", **request))


def test_client_qr_code(emulator, image_server):
    result = scan(emulator, f"{image_server}/qrcode.jpg")
    assert result.status == "done" and result.risk_level == "medium"
    assert "pt_qrCode" in [label.label for label in result.labels]
    assert result.frames[0].offset == 0 and result.frames[0].labels
    assert result.raw["data"][0]["dataId"] == "d1"


def test_client_ad_text(emulator, image_server):
    result = scan(emulator, f"{image_server}/ad_text.png", scenes=["ad"])
    assert [label.label for label in result.labels] == ["pt_toDirectContact_tii"]
    assert result.risk_level == "medium"


def test_client_benign(emulator, image_server):
    result = scan(emulator, f"{image_server}/benign.jpg")
    assert result.labels == [] and result.risk_level == "none"


def test_client_missing_image_is_media_error(emulator, image_server):
    with pytest.raises(MediaError) as info:
        scan(emulator, f"{image_server}/missing.jpg")
    assert info.value.code == "download_failed"


def test_client_wrong_secret_is_auth_error(emulator, image_server):
    with pytest.raises(AuthError) as info:
        scan(emulator, f"{image_server}/benign.jpg", secret="wrong")
    assert "SignatureDoesNotMatch" in str(info.value)


def test_a_1_0_per_task_403_is_a_refused_url_not_throttling():
    from moderation.providers.aliyun.errors import V1_OVERRIDES, error_for
    from moderation.providers.errors import MediaError, Throttled

    assert isinstance(error_for(403), Throttled)  # 2.0's meaning
    refused = error_for(403, "url forbidden", overrides=V1_OVERRIDES)
    assert isinstance(refused, MediaError) and refused.code == "download_forbidden"
