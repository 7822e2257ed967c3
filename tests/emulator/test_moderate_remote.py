"""``manage.py moderate`` with a remote provider (``needs_url``: the Alibaba services).

Against the emulator on loopback: a local file is served to it for the length of the
command, an http(s) URL or ``oss://BUCKET/KEY`` is passed through. Against a real endpoint a
local file cannot be reached, and the command exits with status 2 and says what to do.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from moderation.management.commands.moderate import loopback_endpoint, serve_file
from moderation.providers import get_provider
from tests.conftest import SAMPLES, emulator_fixture, serving

MEDIA = Path(__file__).resolve().parents[1] / "media"
AK_ID, AK_SECRET = "LTAI5tRemoteCmd0000001", "RemoteCmdSecret00000000000001"
ALIAS = "aliyun_guardrails"
# The command reads the hash libraries, and the client's rate limiter its budget, from the DB.
pytestmark = [pytest.mark.usefixtures("no_proxy"), pytest.mark.django_db]


def _oss_root(root: Path) -> None:
    shutil.copy(SAMPLES / "qrcode.jpg", root / "qr.jpg")


emulator = emulator_fixture(scope="module", oss=_oss_root, access_key_id=AK_ID,
                            access_key_secret=AK_SECRET)


def remote(endpoint: str):
    """Settings with the 2.0 provider aimed at ``endpoint``."""
    providers = {ALIAS: {
        "BACKEND": "moderation.providers.aliyun.guardrails.GuardrailsProvider",
        "OPTIONS": {"ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET,
                    "ENDPOINT": endpoint},
    }}
    return override_settings(MODERATION={**settings.MODERATION, "PROVIDERS": providers})


def run_json(*args: str) -> dict:
    out = io.StringIO()
    call_command("moderate", *args, "--provider", ALIAS, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_local_image_is_served_to_a_loopback_emulator(emulator):
    with remote(emulator.url):
        data = run_json(str(SAMPLES / "qrcode.jpg"))
    assert data["suggestion"] == "review"
    assert [lbl["label"] for lbl in data["labels"]] == ["pt_qrCode"]
    assert data["labels"][0]["service"] == "guardrails"  # the 2.0 answer, not the local engine


@pytest.mark.slow  # 2.1 s
def test_local_video_is_served_and_polled_to_done(emulator):
    with remote(emulator.url):
        data = run_json(str(MEDIA / "clean.mp4"), "--wait", "60")
    assert data["status"] == "done" and data["risk_level"] == "none"
    assert len(data["frames"]) >= 5 and data["task_id"].startswith("vi_")


def test_oss_uri_is_read_by_the_provider(emulator):
    with remote(emulator.url):
        data = run_json("oss://media-bucket/qr.jpg")
    assert [lbl["label"] for lbl in data["labels"]] == ["pt_qrCode"]


def test_http_url_is_fetched_by_the_provider(emulator):
    with serving(SAMPLES) as base, remote(emulator.url):
        data = run_json(f"{base}/qrcode.jpg")
    assert [lbl["label"] for lbl in data["labels"]] == ["pt_qrCode"]


def test_local_file_with_a_real_endpoint_exits_2_with_the_options(emulator):
    with remote("green-cip.ap-southeast-1.aliyuncs.com"):
        get_provider.cache_clear()
        with pytest.raises(CommandError) as caught:
            call_command("moderate", str(SAMPLES / "qrcode.jpg"), "--provider", ALIAS)
    assert caught.value.returncode == 2
    message = str(caught.value)
    assert "https://" in message and "oss://BUCKET/KEY" in message
    assert "--provider local" in message and "qrcode.jpg" in message


def test_missing_oss_object_is_a_one_line_failure(emulator):
    with remote(emulator.url), pytest.raises(CommandError) as caught:
        call_command("moderate", "oss://media-bucket/nope.jpg", "--provider", ALIAS)
    assert caught.value.returncode == 1 and "[download_failed]" in str(caught.value)


def test_loopback_endpoint_detection():
    class Engine:
        def __init__(self, host: str) -> None:
            self.endpoint = ("http", host)

    assert loopback_endpoint(Engine("127.0.0.1:8765"))
    assert loopback_endpoint(Engine("localhost:8765"))
    assert loopback_endpoint(Engine("[::1]:8765"))
    assert not loopback_endpoint(Engine("green-cip.ap-southeast-1.aliyuncs.com"))
    assert not loopback_endpoint(Engine("10.0.0.5:80"))
    assert not loopback_endpoint(object())  # a provider without an endpoint


def test_serve_file_serves_one_file_only_while_open(tmp_path):
    (tmp_path / "other.txt").write_text("secret")
    with serve_file(str(SAMPLES / "qrcode.jpg")) as url:
        answer = requests.get(url, timeout=5)
        assert answer.status_code == 200 and answer.content == (SAMPLES / "qrcode.jpg").read_bytes()
        assert answer.headers["content-type"] == "image/jpeg"
        base = url.rsplit("/", 2)[0]
        assert requests.get(f"{base}/qrcode.jpg", timeout=5).status_code == 404
        assert requests.get(url.rsplit("/", 1)[0] + "/other.txt", timeout=5).status_code == 404
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)
