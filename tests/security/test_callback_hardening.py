"""Hostile callback bodies (issue 10, item 6): every malformed class answers a short 400,
never an error page, and writes nothing; the body is capped before it is read, hashed or
parsed; SM3 comes from OpenSSL or ``cryptography`` where available, every implementation
checked against the same vectors."""

from __future__ import annotations

import copy
import json
import os
import socket
import time
from urllib.parse import quote, urlencode

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from moderation.models import Frame, Job, ReviewEvent, Status
from moderation.providers import get_provider
from moderation.providers.aliyun import checksum
from moderation.providers.aliyun.callbacks import MAX_DEPTH, MalformedCallback, load_content
from tests.providers.aliyun.test_aliyun_callbacks import (
    ALIAS,
    UID,
    content_for,
    provider_settings,
    signed,
)

# --- SM3: every implementation, the same vectors ------------------------------------------

#: GB/T 32905-2016 appendix A (A.1 "abc", A.2 "abcd" x 16) and the empty message
SM3_VECTORS = [
    (b"", "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"),
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]
AVAILABLE = checksum.sm3_implementations()
WHY_ABSENT = {
    "hashlib": "this Python's OpenSSL has no SM3 (hashlib.new('sm3') fails)",
    "cryptography": "the cryptography package (with hashes.SM3) is not installed",
    "python": "the pure-Python SM3 is always present",
}


def implementation(name: str):
    if name not in AVAILABLE:
        pytest.skip(WHY_ABSENT[name])
    return AVAILABLE[name]


@pytest.mark.parametrize("name", ["hashlib", "cryptography", "python"])
@pytest.mark.parametrize(("message", "digest"), SM3_VECTORS)
def test_each_sm3_implementation_matches_the_standard_vectors(name, message, digest):
    assert implementation(name)(message) == digest


@pytest.mark.parametrize("name", ["hashlib", "cryptography", "python"])
def test_each_sm3_implementation_agrees_across_block_boundaries(name):
    sm3 = implementation(name)
    reference = AVAILABLE["python"]
    data = os.urandom(300)
    for length in (1, 55, 56, 63, 64, 65, 119, 120, 128, 300):  # padding edge cases
        assert sm3(data[:length]) == reference(data[:length]), length


def test_the_fastest_available_sm3_is_the_one_in_use():
    assert next(iter(AVAILABLE)) == checksum.SM3_IMPLEMENTATION
    if "hashlib" in AVAILABLE:
        assert checksum.SM3_IMPLEMENTATION == "hashlib"
    content = '{"TaskId":"t","Text":"héllo"}'
    expected = AVAILABLE["python"](f"{UID}seed{content}".encode())
    assert checksum.callback_checksum(UID, "seed", content, "SM3") == expected


# --- content parsing ----------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,  # RecursionError inside json
    '{"TaskId":"t","a":' + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "}",
    '{"TaskId":"t","a":NaN}', '{"TaskId":"t","a":1e999}', '{"TaskId":"t","a":Infinity}',
    '{"TaskId":"t","a":' + "9" * 5000 + "}",  # past Python's int digit limit
    "[]", '"text"', "12", "null", "",
])
def test_load_content_refuses_what_is_not_a_plain_json_object(text):
    with pytest.raises(MalformedCallback):
        load_content(text)


def test_load_content_takes_a_result_nested_as_deep_as_alibabas():
    content = load_content('{"TaskId":"t","a":' + "[" * 20 + "]" * 20 + "}")
    assert content["TaskId"] == "t"


# --- the view -----------------------------------------------------------------------------

URL_ARGS = [ALIAS]


@pytest.fixture
def aliyun():
    with override_settings(MODERATION=provider_settings(), DEBUG=True):
        get_provider.cache_clear()
        yield
    get_provider.cache_clear()


def callback_url() -> str:
    return reverse("moderation:callback", args=URL_ARGS)


def new_job(task_id: str = "vi_f_task1") -> Job:
    return Job.objects.create(provider=ALIAS, media_kind="video", file_name="v.mp4",
                              status=Status.SUBMITTED, provider_task_id=task_id)


def state(job: Job):
    job.refresh_from_db()
    return (job.status, job.raw_result, job.result, job.lease_until,
            Frame.objects.filter(job=job).count(), job.slices.count(),
            ReviewEvent.objects.filter(job=job).count())


def post_raw(body: bytes, content_type="application/x-www-form-urlencoded", **extra):
    return Client().generic("POST", callback_url(), body, content_type=content_type, **extra)


def form(content: str, check: str) -> bytes:
    return urlencode({"checksum": check, "content": content}).encode()


def assert_refused(answer, code: int = 400) -> None:
    """A short plain-text refusal: no debug page, no traceback, even with DEBUG on."""
    assert answer.status_code == code, answer.content[:300]
    assert answer["Content-Type"].startswith("text/plain")
    assert answer.content == b"refused"


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["deep", "over-depth", "list", "string", "number", "nan"])
def test_malformed_content_signed_correctly_is_still_400(aliyun, kind):
    job = new_job()
    before = state(job)
    content = {
        "deep": '{"TaskId":"vi_f_task1","a":' + "[" * 50_000 + "]" * 50_000 + "}",
        "over-depth": '{"TaskId":"vi_f_task1","a":' + "{\"b\":" * 40 + "1" + "}" * 40 + "}",
        "list": json.dumps([{"TaskId": "vi_f_task1"}]),
        "string": json.dumps("vi_f_task1"),
        "number": "42",
        "nan": '{"TaskId":"vi_f_task1","RiskLevel":NaN}',
    }[kind]
    assert_refused(post_raw(form(content, signed(job, content))))
    assert state(job) == before


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "content_type"), [
    (b"checksum=ab&content=%FF%FE", "application/x-www-form-urlencoded"),  # percent non-UTF-8
    (b"checksum=ab&content=\xff\xfe{}", "application/x-www-form-urlencoded"),  # raw bytes
    (b"checksum=ab&content={}&content={}", "application/x-www-form-urlencoded"),  # repeated
    (b"&".join([b"f%d=1" % i for i in range(100)]), "application/x-www-form-urlencoded"),
    (b'{"checksum":"ab","content":"{}"}', "application/json"),  # not a form
    (b"checksum=ab&content=not+json", "application/x-www-form-urlencoded"),
    (b"checksum=ab", "application/x-www-form-urlencoded"),
    (b"", "application/x-www-form-urlencoded"),
])
def test_malformed_forms_are_400(aliyun, body, content_type):
    job = new_job()
    before = state(job)
    assert_refused(post_raw(body, content_type))
    assert state(job) == before


@pytest.mark.django_db
def test_multipart_with_a_file_is_400_and_plain_multipart_still_works(aliyun):
    from django.core.files.uploadedfile import SimpleUploadedFile

    job = new_job()
    content = content_for(job)
    before = state(job)
    upload = SimpleUploadedFile("x.bin", b"\x00" * 10)
    answer = Client().post(callback_url(), {"checksum": signed(job, content),
                                            "content": content, "file": upload})
    assert_refused(answer)
    assert state(job) == before
    answer = Client().post(callback_url(), {"checksum": signed(job, content),
                                            "content": content})  # multipart, no file
    assert answer.status_code == 200
    job.refresh_from_db()
    assert job.status == Status.DONE


@pytest.mark.django_db
def test_ids_of_the_wrong_type_name_no_job(aliyun):
    job = new_job()
    before = state(job)
    for ids in ({"TaskId": {"a": 1}}, {"TaskId": ["vi_f_task1"]}, {"TaskId": True},
                {"DataId": None}, {"TaskId": "x" * 500}):
        content = json.dumps(ids)
        assert_refused(post_raw(form(content, signed(job, content))))
    assert state(job) == before


def _paths(value, prefix=()):
    """Every path to a value inside a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _replaced(document, path, new):
    document = copy.deepcopy(document)
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return document


WRONG_VALUES = [[], {}, "x", 7, -1.5, None, True, [{"a": []}]]


@pytest.mark.slow  # 2.8 s
@pytest.mark.django_db
def test_every_field_of_a_signed_result_given_a_wrong_type_never_errors(aliyun):
    """A verified callback (right checksum) whose values have the wrong types: each path of
    a real 2.0 video result replaced by each wrong value answers 200 (the parser made sense
    of it) or 400 with nothing written, never a 500."""
    template = json.loads(content_for(new_job("vi_f_template")))
    paths = [p for p in _paths(template) if p and p[0] not in ("TaskId", "DataId")]
    answers = {200: 0, 400: 0}
    for n, path in enumerate(paths):
        for m, wrong in enumerate(WRONG_VALUES):
            task_id = f"vi_f_{n}_{m}"
            job = new_job(task_id)
            document = _replaced(template, path, wrong) | {"TaskId": task_id,
                                                          "DataId": job.data_id}
            content = json.dumps(document)
            before = state(job)
            answer = post_raw(form(content, signed(job, content)))
            assert answer.status_code in (200, 400), (path, wrong, answer.content[:300])
            answers[answer.status_code] += 1
            if answer.status_code == 400:
                assert answer.content == b"refused"
                assert state(job) == before, (path, wrong)
    assert answers[400] > 0 and answers[200] > 0  # both kinds met: the test has teeth


@pytest.mark.django_db
def test_a_body_over_the_cap_is_refused_before_it_is_hashed(aliyun, monkeypatch, caplog):
    hashed = []
    real = checksum.callback_checksum
    monkeypatch.setattr(checksum, "callback_checksum",
                        lambda *a, **k: hashed.append(a) or real(*a, **k))
    job = new_job()
    before = state(job)
    content = content_for(job)
    padded = json.dumps(json.loads(content) | {"pad": "x" * 5000})
    conf = provider_settings(CALLBACK_MAX_BYTES=4096)
    with override_settings(MODERATION=conf):
        get_provider.cache_clear()
        with caplog.at_level("WARNING", logger="moderation.callbacks"):
            assert_refused(post_raw(form(padded, signed(job, padded))))
        assert "over CALLBACK_MAX_BYTES" in caplog.text
        assert post_raw(form(content, signed(job, content))).status_code == 200
    assert not [a for a in hashed if a[2] == padded]  # never hashed the big one
    assert state(job)[0] == Status.DONE and before[0] == Status.SUBMITTED


@pytest.mark.django_db
def test_a_lying_content_length_reads_no_more_than_the_cap(aliyun):
    """The view reads at most cap + 1 bytes even when the stream holds more."""
    job = new_job()
    before = state(job)

    class CountingStream:
        def __init__(self, data: bytes):
            self.data, self.read_total = data, 0

        def read(self, size=-1):
            size = len(self.data) if size is None or size < 0 else size
            chunk, self.data = self.data[:size], self.data[size:]
            self.read_total += len(chunk)
            return chunk

        def readline(self, *args):
            return self.read(*args)

    from django.core.handlers.wsgi import WSGIRequest
    from django.test import RequestFactory

    from moderation.views.callbacks import receive

    stream = CountingStream(b"checksum=ab&content=" + b"a" * 100_000)
    with override_settings(MODERATION=provider_settings(CALLBACK_MAX_BYTES=2048)):
        get_provider.cache_clear()
        request = RequestFactory().post(callback_url(), b"",
                                        content_type="application/x-www-form-urlencoded")
        environ = {**request.environ, "wsgi.input": stream, "CONTENT_LENGTH": "1000"}
        answer = receive(WSGIRequest(environ), ALIAS)
    # LimitedStream stops at the declared length; the view itself asked for cap + 1
    assert answer.status_code == 400 and stream.read_total <= 2049
    assert state(job) == before


@pytest.mark.django_db(transaction=True)
def test_over_real_http_a_huge_declared_body_is_refused_without_waiting_for_it(live_server):
    """A client that announces 1 GB and sends 10 bytes gets its 400 at once: the server
    does not wait for (or read) the body it announced."""
    with override_settings(MODERATION=provider_settings(CALLBACK_MAX_BYTES=4096)):
        get_provider.cache_clear()
        host, port = live_server.thread.host, live_server.thread.port
        path = callback_url()
        started = time.monotonic()
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {10**9}\r\nConnection: close\r\n\r\n".encode()
                + b"checksum=a")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and answer.endswith(b"refused"):
                    break
        elapsed = time.monotonic() - started
    get_provider.cache_clear()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert body == b"refused" and elapsed < 5


@pytest.mark.django_db(transaction=True)
def test_over_real_http_deep_nesting_is_a_short_400(live_server):
    with override_settings(MODERATION=provider_settings(), DEBUG=True):
        get_provider.cache_clear()
        job = new_job()
        content = '{"TaskId":"vi_f_task1","a":' + "[" * 200_000 + "]" * 200_000 + "}"
        body = f"checksum={signed(job, content)}&content={quote(content)}".encode()
        host, port = live_server.thread.host, live_server.thread.port
        with socket.create_connection((host, port), timeout=20) as sock:
            sock.sendall(
                f"POST {callback_url()} HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    get_provider.cache_clear()
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and rest == b"refused"
    assert Job.objects.get(pk=job.pk).status == Status.SUBMITTED


def test_sm3_through_the_python_fallback_is_warned_about(monkeypatch):
    from django.core.checks import run_checks

    conf = provider_settings()
    conf["PROVIDERS"][ALIAS]["OPTIONS"]["CRYPT_TYPE"] = "SM3"
    with override_settings(MODERATION=conf):
        assert "moderation.W017" not in {m.id for m in run_checks()}
        monkeypatch.setattr(checksum, "SM3_IMPLEMENTATION", "python")
        assert "moderation.W017" in {m.id for m in run_checks()}
