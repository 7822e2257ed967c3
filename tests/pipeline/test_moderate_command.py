"""``manage.py moderate``: the real engine in the foreground, and clean failures."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import SAMPLES

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db  # the command reads the hash libraries when it can


def run_json(path) -> dict:
    out = io.StringIO()
    call_command("moderate", str(path), "--json", stdout=out)
    return json.loads(out.getvalue())


def test_json_output_of_the_ad_picture():
    data = run_json(SAMPLES / "ad_text.png")
    assert {"suggestion", "risk_level", "labels", "frames", "slices"} <= set(data)
    assert data["suggestion"] == "review" and data["risk_level"] == "medium"
    assert [lbl["label"] for lbl in data["labels"]] == ["pt_toDirectContact_tii"]
    assert 0 <= data["labels"][0]["confidence"] <= 100
    frame = data["frames"][0]
    assert frame["offset"] == 0 and frame["risk_level"] == "medium"
    assert frame["labels"][0]["label"] == "pt_toDirectContact_tii"
    assert data["slices"] == []


def test_table_output_and_scenes():
    out = io.StringIO()
    call_command("moderate", str(SAMPLES / "qrcode.jpg"), "--scenes", "porn", stdout=out)
    text = out.getvalue()
    assert "suggestion: pass" in text and "nonLabel" in text  # QR scene not asked for
    out = io.StringIO()
    call_command("moderate", str(SAMPLES / "qrcode.jpg"), stdout=out)
    assert "pt_qrCode" in out.getvalue() and "https://example.com/promo" in out.getvalue()


@pytest.mark.parametrize("content,needle", [
    (None, "no such file"),
    (b"", "[empty_file]"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "["),
    (b"hello, not a picture", "[not_an_image]"),
])
def test_bad_files_fail_with_one_line(tmp_path, content, needle):
    path = tmp_path / "input.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CommandError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        call_command("moderate", str(path))


def test_unknown_provider_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="unknown moderation provider 'nope'"):
        call_command("moderate", str(SAMPLES / "benign.jpg"), "--provider", "nope")


@pytest.mark.slow  # 0.9 s
def test_exit_status_and_no_traceback(tmp_path):
    path = tmp_path / "truncated.jpg"
    path.write_bytes((SAMPLES / "benign.jpg").read_bytes()[:1500])
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    proc = subprocess.run([sys.executable, "manage.py", "moderate", str(path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "[corrupt_image]" in proc.stderr
