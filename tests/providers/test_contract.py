"""Contract cases every provider passes, as its capability flags declare them.

Parametrised over the local engine, the three Alibaba providers (Content Moderation 1.0
``green``, 2.0 ``green-cip`` and IMM) against the emulator on loopback, the scripted test
provider and the provider a site would write (tests/site_provider.py). What a third party
must implement is proven in tests/providers/test_provider_contract.py (through the callback
view and ``manage.py check``); this module asks the same questions of *every* provider,
calling the provider directly with real media (demo_project/sample_media, tests/media):

* a declared media kind is moderated into a normalized Result (done, or in progress with a
  task id that ``fetch`` finishes), findings only; an undeclared kind is NotSupported;
* a ``callback`` provider reads, verifies and parses an authentic callback (pushed by the
  emulator, or signed as Acme's service would) and refuses a forged one;
* a bad option set gives a ``manage.py check`` message; ``result_version`` is a string;
* provider calls run no database query; a corrupt image is a MediaError.
"""

from __future__ import annotations

import json
import math
import queue
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from django.core.checks import CheckMessage, run_checks
from django.test import RequestFactory, override_settings

from moderation.emulator import green as emulator_green
from moderation.providers import (
    Feedback,
    MediaError,
    ModerationError,
    NotSupported,
    ProviderError,
)
from moderation.providers.aliyun.green import GreenProvider
from moderation.providers.aliyun.guardrails import GuardrailsProvider
from moderation.providers.aliyun.imm import ImmProvider
from moderation.providers.base import (
    CALLBACK,
    MEDIA_KINDS,
    SYNC,
    Media,
    ModerationRequest,
    Provider,
)
from moderation.providers.local import LocalProvider
from moderation.providers.result import RISK_LEVELS, STATUSES, Label, Result, risk_rank
from moderation.testing import ScriptedProvider, scripted_result
from tests import site_provider
from tests.conftest import SAMPLES, emulator_fixture, poll_until_finished, serving

ROOT = Path(__file__).resolve().parents[1]
AK_ID, AK_SECRET = "LTAI5tContract0000001", "ContractSecret000000000000001"
UID, BUCKET, PROJECT = "1000000000000777", "contract-bucket", "contract-project"
ACME_SECRET = "acme-contract-secret-0123"
RISKY, BENIGN, CORRUPT, VIDEO = "qrcode.jpg", "benign.jpg", "corrupt.jpg", "clean.mp4"
QR = "pt_qrCode"
POLL_LIMIT = 60.0  # seconds; the emulator analyses a video in a few

pytestmark = [pytest.mark.usefixtures("no_proxy"), pytest.mark.django_db]


# --- media: one directory, served over HTTP and standing in for every OSS bucket ------------


@pytest.fixture(scope="module")
def media_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("contract-media")
    for name in (RISKY, BENIGN):
        shutil.copy(SAMPLES / name, root / name)
    shutil.copy(ROOT / "media" / VIDEO, root / VIDEO)
    # A JPEG header and then nothing an image decoder can use.
    (root / CORRUPT).write_bytes(b"\xff\xd8\xff\xe0" + b"this is not an image" * 20)
    return root


@pytest.fixture(scope="module")
def media_url(media_root) -> Iterator[str]:
    with serving(media_root) as url:
        yield url


emulator = emulator_fixture(scope="module", oss="media_root", access_key_id=AK_ID,
                            access_key_secret=AK_SECRET, uid=UID,
                            callback_retries=(0.5, 1.0))


# --- the providers under contract --------------------------------------------------------------


@dataclass
class Subject:
    """One provider under contract and how it is handed media and callbacks.

    ``locate``: a file of the media root -> the URL this provider gets with it (the bytes
    always come along too). ``analyses``: it looks at the pixels (the engine, the emulator),
    so a QR code must be found and a corrupt image refused. ``push_only``: its results
    arrive by callback only, ``fetch`` answers "still working"."""

    name: str
    provider: Provider
    root: Path
    locate: Callable[[str], str]
    analyses: bool = True
    push_only: bool = False
    good_options: dict[str, Any] = field(default_factory=dict)

    def media(self, name: str, kind: str) -> Media:
        path = self.root / name
        return Media(name=name, kind=kind, opener=lambda: open(path, "rb"),
                     size=path.stat().st_size, path=str(path), url=self.locate(name))


def alibaba_options(emulator, **extra: Any) -> dict[str, Any]:
    return {"ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET, "UID": UID,
            "ENDPOINT": emulator.url, **extra}


SUBJECTS = ("local", "green", "green-cip", "imm", "scripted", "acme")
#: the providers that look at the pixels (the engine, or the emulator running it)
ANALYSING = ("local", "green", "green-cip", "imm")
BACKENDS = {"local": LocalProvider, "green": GreenProvider, "green-cip": GuardrailsProvider,
            "imm": ImmProvider, "scripted": ScriptedProvider,
            "acme": site_provider.AcmeProvider}


@pytest.fixture(params=SUBJECTS)
def subject(request, media_root, monkeypatch) -> Subject:
    """Each provider built by hand, ``BACKEND(alias, OPTIONS)``: its default context has no
    rate limiter (the database-backed one is the site's, given by ``get_provider``)."""
    name = request.param
    http = f"{request.getfixturevalue('media_url')}/{{}}".format
    if name == "local":
        return Subject(name, LocalProvider("local", {}), media_root, http)
    if name == "scripted":
        # Answers what it is told: a realistic finished answer for every submit.
        monkeypatch.setattr(ScriptedProvider, "script",
                            [scripted_result("medium", QR, 97.0) for _ in range(4)])
        monkeypatch.setattr(ScriptedProvider, "calls", [])
        return Subject(name, ScriptedProvider("scripted", {}), media_root, http,
                       analyses=name in ANALYSING)
    if name == "acme":
        options = {"SECRET": ACME_SECRET}
        monkeypatch.setattr(site_provider, "SUBMITTED", [])
        return Subject(name, site_provider.AcmeProvider("acme", options), media_root, http,
                       analyses=name in ANALYSING, push_only=True, good_options=options)
    running = request.getfixturevalue("emulator")
    if name == "imm":
        options = alibaba_options(running, PROJECT_NAME=PROJECT)
        return Subject(name, ImmProvider("imm", options), media_root,
                       f"oss://{BUCKET}/{{}}".format, good_options=options)
    options = alibaba_options(running)
    return Subject(name, BACKENDS[name](name, options), media_root, http,
                   good_options=options)


@pytest.fixture
def no_queries(django_assert_num_queries):
    """``with no_queries(): ...`` fails the test if the block runs a database query:
    providers never touch models (moderation/providers/base.py)."""
    return lambda: django_assert_num_queries(0)


# --- what a normalized result looks like ------------------------------------------------------


def assert_label_shape(label: Label) -> None:
    assert isinstance(label, Label)
    assert isinstance(label.label, str) and label.label
    assert isinstance(label.confidence, float) and 0 <= label.confidence <= 100
    assert label.risk_level in RISK_LEVELS
    assert isinstance(label.service, str) and isinstance(label.scene, str)


def assert_normalized(result: Result) -> None:
    """The shape every provider answers in, whatever its service said."""
    assert isinstance(result, Result) and result.status in STATUSES
    assert result.risk_level in RISK_LEVELS
    # Findings only: the pipeline applies the site's policy (pipeline.ingest.decide).
    assert result.suggestion == Result().suggestion
    if result.status == "in_progress":
        assert isinstance(result.task_id, str) and result.task_id
    for label in result.all_labels():
        assert_label_shape(label)
    for frame in result.frames:
        assert frame.risk_level in RISK_LEVELS
        assert isinstance(frame.offset, float) and math.isfinite(frame.offset)
        assert frame.offset >= 0
    for part in result.slices:
        assert part.risk_level in RISK_LEVELS and 0 <= part.start <= part.end
    # What the pipeline stores is JSON, and reads back as the same findings.
    again = Result.from_dict(json.loads(json.dumps(result.to_dict())))
    assert (again.status, again.risk_level, again.task_id) == (
        result.status, result.risk_level, result.task_id)
    assert [lbl.label for lbl in again.all_labels()] == [
        lbl.label for lbl in result.all_labels()]


def moderate(subject: Subject, media: Media, request: ModerationRequest,
             no_queries) -> tuple[Result, Result]:
    """(what submit answered, the finished result): a task in progress is fetched until it
    finishes, each call checked for shape and for database queries."""
    subject.provider.check_media(media)
    with no_queries():
        submitted = subject.provider.submit(media, request)
    assert_normalized(submitted)
    if submitted.finished:
        return submitted, submitted

    def fetch() -> Result:
        with no_queries():
            answer = subject.provider.fetch(submitted.task_id, request)
        assert_normalized(answer)
        assert answer.task_id in ("", submitted.task_id)
        return answer

    if subject.push_only:  # still working until the push (the callback case finishes it)
        answer = fetch()
        assert answer.status == "in_progress" and answer.task_id == submitted.task_id
        return submitted, answer
    finished, _ = poll_until_finished(fetch, POLL_LIMIT)
    return submitted, finished


# --- capability flags are true ------------------------------------------------------------------


def test_an_image_is_moderated_into_a_normalized_result(subject, no_queries):
    assert subject.provider.supports("image")  # every provider here declares images
    submitted, result = moderate(subject, subject.media(RISKY, "image"),
                                 ModerationRequest(data_id="contract-1"), no_queries)
    if subject.provider.supports(SYNC):
        assert submitted.status == "done", "a sync provider answers images at once"
    if subject.push_only:
        return
    assert result.status == "done" and result.frames
    assert QR in {label.label for label in result.all_labels()}
    assert result.risk_level != "none"
    frame_risks = [frame.risk_level for frame in result.frames]
    assert risk_rank(result.risk_level) >= max(map(risk_rank, frame_risks))


@pytest.mark.parametrize("subject", ANALYSING, indirect=True)
def test_a_benign_image_carries_no_risk(subject, no_queries):
    _, result = moderate(subject, subject.media(BENIGN, "image"), ModerationRequest(),
                         no_queries)
    assert result.status == "done" and result.risk_level == "none"
    assert all(label.risk_level == "none" for label in result.all_labels())


@pytest.mark.slow  # a real video analysis per provider (about 1-3 s each)
@pytest.mark.parametrize("subject", SUBJECTS, indirect=True)
def test_a_declared_video_is_moderated_and_an_async_task_finished(subject, no_queries):
    if not subject.provider.supports("video"):
        with pytest.raises(NotSupported):
            subject.provider.check_media(subject.media(VIDEO, "video"))
        return
    _, result = moderate(subject, subject.media(VIDEO, "video"),
                         ModerationRequest(data_id="contract-v"), no_queries)
    assert result.status == "done"
    if subject.analyses:
        # A done result must show what was looked at or listened to, or it never passes.
        assert result.analysed, f"{subject.name}: a done video result that analysed nothing"
        assert result.risk_level == "none"  # clean.mp4: nothing to find
        offsets = [frame.offset for frame in result.frames]
        assert offsets == sorted(offsets)


def frames_of(subject: Subject, names: list[tuple[float, str]]) -> tuple[Media, ModerationRequest]:
    """A frame sequence as the pipeline hands it over: the images' bytes at their offsets,
    and their fetchable URLs in the job option ``frame_urls`` (for URL-fetching providers)."""
    frames = [(offset, (subject.root / name).read_bytes()) for offset, name in names]
    urls = [(offset, subject.locate(name)) for offset, name in names]
    return (Media(name="frames", kind="frames", frames=frames),
            ModerationRequest(options={"frame_urls": urls}))


@pytest.mark.slow  # the local engine's first frame job starts its worker processes
@pytest.mark.parametrize("subject", [name for name in SUBJECTS
                                     if "frames" in BACKENDS[name].capabilities],
                         indirect=True)
def test_a_declared_frame_sequence_is_moderated_frame_by_frame(subject, no_queries):
    media, request = frames_of(subject, [(0.0, BENIGN), (5.0, RISKY)])
    _, result = moderate(subject, media, request, no_queries)
    assert result.status == "done" and result.analysed
    flagged = {frame.offset for frame in result.frames
               if QR in {label.label for label in frame.labels}}
    assert flagged == {5.0}  # the QR code is in the second frame only
    assert result.risk_level != "none"


@pytest.mark.slow  # speech recognition of a 10 s soundtrack
@pytest.mark.parametrize("subject", [name for name in SUBJECTS
                                     if "audio" in BACKENDS[name].capabilities],
                         indirect=True)
def test_declared_audio_is_listened_to(subject, no_queries):
    _, result = moderate(subject, subject.media(VIDEO, "audio"), ModerationRequest(),
                         no_queries)
    assert result.status == "done"
    if subject.analyses:  # clean.mp4 says "Today we bake bread with flour and water."
        assert result.audio_seconds > 0 and result.slices
        assert result.risk_level == "none"


@pytest.mark.slow  # the emulator follows the stream to its end
@pytest.mark.parametrize("subject", ["green"], indirect=True)
def test_a_declared_live_stream_yields_partials_then_done(subject, no_queries):
    """Only 1.0 here: the local engine's live path needs an HLS stream and the network
    guard opened for loopback, and is proven in tests/providers/local/test_video.py."""
    provider = GreenProvider("green", {**subject.good_options, "LIVE_POLL_INTERVAL": 0.2})
    with no_queries():
        results = list(provider.stream(subject.media(VIDEO, "live"), ModerationRequest()))
    for partial in results:
        assert_normalized(partial)
    assert [r.status for r in results] == ["in_progress"] * (len(results) - 1) + ["done"]
    assert len({r.task_id for r in results}) == 1


@pytest.mark.parametrize("decision", ["block", "pass"])
def test_feedback_is_taken_when_declared_and_refused_otherwise(subject, decision,
                                                               no_queries):
    feedback = Feedback(decision=decision, task_id="img-contract", data_id="d-contract",
                        url=subject.locate(RISKY), labels=[QR], note="contract case")
    if not subject.provider.supports("feedback"):
        with pytest.raises(NotSupported):
            subject.provider.feedback(feedback)
        return
    with no_queries():
        assert subject.provider.feedback(feedback) is None
    # What arrived at the service (only the emulator's Alibaba 1.0 takes feedback here).
    arrived = emulator_green.FEEDBACK[-1]
    assert arrived["path"] == "/green/image/feedback"
    assert (arrived["body"]["taskId"], arrived["body"]["suggestion"]) == (
        "img-contract", decision)


def test_green_async_images_are_fetched_to_the_end(media_root, media_url, emulator,
                                                   no_queries):
    """1.0 can be asked for its asynchronous image scan (so it does not declare ``sync``):
    then its ``fetch`` finishes what ``submit`` started, like every async provider's."""
    subject = Subject("green", GreenProvider("green", alibaba_options(emulator)), media_root,
                      f"{media_url}/{{}}".format)
    submitted, result = moderate(subject, subject.media(RISKY, "image"),
                                 ModerationRequest(options={"async": True}), no_queries)
    assert submitted.status == "in_progress" and submitted.task_id
    assert result.status == "done" and result.task_id == submitted.task_id
    assert QR in {label.label for label in result.labels}


@pytest.mark.parametrize("kind", MEDIA_KINDS)
def test_an_undeclared_kind_is_not_supported(subject, kind):
    media = subject.media(VIDEO if kind != "image" else RISKY, kind)
    if subject.provider.supports(kind):
        assert subject.provider.check_media(media) is None
        return
    with pytest.raises(NotSupported) as refused:
        subject.provider.check_media(media)
    assert refused.value.code == "not_supported"


def test_declared_capabilities_are_known_and_result_version_is_a_string(subject):
    assert subject.provider.capabilities <= {"image", "video", "frames", "live", "audio",
                                             "feedback", "callback", "sync"}
    version = subject.provider.result_version
    assert isinstance(version, str) and version


# --- errors are the provider error classes --------------------------------------------------------


def test_a_corrupt_image_is_a_media_error_or_a_normal_answer(subject, no_queries):
    """A provider that looks at the pixels refuses a corrupt image with MediaError (the job
    fails, not retried); one that does not answers normally. Never a bare exception."""
    media = subject.media(CORRUPT, "image")
    try:
        with no_queries():
            submitted = subject.provider.submit(media, ModerationRequest())
        assert_normalized(submitted)
        if submitted.status == "in_progress" and not subject.push_only:
            result, _ = poll_until_finished(
                lambda: subject.provider.fetch(submitted.task_id, ModerationRequest()),
                POLL_LIMIT)
            assert_normalized(result)
    except ModerationError as exc:
        assert subject.analyses, f"{subject.name} raised {exc!r} for bytes it never decodes"
        assert isinstance(exc, MediaError), f"{subject.name}: {exc!r} is not a MediaError"
        assert exc.code and exc.message
    else:
        assert not subject.analyses, f"{subject.name} accepted a corrupt image"


@pytest.mark.parametrize("backend", [GreenProvider, GuardrailsProvider, ImmProvider])
def test_no_answer_from_a_service_is_a_provider_error(backend, unused_tcp_port_, media_url):
    options = {"ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET,
               "PROJECT_NAME": PROJECT, "ENDPOINT": f"http://127.0.0.1:{unused_tcp_port_}"}
    provider = backend("down", options)
    url = f"oss://{BUCKET}/{RISKY}" if backend is ImmProvider else f"{media_url}/{RISKY}"
    with pytest.raises(ProviderError) as failed:
        provider.submit(Media(RISKY, "image", url=url), ModerationRequest())
    assert failed.value.code == "connection"


@pytest.fixture
def unused_tcp_port_() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- callbacks: read -> verify -> parse ---------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    """A callback as it arrived over HTTP."""

    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def request(self):
        return RequestFactory().post("/moderation/callbacks/contract/", data=self.body,
                                     content_type=self.content_type, headers=self.headers)


@contextmanager
def receiver() -> Iterator[tuple[str, queue.Queue[Posted]]]:
    """A loopback URL a service posts callbacks to, and the queue of what it received."""
    received: queue.Queue[Posted] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.put(Posted(self.headers.get_content_type(), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/callback", received
    finally:
        server.shutdown()
        server.server_close()


def pushed(subject: Subject, seed: str) -> tuple[Posted, Result]:
    """An authentic callback of ``subject`` for a task it submitted with ``seed``, and what
    submit answered. Alibaba's come from the emulator (a 1.0 async image scan, a 2.0 video),
    pushed to a real endpoint; Acme's is signed the way Acme's service signs."""
    if subject.name == "acme":
        submitted = subject.provider.submit(subject.media(RISKY, "image"), ModerationRequest(
            data_id="cb-1", seed=seed, callback_url="https://site.example/cb"))
        body = json.dumps({"task": submitted.task_id, "seed": seed, "state": "finished",
                           "labels": [{"name": QR, "score": 97.5, "risk": "medium"}]}).encode()
        signature = site_provider.sign(ACME_SECRET, body)
        return Posted("application/json", body,
                      {site_provider.SIGNATURE_HEADER: signature}), submitted
    kind, name, options = (("video", VIDEO, {}) if subject.name == "green-cip"
                           else ("image", RISKY, {"async": True}))
    with receiver() as (url, received):
        submitted = subject.provider.submit(subject.media(name, kind), ModerationRequest(
            data_id="cb-1", seed=seed, callback_url=url, options=options))
        assert submitted.status == "in_progress"
        return received.get(timeout=POLL_LIMIT), submitted


def forged(posted: Posted) -> Posted:
    """The same callback with its content changed after it was signed (a field added)."""
    if posted.content_type == "application/json":
        body = json.dumps({**json.loads(posted.body), "state": "finished", "forged": True})
        return Posted(posted.content_type, body.encode(), posted.headers)
    form = dict(parse_qsl(posted.body.decode(), keep_blank_values=True))
    form["content"] = form["content"][:-1] + ',"forged":true}'
    return Posted(posted.content_type, urlencode(form).encode(), posted.headers)


CALLBACK_SUBJECTS = [name for name in SUBJECTS if CALLBACK in BACKENDS[name].capabilities]


@pytest.mark.slow  # the emulator analyses the media before it pushes (2.0: a whole video)
@pytest.mark.parametrize("subject", CALLBACK_SUBJECTS, indirect=True)
def test_a_callback_round_trip_accepts_the_authentic_and_refuses_a_forgery(subject,
                                                                           no_queries):
    provider, seed, options = subject.provider, "contract-seed-5f1c", {}
    posted, submitted = pushed(subject, seed)
    with no_queries():
        received = provider.read_callback(posted.request(), posted.body)
        assert received.task_id == submitted.task_id or received.data_id == "cb-1"
        assert provider.verify_callback(received, seed, options) is True
        result = provider.parse_callback(received.content)
    assert_normalized(result)
    assert result.status == "done"
    if submitted.task_id and result.task_id:
        assert result.task_id == submitted.task_id
    if subject.name != "green-cip":  # the QR code image; 2.0's push is the clean video
        assert QR in {label.label for label in result.all_labels()}
    with no_queries():
        # Authentic bytes, but not for this job: another seed. And altered bytes.
        assert provider.verify_callback(received, "guessed-seed", options) is False
        tampered = forged(posted)
        assert provider.verify_callback(
            provider.read_callback(tampered.request(), tampered.body), seed, options) is False


# --- configuration: a bad option set is reported by manage.py check ----------------------------

#: A bad OPTIONS set per provider: (OPTIONS, the check id that reports it). The scripted
#: provider takes no OPTIONS at all: nothing to get wrong, so it is not listed.
BAD_OPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "local": ({"asr_engine": "no-such-recogniser"}, "moderation.E021"),
    "green": ({"ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET}, "moderation.E011"),
    "green-cip": ({"ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET},
                  "moderation.E011"),
    "imm": ({"ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET}, "moderation.E003"),
    "acme": ({"SECRET": "short"}, "acme.W001"),
}


def messages_about(alias: str, backend: type[Provider],
                   options: dict[str, Any]) -> list[CheckMessage]:
    """What ``manage.py check`` says about ``alias`` configured with ``options``."""
    path = f"{backend.__module__}.{backend.__qualname__}"
    with override_settings(MODERATION={
            "PROVIDERS": {alias: {"BACKEND": path, "OPTIONS": options}},
            "DEFAULT_PROVIDER": alias, "CALLBACK_BASE_URL": "https://site.example",
            "PUBLIC_BASE_URL": "https://site.example"}):
        return [message for message in run_checks() if repr(alias) in message.msg]


@pytest.mark.parametrize("subject", sorted(BAD_OPTIONS), indirect=True)
def test_a_bad_option_set_gives_a_check_message_and_a_good_one_none(subject):
    backend = type(subject.provider)
    alias = f"contract_{subject.name.replace('-', '_')}"
    options, check_id = BAD_OPTIONS[subject.name]
    assert check_id in {message.id for message in messages_about(alias, backend, options)}
    assert messages_about(alias, backend, subject.good_options) == []
