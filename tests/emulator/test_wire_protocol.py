"""The emulator on the wire, below any SDK: raw sockets to the emulator on loopback.

What clients other than the Python SDKs send (issue 13): bodies with
``Transfer-Encoding: chunked`` (Node.js), ROA without ``Content-MD5`` (TypeScript SDK), a V1
``Signature`` in a POST form body and RPC calls made with GET (``@alicloud/pop-core``), a
``Host`` header without the port. Also what the emulator answers in 2.0's own codes, IMM
``GetTask``'s shape, and video downloads streamed to disk under a size bound.
Requests are signed with the client's signer (moderation.providers.aliyun.signing); the
emulator checks them with its own verifier (moderation.emulator.verify).
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from moderation.emulator import video_tasks
from moderation.emulator.app import Call, Reply
from moderation.emulator.config import EmulatorConfig
from moderation.emulator.server import RunningEmulator, start
from moderation.providers.aliyun import signing
from tests.conftest import SAMPLES, emulator_fixture

AK_ID = "LTAI5tWireTest0000001"
AK_SECRET = "WireTestSecret000000000000001"
MEDIA = Path(__file__).resolve().parents[1] / "media"

pytestmark = pytest.mark.usefixtures("no_proxy")


@pytest.fixture(scope="module")
def oss_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("oss")
    shutil.copy(SAMPLES / "qrcode.jpg", root / "qrcode.jpg")
    shutil.copy(MEDIA / "speech_ad.mp4", root / "speech_ad.mp4")
    (root / "broken.png").write_bytes(b"plain text, not an image")
    (root / "broken.mp4").write_bytes(b"plain text, not a video" * 100)
    return root


emulator = emulator_fixture(scope="module", oss="oss_root", access_key_id=AK_ID,
                            access_key_secret=AK_SECRET)


# --- raw HTTP ------------------------------------------------------------------------------


def exchange(emulator: RunningEmulator, method: str, target: str, headers: dict[str, str],
             body: bytes | None = None, *, chunks: Iterable[bytes] | None = None,
             raw_body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    """Send one HTTP/1.1 request byte by byte on a fresh socket; (status, headers, JSON).

    ``body`` goes with a Content-Length; ``chunks`` as ``Transfer-Encoding: chunked`` (each
    size line with an extension, then a trailer field); ``raw_body`` verbatim after a chunked
    head, then the sending side is closed (as a client that gives up does).
    ``headers`` must hold Host (or deliberately not)."""
    head = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    payload = b""
    if chunks is not None:
        head.append("Transfer-Encoding: chunked")
        for chunk in chunks:
            payload += f"{len(chunk):x};note=x\r\n".encode() + chunk + b"\r\n"
        payload += b"0\r\nX-Trailer: ignored\r\n\r\n"
    elif raw_body is not None:
        head.append("Transfer-Encoding: chunked")
        payload = raw_body
    elif body is not None:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    head.append("Connection: close")
    with socket.create_connection((emulator.host, emulator.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        if raw_body is not None:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        data = response.read()
        return response.status, dict(response.getheaders()), json.loads(data)


def acs3_headers(host: str, action: str, version: str, query: dict[str, str],
                 body: bytes | None, method: str = "POST") -> dict[str, str]:
    caller = {"host": host, "user-agent": "wire-tests"}
    if body:
        caller["content-type"] = signing.FORM_CONTENT_TYPE
    return signing.sign_acs3(method, "/", query, caller, body, AK_ID, AK_SECRET,
                             action=action, version=version)


def form_body(params: dict[str, str]) -> bytes:
    return signing.form_encode(dict(sorted(params.items()))).encode()


def image_params(**parameters: str) -> dict[str, str]:
    return {"Service": "baselineCheck_global", "ServiceParameters": json.dumps(parameters)}


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def labels_of(answer: dict[str, Any]) -> list[str]:
    return [item["Label"] for item in answer["Data"]["Result"]]


# --- chunked bodies ------------------------------------------------------------------------


def test_chunked_acs3_form_body_is_read_and_verified(emulator):
    body = form_body(image_params(ossBucketName="b", ossObjectName="qrcode.jpg"))
    headers = acs3_headers(emulator.endpoint, "ImageModeration", "2022-03-02", {}, body)
    status, _, answer = exchange(emulator, "POST", "/", headers, chunks=split(body, 7))
    assert status == 200, answer
    assert answer["Code"] == 200 and labels_of(answer) == ["pt_qrCode"]


def test_chunked_body_is_what_the_signature_covers(emulator):
    body = form_body(image_params(ossBucketName="b", ossObjectName="qrcode.jpg"))
    headers = acs3_headers(emulator.endpoint, "ImageModeration", "2022-03-02", {}, body)
    other = body.replace(b"qrcode.jpg", b"qrcode.jpX")
    status, _, answer = exchange(emulator, "POST", "/", headers, chunks=split(other, 9))
    assert (status, answer["Code"]) == (400, "SignatureDoesNotMatch")
    assert "x-acs-content-sha256" in answer["Message"]


def test_chunked_roa_body_without_content_md5(emulator, image_server):
    """The TypeScript 1.0 SDK: a chunked JSON body, no Content-MD5 (an empty line)."""
    path, query = "/green/image/scan", {"RegionId": "cn-shanghai"}
    body = json.dumps({"scenes": ["qrcode"],
                       "tasks": [{"dataId": "c1", "url": f"{image_server}/qrcode.jpg"}]}).encode()
    caller = {"x-acs-action": "ImageSyncScan", "x-acs-region-id": "cn-shanghai",
              "Content-Type": "application/json"}
    headers = signing.sign_roa("POST", path, query, caller, None, AK_ID, AK_SECRET)
    assert "Content-MD5" not in headers
    target = f"{path}?{signing.form_encode(query)}"
    status, _, answer = exchange(emulator, "POST", target, {"Host": emulator.endpoint, **headers},
                                 chunks=split(body, 16))
    assert status == 200, answer
    assert answer["code"] == 200 and answer["data"][0]["code"] == 200
    (result,) = answer["data"][0]["results"]
    assert (result["scene"], result["label"]) == ("qrcode", "qrcode")
    # A Content-MD5 that is sent is still checked.
    wrong = {**headers, "Content-MD5": signing.content_md5(b"another body")}
    status, _, answer = exchange(emulator, "POST", target, {"Host": emulator.endpoint, **wrong},
                                 chunks=[body])
    assert (status, answer["Code"]) == (400, "InvalidContentMD5")


def test_chunked_body_over_the_limit_is_refused(oss_root):
    config = EmulatorConfig(access_key_id=AK_ID, access_key_secret=AK_SECRET,
                            oss_root=oss_root, max_request_bytes=1000)
    with start(config) as small:
        headers = {"Host": small.endpoint, "Content-Type": signing.FORM_CONTENT_TYPE}
        status, _, answer = exchange(small, "POST", "/", headers, chunks=[b"a" * 600] * 2)
        assert (status, answer["Code"]) == (400, "InvalidParameter")
        assert "1000 bytes" in answer["Message"]
        status, _, answer = exchange(small, "POST", "/", headers, body=b"a" * 1001)
        assert (status, answer["Code"]) == (400, "InvalidParameter")


def test_a_silent_or_trickling_client_frees_its_thread(tmp_path):
    """``read_timeout``: a connection that sends nothing is closed, a body that stops
    arriving is answered 408, and the server goes on answering others meanwhile."""
    config = EmulatorConfig(access_key_id=AK_ID, access_key_secret=AK_SECRET,
                            oss_root=tmp_path, read_timeout=0.5)
    with start(config, routes={("Echo", "2022-03-02"): echo_base_url}) as running:
        silent = socket.create_connection((running.host, running.port), timeout=5)
        trickle = socket.create_connection((running.host, running.port), timeout=5)
        trickle.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        + signing.FORM_CONTENT_TYPE.encode()
                        + b"\r\nContent-Length: 100\r\n\r\nAction=Echo")
        headers = acs3_headers(running.endpoint, "Echo", "2022-03-02", {}, None)
        assert exchange(running, "POST", "/", headers, b"")[0] == 200  # not blocked by them
        started = time.monotonic()
        assert silent.recv(1024) == b""  # closed by the server, nothing sent
        answer = b""
        while chunk := trickle.recv(65536):
            answer += chunk
        assert time.monotonic() - started < 4
        assert answer.startswith(b"HTTP/1.0 408") or answer.startswith(b"HTTP/1.1 408"), answer
        assert b"RequestTimeout" in answer
        silent.close()
        trickle.close()


@pytest.mark.parametrize("raw", [b"zz\r\nabc\r\n0\r\n\r\n", b"5\r\nab", b"3\r\nabcXY0\r\n\r\n"],
                         ids=["size-not-hex", "cut-short", "no-crlf-after-data"])
def test_malformed_chunked_body_is_a_bad_request(emulator, raw):
    headers = {"Host": emulator.endpoint, "Content-Type": signing.FORM_CONTENT_TYPE}
    status, _, answer = exchange(emulator, "POST", "/", headers, raw_body=raw)
    assert (status, answer["Code"]) == (400, "InvalidParameter")
    assert "chunked" in answer["Message"]


# --- RPC V1 as pop-core sends it -----------------------------------------------------------


def v1_params(method: str, params: dict[str, str], secret: str = AK_SECRET) -> dict[str, str]:
    return signing.sign_rpc_v1(method, params, AK_ID, secret)


def test_v1_signature_in_a_post_form_body(emulator):
    params = {"Action": "ImageModeration", "Version": "2022-03-02",
              **image_params(ossBucketName="b", ossObjectName="qrcode.jpg")}
    body = signing.form_encode(v1_params("POST", params)).encode()
    headers = {"Host": emulator.endpoint, "Content-Type": signing.FORM_CONTENT_TYPE}
    status, _, answer = exchange(emulator, "POST", "/", headers, body)
    assert status == 200 and answer["Code"] == 200, answer
    assert labels_of(answer) == ["pt_qrCode"]
    forged = v1_params("POST", params, secret="not-the-secret")
    status, _, answer = exchange(emulator, "POST", "/", headers,
                                 signing.form_encode(forged).encode())
    assert (status, answer["Code"]) == (400, "SignatureDoesNotMatch")


def test_rpc_call_with_get(emulator):
    params = {"Action": "ImageModeration", "Version": "2022-03-02",
              **image_params(ossBucketName="b", ossObjectName="qrcode.jpg")}
    target = "/?" + signing.form_encode(v1_params("GET", params))
    status, _, answer = exchange(emulator, "GET", target, {"Host": emulator.endpoint})
    assert status == 200 and answer["Code"] == 200, answer
    assert labels_of(answer) == ["pt_qrCode"]
    # The method is signed: a GET signature does not pass as a POST.
    status, _, answer = exchange(emulator, "POST", target, {"Host": emulator.endpoint}, b"")
    assert (status, answer["Code"]) == (400, "SignatureDoesNotMatch")


def test_acs3_call_with_get(emulator):
    query = {"ProjectName": "p", "TaskId": "VideoModeration-none", "TaskType": "VideoModeration"}
    headers = acs3_headers(emulator.endpoint, "GetTask", "2020-09-30", query, None, "GET")
    status, _, answer = exchange(emulator, "GET", "/?" + signing.form_encode(query), headers)
    assert (status, answer["Code"]) == (404, "ResourceNotFound")  # routed, verified, answered


def test_roa_is_post_only(emulator):
    status, _, answer = exchange(emulator, "GET", "/green/image/scan", {"Host": emulator.endpoint})
    assert (status, answer["Code"]) == (404, "InvalidApi.NotFound")


# --- the server's own address, whatever the Host header says -------------------------------


def echo_base_url(call: Call) -> Reply:
    return Reply(200, {"BaseUrl": call.request.base_url, "Host": call.request.headers["host"]})


def test_base_url_is_the_servers_address_not_the_host_header(tmp_path):
    config = EmulatorConfig(access_key_id=AK_ID, access_key_secret=AK_SECRET, oss_root=tmp_path)
    with start(config, routes={("Echo", "2022-03-02"): echo_base_url}) as running:
        for host in ("127.0.0.1", "emulator.example", running.endpoint):
            headers = acs3_headers(host, "Echo", "2022-03-02", {}, None)
            status, _, answer = exchange(running, "POST", "/", headers, b"")
            assert status == 200, answer
            assert answer == {"BaseUrl": running.url, "Host": host}


@pytest.mark.slow  # a video analysis: a few seconds
def test_frame_urls_reach_the_emulator_when_host_has_no_port(emulator):
    host = emulator.host  # what a client that leaves out the port sends
    submit = form_body({"Service": "videoDetection_global", "ServiceParameters": json.dumps(
        {"ossBucketName": "b", "ossObjectName": "speech_ad.mp4", "dataId": "v1"})})
    headers = acs3_headers(host, "VideoModeration", "2022-03-02", {}, submit)
    status, _, answer = exchange(emulator, "POST", "/", headers, submit)
    assert status == 200 and answer["Code"] == 200, answer
    poll = form_body({"Service": "videoDetection_global",
                      "ServiceParameters": json.dumps({"taskId": answer["Data"]["TaskId"]})})
    deadline = time.monotonic() + 60
    while True:
        headers = acs3_headers(host, "VideoModerationResult", "2022-03-02", {}, poll)
        _, _, answer = exchange(emulator, "POST", "/", headers, poll)
        if answer["Code"] != 280:
            break
        assert time.monotonic() < deadline, "the video task did not finish"
        time.sleep(0.25)
    assert answer["Code"] == 200, answer
    urls = [f["TempUrl"] for f in answer["Data"]["FrameResult"]["Frames"] if "TempUrl" in f]
    urls += [s["Url"] for s in answer["Data"]["AudioResult"]["SliceDetails"] if "Url" in s]
    assert urls
    for url in urls:
        assert urlsplit(url).netloc == emulator.endpoint
        assert requests.get(url, timeout=5).status_code == 200


# --- 2.0 answers in its own codes, without Python exception text ---------------------------


def post_v2(emulator: RunningEmulator, action: str, params: dict[str, str]) -> dict[str, Any]:
    body = form_body(params)
    headers = acs3_headers(emulator.endpoint, action, "2022-03-02", {}, body)
    status, _, answer = exchange(emulator, "POST", "/", headers, body)
    assert status == 200, answer
    return answer


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_image_problems_use_2_0_codes(emulator, image_server):
    broken = post_v2(emulator, "ImageModeration",
                     image_params(ossBucketName="b", ossObjectName="broken.png"))
    assert broken["Code"] == 407  # 1.0 would say 590
    refused = post_v2(emulator, "ImageModeration",
                      image_params(imageUrl=f"http://127.0.0.1:{closed_port()}/a.jpg"))
    assert refused["Code"] == 404  # 1.0 would say 480
    assert refused["Msg"] == "the image could not be downloaded"  # no exception text


def video_params(**parameters: str) -> dict[str, str]:
    return {"Service": "videoDetection_global", "ServiceParameters": json.dumps(parameters)}


def test_video_download_failures_say_video_in_2_0_codes(emulator, image_server):
    refused = post_v2(emulator, "VideoModeration",
                      video_params(url=f"http://127.0.0.1:{closed_port()}/a.mp4"))
    assert (refused["Code"], refused["Message"]) == (404, "the video could not be downloaded")
    missing = post_v2(emulator, "VideoModeration", video_params(url=f"{image_server}/none.mp4"))
    assert (missing["Code"], missing["Message"]) == (404, "the video was not found (HTTP 404)")


def test_broken_video_fails_with_2_0_code(emulator):
    submitted = post_v2(emulator, "VideoModeration",
                        video_params(ossBucketName="b", ossObjectName="broken.mp4"))
    assert submitted["Code"] == 200, submitted
    poll = video_params(taskId=submitted["Data"]["TaskId"])
    deadline = time.monotonic() + 30
    while (answer := post_v2(emulator, "VideoModerationResult", poll))["Code"] == 280:
        assert time.monotonic() < deadline, "the video task did not finish"
        time.sleep(0.1)
    assert answer["Code"] == 407, answer  # 1.0 would say 590


def test_videos_are_streamed_to_disk_under_a_size_bound(emulator, media_server, monkeypatch,
                                                        tmp_path):
    """Over the bound, both a download and an OSS copy stop with 406 and leave no file."""
    monkeypatch.setattr(video_tasks, "MAX_VIDEO_BYTES", 64 * 1024)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    over = (MEDIA / "speech_ad.mp4").stat().st_size
    assert over > 64 * 1024
    downloaded = post_v2(emulator, "VideoModeration",
                         video_params(url=f"{media_server}/speech_ad.mp4"))
    assert downloaded["Code"] == 406 and "video" in downloaded["Message"], downloaded
    copied = post_v2(emulator, "VideoModeration",
                     video_params(ossBucketName="b", ossObjectName="speech_ad.mp4"))
    assert copied["Code"] == 406, copied
    assert list(tmp_path.iterdir()) == []  # the partial temporary files were removed


def test_video_download_lands_in_a_file_chunk_by_chunk(emulator, media_server, tmp_path,
                                                      monkeypatch):
    """download_video writes what it receives to its temporary file (the bytes are the
    video's), in writes no larger than the download chunk."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    sizes: list[int] = []

    class Recording:
        def __init__(self, out: Any) -> None:
            self.out = out

        def write(self, data: bytes) -> int:
            sizes.append(len(data))
            return self.out.write(data)

    def recording_download(url, referer, config, out, **kw):
        return video_tasks.download(url, referer, config, Recording(out), **kw)

    path = video_tasks.download_video(emulator.config, f"{media_server}/speech_ad.mp4",
                                      fetch=recording_download)
    try:
        assert Path(path).read_bytes() == (MEDIA / "speech_ad.mp4").read_bytes()
        assert len(sizes) > 1 and max(sizes) <= 64 * 1024
    finally:
        Path(path).unlink()


# --- IMM GetTask ---------------------------------------------------------------------------


def imm_call(emulator: RunningEmulator, action: str, query: dict[str, str]) -> dict[str, Any]:
    headers = acs3_headers(emulator.endpoint, action, "2020-09-30", query, None)
    status, _, answer = exchange(emulator, "POST", "/?" + signing.form_encode(query), headers, b"")
    assert status == 200, answer
    return answer


def test_imm_get_task_has_no_progress_and_the_request_unflattened(emulator):
    created = imm_call(emulator, "CreateImageModerationTask", {
        "ProjectName": "p", "SourceURI": "oss://b/qrcode.jpg", "Scenes": '["ad","porn"]',
        "Interval": "2", "Tags": '{"k":"v"}', "UserData": "u",
    })
    query = {"ProjectName": "p", "TaskId": created["TaskId"], "TaskType": "ImageModeration",
             "RequestDefinition": "True"}
    task = imm_call(emulator, "GetTask", query)
    assert "Progress" not in task
    assert task["Tags"] == {"k": "v"} and task["UserData"] == "u"
    definition = json.loads(task["TaskRequestDefinition"])
    assert definition == {"ProjectName": "p", "SourceURI": "oss://b/qrcode.jpg",
                          "Scenes": ["ad", "porn"], "Interval": 2, "Tags": {"k": "v"},
                          "UserData": "u"}
    without = imm_call(emulator, "GetTask", {**query, "RequestDefinition": "False"})
    assert "TaskRequestDefinition" not in without and "Progress" not in without
