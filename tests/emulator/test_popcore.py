"""A client that is not Python: Alibaba's ``@alicloud/pop-core`` (Node.js) against the emulator.

pop-core signs RPC V1 its own way and sends it two ways: GET with every parameter in the
query (its default) and, with ``method: "POST"``, every parameter *including Signature* in
a form body. Pinned by tests/emulator/popcore/package-lock.json and installed with ``npm ci``
into a cache directory (never into the work tree) the first time; tests/emulator/popcore/
client.js makes the calls and prints what pop-core returned or threw.

Skipped, with the reason, where ``node``/``npm`` are missing, Node is older than 20, or the
npm registry cannot be reached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLES, emulator_fixture

AK_ID = "LTAI5tPopCoreTest00001"
AK_SECRET = "PopCoreTestSecret0000000000001"
HERE = Path(__file__).resolve().parent / "popcore"
NODE_MAJOR = 20

pytestmark = pytest.mark.usefixtures("no_proxy")


def _oss(root: Path) -> None:
    shutil.copy(SAMPLES / "qrcode.jpg", root / "qrcode.jpg")
    (root / "broken.png").write_bytes(b"plain text, not an image")


emulator = emulator_fixture(scope="module", oss=_oss, access_key_id=AK_ID,
                            access_key_secret=AK_SECRET)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    lock = hashlib.sha256((HERE / "package-lock.json").read_bytes()).hexdigest()[:16]
    return Path(base) / "moderation-tests" / f"pop-core-{lock}"


@pytest.fixture(scope="session")
def popcore() -> Path:
    """node_modules holding the pinned pop-core; installed once per lock file."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed (pop-core is a Node.js client)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
    if int(version.lstrip("v").split(".")[0] or 0) < NODE_MAJOR:
        pytest.skip(f"Node {version} is older than {NODE_MAJOR}, which this test targets")
    target = cache_dir()
    if (target / "node_modules" / "@alicloud" / "pop-core" / "package.json").is_file():
        return target / "node_modules"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="pop-core-", dir=target.parent))
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copy(HERE / name, staging / name)
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", str(staging)],
            capture_output=True, text=True, timeout=300)
        if installed.returncode != 0:
            tail = (installed.stderr or installed.stdout).strip().splitlines()[-3:]
            pytest.skip(f"npm could not install @alicloud/pop-core: {' / '.join(tail)}")
        with contextlib.suppress(OSError):  # a parallel run may have won the race
            staging.rename(target)  # atomic
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / "node_modules"


def run_popcore(node_modules: Path, endpoint: str, calls: list[dict[str, Any]],
                secret: str = AK_SECRET) -> list[dict[str, Any]]:
    """Run client.js over ``calls``; one result per call (see client.js)."""
    document = {"endpoint": endpoint, "accessKeyId": AK_ID, "accessKeySecret": secret,
                "calls": calls}
    env = {**os.environ, "NODE_PATH": str(node_modules)}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    done = subprocess.run(["node", str(HERE / "client.js")], input=json.dumps(document),
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert output["node"].startswith("v")
    return output["results"]


def image_call(method: str, **parameters: str) -> dict[str, Any]:
    return {"apiVersion": "2022-03-02", "action": "ImageModeration", "method": method,
            "params": {"Service": "baselineCheck_global",
                       "ServiceParameters": json.dumps(parameters)}}


def test_popcore_2_0_calls_with_get_and_post(emulator, popcore):
    get, post, broken, forged = run_popcore(popcore, emulator.url, [
        image_call("GET", ossBucketName="b", ossObjectName="qrcode.jpg", dataId="g1"),
        image_call("POST", ossBucketName="b", ossObjectName="qrcode.jpg", dataId="p1"),
        image_call("GET", ossBucketName="b", ossObjectName="broken.png"),
        {**image_call("POST", ossBucketName="b", ossObjectName="qrcode.jpg"),
         "accessKeySecret": "not-the-secret"},
    ])
    for answer, data_id in ((get, "g1"), (post, "p1")):
        assert answer["ok"], answer
        body = answer["body"]
        assert body["Code"] == 200 and body["Data"]["DataId"] == data_id
        assert [item["Label"] for item in body["Data"]["Result"]] == ["pt_qrCode"]
    # pop-core throws for any Code but 200: 2.0's own "unsupported format", a gateway refusal.
    assert (broken["ok"], broken["code"]) == (False, "407")
    assert (forged["ok"], forged["code"]) == (False, "SignatureDoesNotMatch")
    assert forged["data"]["Message"].startswith("Specified signature is not matched")


def test_popcore_imm_task_and_get_task(emulator, popcore):
    (created,) = run_popcore(popcore, emulator.url, [{
        "apiVersion": "2020-09-30", "action": "CreateImageModerationTask", "method": "POST",
        "params": {"ProjectName": "p", "SourceURI": "oss://b/qrcode.jpg",
                   "Scenes": '["ad"]'},
    }])
    assert created["ok"], created
    task_id = created["body"]["TaskId"]
    assert task_id.startswith("ImageModeration-") and created["body"]["EventId"]
    (task,) = run_popcore(popcore, emulator.url, [{
        "apiVersion": "2020-09-30", "action": "GetTask",
        "params": {"ProjectName": "p", "TaskId": task_id, "TaskType": "ImageModeration",
                   "RequestDefinition": "True"},
    }])
    assert task["ok"], task
    body = task["body"]
    assert body["TaskId"] == task_id and body["Status"] in ("Running", "Succeeded")
    assert "Progress" not in body
    assert json.loads(body["TaskRequestDefinition"])["Scenes"] == ["ad"]
