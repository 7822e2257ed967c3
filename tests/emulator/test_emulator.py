"""The emulator's skeleton and its 2.0 ImageModeration endpoint, called by the official SDK
(alibabacloud-green20220302), by our own signer, and through the management command.

No database: the emulator and the local provider only need Django settings.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

import pytest
import requests

from moderation.emulator.config import EmulatorConfig
from moderation.emulator.server import RunningEmulator, start
from moderation.providers.aliyun import signing
from tests.conftest import PROXY_VARIABLES, SAMPLES, emulator_fixture

AK_ID = "LTAI5tEmulatorTest0001"
AK_SECRET = "EmulatorTestSecret000000000001"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("no_proxy")


@pytest.fixture(scope="module")
def oss_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("oss")
    for name in ("qrcode.jpg", "ad_text.png"):
        shutil.copy(SAMPLES / name, root / name)
    (root / "broken.png").write_bytes(b"plain text, not an image")
    (root.parent / "secret.jpg").write_bytes((SAMPLES / "qrcode.jpg").read_bytes())
    return root


emulator = emulator_fixture(scope="module", oss="oss_root", access_key_id=AK_ID,
                            access_key_secret=AK_SECRET)



# --- the official SDK ----------------------------------------------------------------------


def sdk_client(
    emulator: RunningEmulator, key_id: str = AK_ID, secret: str = AK_SECRET, **config: Any
) -> Any:
    """An official 2.0 client aimed at the emulator (emulator notes §1.2)."""
    try:
        from alibabacloud_green20220302.client import Client
        from alibabacloud_tea_openapi.utils_models import Config
    except ImportError as exc:  # the SDK test must fail loudly, never skip
        pytest.fail(
            f"the official SDK is not installed: pip install alibabacloud_green20220302 ({exc})"
        )
    return Client(
        Config(
            access_key_id=key_id,
            access_key_secret=secret,
            endpoint=emulator.endpoint,
            protocol="http",
            **config,
        )
    )


def sdk_moderate(
    client: Any, parameters: dict[str, Any], service: str = "baselineCheck_global"
) -> Any:
    from alibabacloud_green20220302 import models

    request = models.ImageModerationRequest(
        service=service, service_parameters=json.dumps(parameters)
    )
    return client.image_moderation(request)


def labels(response: Any) -> list[str]:
    return [item.label for item in response.body.data.result]


def test_sdk_image_url(emulator, image_server):
    response = sdk_moderate(
        sdk_client(emulator), {"imageUrl": f"{image_server}/qrcode.jpg", "dataId": "d1"}
    )
    body = response.body
    assert response.status_code == 200
    assert (body.code, body.msg) == (200, "OK")
    assert body.request_id
    assert body.data.data_id == "d1"
    assert "pt_qrCode" in labels(response)
    qr = next(item for item in body.data.result if item.label == "pt_qrCode")
    assert 0 < qr.confidence <= 100
    assert qr.risk_level == body.data.risk_level == "medium"
    assert qr.description


def test_sdk_oss_object(emulator):
    response = sdk_moderate(
        sdk_client(emulator),
        {
            "ossBucketName": "bucket",
            "ossObjectName": "ad_text.png",
            "ossRegionId": "ap-southeast-1",
            "dataId": "d2",
        },
    )
    assert response.body.code == 200
    assert "pt_toDirectContact_tii" in labels(response)


def test_sdk_benign_image_is_non_label(emulator, image_server):
    response = sdk_moderate(sdk_client(emulator), {"imageUrl": f"{image_server}/benign.jpg"})
    data = response.body.data
    assert response.body.code == 200
    assert labels(response) == ["nonLabel"]
    assert data.risk_level == "none"
    assert data.result[0].confidence is None  # absent for nonLabel (§4.2)
    assert data.data_id is None  # not given, not echoed


def test_sdk_legacy_v1_signature(emulator, image_server):
    """``signature_algorithm="v2"`` puts RPC V1 auth in the query (§6); same answer."""
    client = sdk_client(emulator, signature_algorithm="v2")
    response = sdk_moderate(client, {"imageUrl": f"{image_server}/qrcode.jpg"})
    assert response.body.code == 200
    assert "pt_qrCode" in labels(response)


@pytest.mark.parametrize(
    ("key_id", "secret", "code", "status"),
    [
        (AK_ID, "wrong-secret", "SignatureDoesNotMatch", 400),
        ("LTAI5tUnknownKey", AK_SECRET, "InvalidAccessKeyId.NotFound", 404),
    ],
)
def test_sdk_gateway_errors(emulator, image_server, key_id, secret, code, status):
    from Tea.exceptions import TeaException

    client = sdk_client(emulator, key_id, secret)
    with pytest.raises(TeaException) as caught:
        sdk_moderate(client, {"imageUrl": f"{image_server}/qrcode.jpg"})
    assert caught.value.code == code
    assert caught.value.status_code == status
    assert caught.value.data["HostId"] == emulator.endpoint


# --- our own signer and raw requests -------------------------------------------------------


class Endpoint(Protocol):
    """What signed_post needs: a RunningEmulator, or the command's printed URL."""

    url: str
    endpoint: str


def signed_post(
    emulator: Endpoint,
    form: dict[str, str] | None,
    action: str = "ImageModeration",
    version: str = "2022-03-02",
    nonce: str | None = None,
) -> requests.Response:
    """A V3-signed ``POST /`` built with signing.sign_acs3 (§4.1: sorted form body)."""
    body = signing.form_encode(dict(sorted(form.items()))).encode() if form else None
    headers = {"host": emulator.endpoint, "user-agent": "moderation-tests"}
    if body:
        headers["content-type"] = signing.FORM_CONTENT_TYPE
    headers = signing.sign_acs3(
        "POST",
        "/",
        {},
        headers,
        body,
        AK_ID,
        AK_SECRET,
        action=action,
        version=version,
        nonce=nonce,
    )
    return requests.post(emulator.url + "/", data=body, headers=headers, timeout=30)


def image_form(**parameters: str) -> dict[str, str]:
    return {"Service": "baselineCheck_global", "ServiceParameters": json.dumps(parameters)}


def test_our_signer_passes_the_verifier(emulator, image_server):
    response = signed_post(emulator, image_form(imageUrl=f"{image_server}/qrcode.jpg"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json;charset=utf-8"
    body = response.json()
    assert body["Code"] == 200 and body["Msg"] == "OK"
    assert [item["Label"] for item in body["Data"]["Result"]] == ["pt_qrCode"]
    assert set(body["Data"]["Result"][0]) == {"Label", "Confidence", "Description", "RiskLevel"}


@pytest.mark.parametrize(
    ("parameters", "code"),
    [
        ({"imageUrl": "{images}/missing.jpg"}, 404),
        ({"ossBucketName": "b", "ossObjectName": "../secret.jpg"}, 401),
        ({"ossBucketName": "b", "ossObjectName": "a/../../secret.jpg"}, 401),
        ({"ossBucketName": "b", "ossObjectName": "/etc/passwd"}, 401),
        ({"ossBucketName": "b", "ossObjectName": "nothing-here.jpg"}, 404),
        ({"ossBucketName": "b", "ossObjectName": "broken.png"}, 407),
        ({"imageUrl": "file:///etc/passwd"}, 401),
        ({"imageUrl": "http://127.0.0.1:port/a.jpg"}, 401),
        ({"imageUrl": "http://10.1.2.3/a.jpg"}, 401),
        ({"dataId": "no-image"}, 400),
    ],
)
def test_media_problems_are_business_codes(emulator, image_server, parameters, code):
    """§4.3 / §8.2: HTTP 200 with the code in the body, never a 500."""
    parameters = {k: v.format(images=image_server) for k, v in parameters.items()}
    response = signed_post(emulator, image_form(**parameters))
    assert response.status_code == 200
    body = response.json()
    assert body["Code"] == code, body
    assert body["Msg"] and body["RequestId"]
    assert "Data" not in body


def test_download_limits(oss_root, image_server, silent_server):
    """2.0's own codes (api-reference §3.5): 405 when the download is too slow, 406 when the
    image is too large (1.0 would say 592 and 589)."""
    config = EmulatorConfig(
        access_key_id=AK_ID,
        access_key_secret=AK_SECRET,
        oss_root=oss_root,
        download_timeout=0.3,
        max_image_bytes=1000,
    )
    with start(config) as limited:
        slow = image_form(imageUrl=f"http://127.0.0.1:{silent_server}/a.jpg")
        assert signed_post(limited, slow).json()["Code"] == 405
        large = image_form(imageUrl=f"{image_server}/qrcode.jpg")
        assert signed_post(limited, large).json()["Code"] == 406
        large_oss = image_form(ossBucketName="b", ossObjectName="qrcode.jpg")
        assert signed_post(limited, large_oss).json()["Code"] == 406


def test_missing_service_parameters_is_bad_request(emulator):
    response = signed_post(emulator, {"Service": "baselineCheck_global"})
    assert (response.status_code, response.json()["Code"]) == (200, 400)


def test_replayed_nonce_is_refused(emulator, image_server):
    form = image_form(imageUrl=f"{image_server}/benign.jpg")
    nonce = signing.new_nonce()
    assert signed_post(emulator, form, nonce=nonce).status_code == 200
    replay = signed_post(emulator, form, nonce=nonce)
    assert (replay.status_code, replay.json()["Code"]) == (400, "SignatureNonceUsed")


@pytest.mark.parametrize(
    ("action", "version", "code"),
    [
        ("NoSuchAction", "2022-03-02", "InvalidAction.NotFound"),
        ("ImageModeration", "2018-05-09", "InvalidVersion"),
    ],
)
def test_unknown_operations_are_gateway_errors(emulator, action, version, code):
    response = signed_post(emulator, image_form(), action=action, version=version)
    body = response.json()
    assert response.status_code == 400
    assert body["Code"] == code
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}


def test_unsigned_request_is_refused(emulator):
    response = requests.post(emulator.url + "/", data=image_form(), timeout=30)
    assert (response.status_code, response.json()["Code"]) == (400, "IncompleteSignature")


def test_other_content_moderation_1_operations_are_not_implemented_yet(emulator):
    # Image and video operations are served (tests/test_aliyun_green*.py); voice is not.
    path, query = "/green/voice/asyncscan", {"RegionId": "cn-shanghai"}
    body = b'{"scenes": ["antispam"], "tasks": [{"url": "https://example.com/a.mp3"}]}'
    headers = signing.sign_roa(
        "POST", path, query, {"Content-Type": "application/json"}, body, AK_ID, AK_SECRET
    )
    response = requests.post(
        emulator.url + path, params=query, data=body, headers=headers, timeout=30
    )
    assert response.status_code == 404
    assert response.json()["Code"] == "InvalidApi.NotFound"
    assert "not implemented" in response.json()["Message"]


def test_other_paths_and_methods_are_not_found(emulator):
    # GET / is an RPC call like POST / (pop-core's default): unsigned, it is refused as such.
    unsigned = requests.get(emulator.url + "/", timeout=30)
    assert (unsigned.status_code, unsigned.json()["Code"]) == (400, "IncompleteSignature")
    assert requests.put(emulator.url + "/", timeout=30).status_code == 404
    assert requests.get(emulator.url + "/green/image/scan", timeout=30).status_code == 404
    assert requests.post(emulator.url + "/admin/", timeout=30).json()["Code"] == (
        "InvalidApi.NotFound"
    )


def test_config_from_settings_mapping(tmp_path):
    config = EmulatorConfig.from_mapping(
        {"ACCESS_KEY_ID": "id", "oss_root": str(tmp_path), "port": None}
    )
    assert (config.access_key_id, config.oss_root, config.port) == ("id", tmp_path, 0)
    assert config.secret_for("id") == config.access_key_secret
    assert config.secret_for("other") is None
    with pytest.raises(ValueError, match="unknown emulator settings: nope"):
        EmulatorConfig.from_mapping({"nope": 1})


# --- the management command ----------------------------------------------------------------


@pytest.mark.slow  # 2.1 s
def test_management_command_serves(oss_root):
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    env.update(DJANGO_SETTINGS_MODULE="tests.settings", PYTHONUNBUFFERED="1")
    command = [
        sys.executable,
        "manage.py",
        "moderation_emulator",
        "--port",
        "0",
        "--access-key-id",
        AK_ID,
        "--access-key-secret",
        AK_SECRET,
        "--oss-root",
        str(oss_root),
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        # The first line is printed once the port is bound; never wait forever for it.
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "the command printed nothing within 60 s"
        first_line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in first_line, first_line
        url = first_line.split("listening on ", 1)[1].strip()
        form = image_form(ossBucketName="b", ossObjectName="qrcode.jpg")
        response = signed_post(_Endpoint(url), form)
        assert response.status_code == 200
        assert response.json()["Data"]["Result"][0]["Label"] == "pt_qrCode"
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


class _Endpoint:
    """The two attributes of RunningEmulator that signed_post needs, for a subprocess."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.endpoint = url.removeprefix("http://")
