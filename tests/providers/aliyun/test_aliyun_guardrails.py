"""Content Moderation 2.0 image provider (moderation/providers/aliyun/guardrails.py), its error
table (aliyun/errors.py) and media URLs the provider can fetch (aliyun/media_url.py with the
view in moderation/views/media.py).

Bodies are copied from shared/specs/aliyun-protocol.md Appendix A / §8 and from the captures
in aliyun-sdk-emulator-notes.md §3.2/§4. The wire is checked against a loopback server that
records what we send; the end-to-end run against the emulator lives elsewhere.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock
from urllib.parse import urlsplit

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.signing import TimestampSigner
from django.test import override_settings

from moderation import media_url
from moderation.emulator import verify as gateway
from moderation.providers.aliyun import errors as aliyun_errors
from moderation.providers.aliyun import signing
from moderation.providers.aliyun.client import split_endpoint
from moderation.providers.aliyun.guardrails import (
    API_VERSION,
    GuardrailsProvider,
    default_endpoint,
    parse_image_response,
    service_parameters,
)
from moderation.providers.base import Media, ModerationRequest
from moderation.providers.errors import (
    AuthError,
    Expired,
    MediaError,
    NotSupported,
    ProviderError,
    Throttled,
)

# Provider calls take their turn under the account rate limit, kept in the database.
pytestmark = pytest.mark.django_db

KEY_ID = "LTAI5tDummyKeyId000002"
SECRET = "dummySecret0000000000000000002"
IMAGE_URL = "https://example.com/a b.jpg"

# emulator notes §3.2: what the capture server answered and the SDK parsed.
CLEAN_BODY = {
    "Code": 200,
    "Msg": "OK",
    "RequestId": "364BCAA3-FB13-4503-BF02-65B2453C7F52",
    "Data": {
        "DataId": "d1",
        "Result": [{"Confidence": 99.0, "Label": "nonLabel", "RiskLevel": "none"}],
        "RiskLevel": "none",
    },
}
# Appendix A tree, with labels from the official global examples (API reference §3.8).
RISKY_BODY = {
    "Code": 200,
    "Msg": "OK",
    "RequestId": "ABCDEF01-2345-6789-ABCD-EF0123456789",
    "Data": {
        "AccountId": "1234567890",
        "DataId": "post-42",
        "RiskLevel": "high",
        "ManualTaskId": "",
        "Frame": "",
        "FrameNum": 0,
        "Result": [
            {
                "Label": "violent_explosion",
                "Confidence": 89.78,
                "Description": "Explosion and smoke",
                "RiskLevel": "high",
            },
            {
                "Label": "sexual_cleavage",
                "Confidence": 76.5,
                "Description": "Cleavage",
                "RiskLevel": "medium",
            },
        ],
        "Ext": {"CustomImage": [{"ImageId": "i1", "LibId": "lib1", "LibName": "block"}]},
    },
}


# --- a loopback server that records requests and answers canned bodies ---------------------


@dataclass
class Captured:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class CaptureServer:
    port: int
    requests: list[Captured] = field(default_factory=list)
    answer: tuple[int, bytes, dict[str, str]] = (200, json.dumps(CLEAN_BODY).encode(), {})

    def reply(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answer = (status, raw, headers or {})


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    state = CaptureServer(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            parts = urlsplit(self.path)
            state.requests.append(Captured(
                "POST", parts.path, signing.form_decode(parts.query),
                dict(self.headers.items()), body,
            ))
            status, raw, headers = state.answer
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(2)


def make_provider(port: int, **options: object) -> GuardrailsProvider:
    conf = {"ACCESS_KEY_ID": KEY_ID, "ACCESS_KEY_SECRET": SECRET,
            "ENDPOINT": f"http://127.0.0.1:{port}", **options}
    return GuardrailsProvider("aliyun_guardrails", conf)


def image(url: str = IMAGE_URL) -> Media:
    return Media(name="a.jpg", kind="image", url=url)


def verify(captured: Captured) -> gateway.VerifiedRequest:
    """What the gateway would check (§5.1 / §6), freshness and all."""
    return gateway.verify_request(
        captured.method, captured.path, captured.query, captured.headers, captured.body,
        {KEY_ID: SECRET}.get, nonces=gateway.NonceCache(),
    )


# --- response parsing ----------------------------------------------------------------------


def test_parse_risky_body_gives_one_frame_with_labels_and_the_service_risk():
    result = parse_image_response(RISKY_BODY, "baselineCheck_global")
    assert result.status == "done" and result.finished
    assert result.risk_level == "high"
    assert len(result.frames) == 1
    frame = result.frames[0]
    assert frame.offset == 0.0 and frame.risk_level == "high"
    assert [(lbl.label, lbl.confidence) for lbl in frame.labels] == [
        ("violent_explosion", 89.78), ("sexual_cleavage", 76.5)]
    first = frame.labels[0]
    assert (first.service, first.scene, first.description) == (
        "guardrails", "baselineCheck_global", "Explosion and smoke")
    assert first.risk_level == "medium"  # our label table (unknown label), not the service's
    assert result.raw == RISKY_BODY


def test_parse_clean_body():
    result = parse_image_response(CLEAN_BODY, "baselineCheck_global")
    assert result.risk_level == "none"
    assert [lbl.label for lbl in result.labels] == ["nonLabel"]
    assert result.labels[0].risk_level == "none"


def test_parse_without_risk_level_takes_the_worst_label():
    body = {"Code": 200, "Data": {"Result": [
        {"Label": "sexual_suggestiveContent", "Confidence": 80},
        {"Label": "pornographic_adultContent", "Confidence": 95.5},
    ]}}
    result = parse_image_response(body, "svc")
    assert result.risk_level == "high"
    assert result.frames[0].risk_level == "high"


def test_parse_label_without_confidence_counts_as_certain_and_case_of_risk_is_ignored():
    body = {"Code": 200, "Data": {"RiskLevel": "Medium", "Result": [{"Label": "pt_qrCode"}]}}
    result = parse_image_response(body, "svc")
    assert result.labels[0].confidence == 100.0 and result.labels[0].risk_level == "medium"
    assert result.risk_level == "medium"


def test_parse_code_200_without_data_is_a_provider_error():
    with pytest.raises(ProviderError) as err:
        parse_image_response({"Code": 200, "Msg": "OK"}, "svc")
    assert err.value.code == "bad_response"


def test_service_parameters_is_compact_json_without_empty_keys():
    assert json.loads(service_parameters("https://x/y.png")) == {"imageUrl": "https://x/y.png"}
    assert json.loads(service_parameters("u", "d1", "https://site/")) == {
        "imageUrl": "u", "dataId": "d1", "referer": "https://site/"}


# --- the error table -----------------------------------------------------------------------

GATEWAY = {"RequestId": "R2", "HostId": "green-cip.ap-southeast-1.aliyuncs.com",
           "Recommend": "https://api.aliyun.com/troubleshoot"}


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "code"),
    [
        # §8.1 gateway errors: non-2xx + Upper-camel body.
        (400, {**GATEWAY, "Code": "SignatureDoesNotMatch",
               "Message": "Specified signature is not matched with our calculation. "
                          "server string to sign is:ACS3-HMAC-SHA256\nabc"},
         {}, AuthError, "signature_mismatch"),
        (404, {**GATEWAY, "Code": "InvalidAccessKeyId.NotFound",
               "Message": "Specified access key is not found."}, {}, AuthError,
         "invalid_access_key"),
        (400, {**GATEWAY, "Code": "IncompleteSignature", "Message": "x"}, {}, AuthError,
         "signature_incomplete"),
        (400, {**GATEWAY, "Code": "InvalidTimeStamp.Expired", "Message": "x"}, {}, AuthError,
         "clock_skew"),
        (403, {**GATEWAY, "Code": "Forbidden.RAM", "Message": "x"}, {}, AuthError,
         "no_permission"),
        (404, {**GATEWAY, "Code": "InvalidApi.NotFound", "Message": "x"}, {}, AuthError,
         "invalid_endpoint"),
        (429, {**GATEWAY, "Code": "Throttling.User", "Message": "Request was denied."}, {},
         Throttled, "throttled"),
        (400, {**GATEWAY, "Code": "Throttling", "Message": "x"}, {}, Throttled, "throttled"),
        (403, {**GATEWAY, "Code": "Throttling.Api", "Message": "x"}, {}, Throttled, "throttled"),
        (429, b"", {}, Throttled, "throttled"),
        (400, {**GATEWAY, "Code": "SomethingNew", "Message": "x"}, {"x-acs-retry-after": "1500"},
         Throttled, "throttled"),
        (400, {**GATEWAY, "Code": "SignatureNonceUsed", "Message": "x"}, {}, ProviderError,
         "nonce_reused"),
        (500, {**GATEWAY, "Code": "InternalError", "Message": "x"}, {}, ProviderError,
         "server_error"),
        (503, {**GATEWAY, "Code": "ServiceUnavailable", "Message": "x"}, {}, ProviderError,
         "service_unavailable"),
        (502, b"<html>Bad Gateway</html>", {}, ProviderError, "server_error"),
        (400, b"<Error><Code>SignatureDoesNotMatch</Code><Message>m</Message></Error>", {},
         AuthError, "signature_mismatch"),
        (403, {"Code": 411, "Msg": "You don't have permission.", "RequestId": "R"}, {},
         AuthError, "no_permission"),
        # §4.3 / §8.2 business errors: HTTP 200 + numeric Code.
        (200, {"Code": 400, "Msg": "parameter is empty", "RequestId": "R"}, {}, MediaError,
         "bad_request"),
        (200, {"Code": 401, "Msg": "parameter invalid(imageUrl)", "RequestId": "R"}, {},
         MediaError, "invalid_parameter"),
        (200, {"Code": 403, "Msg": "Exceed QPS limit", "RequestId": "R"}, {}, Throttled,
         "qps_exceeded"),
        (200, {"Code": 404, "Msg": "download failed", "RequestId": "R"}, {}, MediaError,
         "download_failed"),
        (200, {"Code": 405, "Msg": "download timeout", "RequestId": "R"}, {}, MediaError,
         "download_timeout"),
        (200, {"Code": 408, "Msg": "No permissions.", "RequestId": "R"}, {}, AuthError,
         "no_permission"),
        (200, {"Code": 480, "Msg": "DOWNLOAD_FAILED", "RequestId": "R"}, {}, MediaError,
         "download_failed"),
        (200, {"Code": 500, "Msg": "GENERAL_ERROR", "RequestId": "R"}, {}, ProviderError,
         "server_error"),
        (200, {"Code": 588, "Msg": "EXCEED_QUOTA", "RequestId": "R"}, {}, Throttled,
         "quota_exceeded"),
        (200, {"Code": 594, "Msg": "EXPIRED", "RequestId": "R"}, {}, Expired, "expired"),
        (200, {"Code": 596, "Msg": "PERMISSION_DENY", "RequestId": "R"}, {}, AuthError,
         "permission_denied"),
        (200, {"Code": 999, "Msg": "?", "RequestId": "R"}, {}, ProviderError, "code_999"),
        (200, b"not json", {}, ProviderError, "bad_response"),
        (200, {}, {}, ProviderError, "bad_response"),
    ],
)
def test_error_table(status, body, headers, expected, code):
    parsed = None if isinstance(body, bytes) else body
    text = body.decode() if isinstance(body, bytes) else ""
    error = aliyun_errors.error_from_response(status, parsed, headers, text)
    assert type(error) is expected
    assert error.code == code


def test_success_answers_map_to_no_error_and_1_0_keys_are_read_too():
    assert aliyun_errors.error_from_response(200, CLEAN_BODY) is None
    assert aliyun_errors.error_from_response(200, {"Code": "200"}) is None
    assert aliyun_errors.error_from_response(200, {"code": 200, "msg": "OK"}) is None
    error = aliyun_errors.error_from_response(200, {"code": 592, "msg": "DOWNLOAD_TIMEOUT"})
    assert isinstance(error, MediaError) and error.code == "download_timeout"


def test_error_message_names_code_status_and_request_id():
    error = aliyun_errors.error_from_response(
        400, {**GATEWAY, "Code": "SignatureDoesNotMatch", "Message": "m" * 2000})
    assert "SignatureDoesNotMatch" in error.message and "HTTP 400" in error.message
    assert "[request id R2]" in error.message
    assert len(error.message) < 700


def test_transport_errors():
    assert aliyun_errors.transport_error(requests.ReadTimeout("slow")).code == "timeout"
    assert aliyun_errors.transport_error(requests.ConnectTimeout("slow")).code == "timeout"
    assert aliyun_errors.transport_error(requests.ConnectionError("refused")).code == "connection"


# --- endpoints and options -----------------------------------------------------------------


def test_endpoints():
    assert default_endpoint("ap-southeast-1") == "green-cip.ap-southeast-1.aliyuncs.com"
    assert split_endpoint("green-cip.us-east-1.aliyuncs.com") == (
        "https", "green-cip.us-east-1.aliyuncs.com")
    assert split_endpoint("http://127.0.0.1:8765/") == ("http", "127.0.0.1:8765")
    provider = GuardrailsProvider("g", {"REGION": "eu-central-1"})
    assert provider.endpoint == ("https", "green-cip.eu-central-1.aliyuncs.com")
    assert provider.timeout == (5.0, 20.0)
    assert GuardrailsProvider("g", {"TIMEOUT": 3}).timeout == (3.0, 3.0)
    with pytest.raises(AuthError):
        split_endpoint("ftp://host")


def test_declares_capabilities_and_required_options():
    assert GuardrailsProvider.capabilities == {"image", "video", "sync", "callback"}
    assert GuardrailsProvider.required_options == ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET")
    provider = GuardrailsProvider("g", {})
    provider.check_media(image())
    provider.check_media(Media(name="v.mp4", kind="video", url="https://x/v.mp4"))
    with pytest.raises(NotSupported):
        provider.check_media(Media(name="s.m3u8", kind="live", url="https://x/s.m3u8"))


# --- the request on the wire ---------------------------------------------------------------


def test_acs3_request_verifies_and_carries_the_documented_parameters(capture):
    provider = make_provider(capture.port, SERVICE="baselineCheck_global_01")
    result = provider.submit(image(), ModerationRequest(data_id="post-42"))

    assert result.risk_level == "none" and result.raw == CLEAN_BODY
    (sent,) = capture.requests
    assert (sent.method, sent.path, sent.query) == ("POST", "/", {})
    verified = verify(sent)
    assert (verified.algorithm, verified.access_key_id) == ("acs3", KEY_ID)
    assert (verified.action, verified.version) == ("ImageModeration", API_VERSION)
    headers = {k.lower(): v for k, v in sent.headers.items()}
    assert headers["host"] == f"127.0.0.1:{capture.port}"
    assert headers["x-acs-action"] == "ImageModeration"
    assert headers["x-acs-version"] == "2022-03-02"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    form = signing.form_decode(sent.body.decode())
    assert list(form) == ["Service", "ServiceParameters"]  # sorted keys, §4.1
    assert form["Service"] == "baselineCheck_global_01"
    assert json.loads(form["ServiceParameters"]) == {"imageUrl": IMAGE_URL, "dataId": "post-42"}


def test_rpc_v1_request_verifies_with_action_and_version_in_the_query(capture):
    provider = make_provider(capture.port, SIGNATURE="rpc_v1", REFERER="https://site.example/")
    provider.submit(image(), ModerationRequest(data_id="d1"))

    (sent,) = capture.requests
    verified = verify(sent)
    assert (verified.algorithm, verified.action, verified.version) == (
        "rpc_v1", "ImageModeration", API_VERSION)
    assert sent.query["Action"] == "ImageModeration" and sent.query["Version"] == API_VERSION
    assert "Authorization" not in sent.headers
    form = signing.form_decode(sent.body.decode())
    assert form["Service"] == "baselineCheck_global"
    assert json.loads(form["ServiceParameters"]) == {
        "imageUrl": IMAGE_URL, "dataId": "d1", "referer": "https://site.example/"}


def test_a_tampered_body_would_not_verify(capture):
    make_provider(capture.port).submit(image(), ModerationRequest())
    (sent,) = capture.requests
    sent.body = sent.body.replace(b"baselineCheck_global", b"baselineCheck_globaX")
    with pytest.raises(gateway.SignatureError):
        verify(sent)


def test_session_is_created_lazily_and_reused(capture):
    provider = make_provider(capture.port)
    assert provider._session is None
    provider.submit(image(), ModerationRequest())
    session = provider._session
    provider.submit(image(), ModerationRequest())
    assert provider._session is session and len(capture.requests) == 2


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (500, {**GATEWAY, "Code": "InternalError", "Message": "boom"}, ProviderError,
         "server_error"),
        (503, b"Service Unavailable", ProviderError, "server_error"),
        (429, {**GATEWAY, "Code": "Throttling.User", "Message": "slow down"}, Throttled,
         "throttled"),
        (200, {"Code": 403, "Msg": "Exceed QPS limit", "RequestId": "R"}, Throttled,
         "qps_exceeded"),
        (400, {**GATEWAY, "Code": "SignatureDoesNotMatch", "Message": "no"}, AuthError,
         "signature_mismatch"),
        (200, {"Code": 404, "Msg": "download failed", "RequestId": "R"}, MediaError,
         "download_failed"),
    ],
)
def test_error_answers_raise_the_mapped_error(capture, status, body, expected, code):
    capture.reply(status, body)
    with pytest.raises(expected) as err:
        make_provider(capture.port).submit(image(), ModerationRequest())
    assert err.value.code == code


def test_a_server_that_never_answers_times_out(silent_server):
    provider = make_provider(silent_server, TIMEOUT=(0.5, 0.5))
    started = time.monotonic()
    with pytest.raises(ProviderError) as err:
        provider.submit(image(), ModerationRequest())
    assert err.value.code == "timeout"
    assert time.monotonic() - started < 2 * 0.5 + 0.25


def test_connection_refused_is_a_provider_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(ProviderError) as err:
        make_provider(port, TIMEOUT=(1, 1)).submit(image(), ModerationRequest())
    assert err.value.code == "connection"


@pytest.mark.parametrize("url", ["", "rtmp://live.example/s", "/media/a.jpg"])
def test_media_without_a_fetchable_url_is_not_supported(capture, url):
    with pytest.raises(NotSupported) as err:
        make_provider(capture.port).submit(image(url), ModerationRequest())
    assert err.value.code == "no_public_url"
    assert capture.requests == []


def test_missing_credentials_or_bad_signature_option_are_auth_errors(capture):
    with pytest.raises(AuthError):
        GuardrailsProvider("g", {"ENDPOINT": f"http://127.0.0.1:{capture.port}"}).submit(
            image(), ModerationRequest())
    with pytest.raises(AuthError):
        make_provider(capture.port, SIGNATURE="v4").submit(image(), ModerationRequest())
    assert capture.requests == []


# --- media URLs the provider can fetch -----------------------------------------------------

PUBLIC = "https://site.example"


def moderation_conf(**extra: object) -> dict:
    from django.conf import settings

    return {**settings.MODERATION, **extra}


def test_absolute_storage_url_is_used_as_is(tmp_path):
    storage = FileSystemStorage(location=tmp_path, base_url="https://cdn.example.com/media/")
    assert media_url.public_url_for(storage, "a/b.png") == "https://cdn.example.com/media/a/b.png"


def test_no_public_base_url_means_no_url():
    with override_settings(MODERATION=moderation_conf(PUBLIC_BASE_URL="")):
        assert media_url.public_url_for(default_storage, "a.png") is None


def test_only_the_default_storage_gets_signed_urls(tmp_path):
    private = FileSystemStorage(location=tmp_path)  # relative URLs, not the default storage
    with override_settings(MODERATION=moderation_conf(PUBLIC_BASE_URL=PUBLIC)):
        assert media_url.public_url_for(private, "a.png") is None


@pytest.fixture
def stored_png() -> Iterator[tuple[str, bytes]]:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    name = default_storage.save("moderation-tests/sub dir/pic.png", ContentFile(data))
    yield name, data
    default_storage.delete(name)


def signed_path(name: str) -> str:
    with override_settings(MODERATION=moderation_conf(PUBLIC_BASE_URL=PUBLIC + "/")):
        url = media_url.public_url_for(default_storage, name)
    assert url is not None and url.startswith(f"{PUBLIC}/moderation/media/") and url.endswith("/")
    return urlsplit(url).path


@pytest.mark.urls("tests.urls_signed_media")
def test_signed_url_round_trip_serves_the_bytes(client, stored_png):
    name, data = stored_png
    response = client.get(signed_path(name))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Type"] == "image/png"


@pytest.mark.urls("tests.urls_signed_media")
def test_tampered_token_is_forbidden_without_detail(client, stored_png):
    path = signed_path(stored_png[0])
    token = path.rstrip("/").rsplit("/", 1)[1]
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = client.get(f"/moderation/media/{forged}/")
    assert response.status_code == 403 and response.content == b""
    other_salt = TimestampSigner(salt="elsewhere").sign_object(stored_png[0])
    assert client.get(f"/moderation/media/{other_salt}/").status_code == 403


@pytest.mark.urls("tests.urls_signed_media")
def test_expired_token_is_forbidden(client, stored_png):
    with mock.patch("time.time", return_value=time.time() - media_url.MAX_AGE - 5):
        token = media_url.sign_name(stored_png[0])
    assert media_url.unsign_name(token, max_age=None) == stored_png[0]  # only too old
    response = client.get(f"/moderation/media/{token}/")
    assert response.status_code == 403 and response.content == b""


@pytest.mark.urls("tests.urls_signed_media")
def test_missing_file_is_404(client):
    response = client.get(signed_path("moderation-tests/nope.png"))
    assert response.status_code == 404


@pytest.mark.urls("tests.urls_signed_media")
def test_only_get_is_allowed(client, stored_png):
    assert client.post(signed_path(stored_png[0])).status_code == 405
