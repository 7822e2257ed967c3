"""The network guard: every hop the engine makes goes to a vetted address (issue 10, 1-2).

Loopback harness: Linux routes all of 127/8 to ``lo``, so a server bound to 127.0.0.2
plays a public host (``ALLOWED_NETWORKS=["127.0.0.2/32"]``) and one bound to 127.0.0.1 a
private one. The private server serves the same files and records every request: a
refusal must mean it got none, not that it answered 404. Streams are read by real FFmpeg
(PyAV) through the real live job.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import ipaddress
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.forms import modelform_factory
from django.test import override_settings

from demo_project.blog.forms import PostForm
from demo_project.blog.models import Post
from moderation import pipeline
from moderation.evidence import download
from moderation.guard_proxy import GuardProxy
from moderation.models import Job, Status
from moderation.providers.errors import MediaError
from moderation.providers.local.container import open_container, probe
from moderation.remote import check_remote_url, pinned_url

# slow: 22 s for the module in a full run
pytestmark = pytest.mark.slow

MEDIA = Path(__file__).resolve().parents[1] / "media"
PUBLIC, PRIVATE = "127.0.0.2", "127.0.0.1"
ENGINE = {"local": {"OPTIONS": {"audio": False, "workers": 1, "parallelism": "threads",
                                "open_timeout": 10, "read_timeout": 10}}}
GUARDED = {"ALLOWED_NETWORKS": [f"{PUBLIC}/32"], "PROVIDERS": ENGINE, "LIVE_CHUNK_SECONDS": 4}


class Host:
    """An HTTP server on one loopback address: files from ``root``, optional redirects,
    and the list of every path it was asked for."""

    def __init__(self, address: str, root: Path, tls: ssl.SSLContext | None = None):
        self.paths: list[str] = []
        self.redirects: dict[str, str] = {}
        self.connections = 0
        host = self

        class Handler(SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps connections alive, as real servers do

            def setup(self) -> None:
                host.connections += 1
                super().setup()

            def do_GET(self) -> None:
                host.paths.append(self.path)
                if self.path in host.redirects:
                    self.send_response(302)
                    self.send_header("Location", host.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((address, 0),
                                          functools.partial(Handler, directory=str(root)))
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{address}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def hosts(root: Path) -> Iterator[tuple[Host, Host]]:
    public, private = Host(PUBLIC, root), Host(PRIVATE, root)
    try:
        yield public, private
    finally:
        public.close()
        private.close()


@pytest.fixture(scope="module")
def hls_root(tmp_path_factory) -> Path:
    """An 8 s HLS VOD (2 s segments) of speech_ad.mp4, plain and AES-128 encrypted (its key
    URI a placeholder the tests fill in)."""
    root = tmp_path_factory.mktemp("guard_hls")
    ffmpeg = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(MEDIA / "speech_ad.mp4"),
              "-t", "8", "-c", "copy", "-f", "hls", "-hls_time", "2",
              "-hls_playlist_type", "vod"]
    subprocess.run([*ffmpeg, str(root / "index.m3u8")], check=True)
    (root / "key.bin").write_bytes(bytes(range(16)))
    (root / "keyinfo").write_text(f"KEYURI\n{root / 'key.bin'}\n")
    subprocess.run([*ffmpeg, "-hls_key_info_file", str(root / "keyinfo"),
                    "-hls_segment_filename", str(root / "enc%d.ts"),
                    str(root / "encrypted.m3u8")], check=True)
    return root


@pytest.fixture
def served(hls_root) -> Iterator[tuple[Host, Host]]:
    with hosts(hls_root) as pair:
        yield pair


def run_stream_job(url: str, **extra) -> Job:
    with override_settings(MODERATION={**GUARDED, **extra}):
        job = pipeline.create_adhoc_job(url=url)
        assert job.media_kind == "live"
        pipeline.process(job.pk)
    job.refresh_from_db()
    return job


def assert_refused(job: Job, private: Host) -> None:
    assert (job.status, job.error_code) == (Status.FAILED, "forbidden_address")
    assert "private address" in job.error_message
    assert private.paths == []  # the private host never saw a request


# --- streams (FFmpeg through the guarded proxy) -------------------------------------------


@pytest.mark.django_db
def test_a_whole_stream_on_a_public_host_is_moderated(served):
    public, private = served
    job = run_stream_job(f"{public.url}/index.m3u8")
    assert job.status == Status.DONE, job.error_message
    assert job.frames.count() >= 6
    assert "/index0.ts" in public.paths and private.paths == []


@pytest.mark.django_db
def test_a_redirect_to_a_private_host_is_refused(served):
    public, private = served
    public.redirects["/live.m3u8"] = f"{private.url}/index.m3u8"
    assert_refused(run_stream_job(f"{public.url}/live.m3u8"), private)
    assert public.paths == ["/live.m3u8"]


@pytest.mark.django_db
def test_a_redirect_to_a_name_of_a_private_address_is_refused(served):
    public, private = served
    public.redirects["/live.m3u8"] = f"http://localhost:{private.port}/index.m3u8"
    assert_refused(run_stream_job(f"{public.url}/live.m3u8"), private)


@pytest.mark.django_db
def test_a_variant_playlist_on_a_private_host_is_refused(served, hls_root):
    public, private = served
    (hls_root / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n" f"{private.url}/index.m3u8\n")
    assert_refused(run_stream_job(f"{public.url}/master.m3u8"), private)


@pytest.mark.django_db
def test_a_segment_on_a_private_host_is_refused(served, hls_root):
    public, private = served
    playlist = (hls_root / "index.m3u8").read_text()
    (hls_root / "mixed.m3u8").write_text(
        playlist.replace("\nindex1.ts", f"\n{private.url}/index1.ts"))
    assert_refused(run_stream_job(f"{public.url}/mixed.m3u8"), private)
    assert "/index0.ts" in public.paths  # the public part was read


@pytest.mark.django_db
@pytest.mark.parametrize("key_host", ["public", "private"])
def test_an_encryption_key_on_a_private_host_is_refused(served, hls_root, key_host):
    public, private = served
    key_url = f"{(public if key_host == 'public' else private).url}/key.bin"
    name = f"enc_{key_host}.m3u8"
    (hls_root / name).write_text((hls_root / "encrypted.m3u8").read_text()
                                 .replace("KEYURI", key_url))
    job = run_stream_job(f"{public.url}/{name}")
    if key_host == "private":
        assert_refused(job, private)
    else:  # the same stream with its key on the public host plays: the key is the cause
        assert job.status == Status.DONE, job.error_message
        assert job.frames.count() >= 6 and "/key.bin" in public.paths


@pytest.mark.django_db
def test_an_encrypted_segment_on_a_private_host_is_refused(served, hls_root):
    """AES-128 segments are read through FFmpeg's crypto protocol: it too uses the proxy."""
    public, private = served
    playlist = (hls_root / "encrypted.m3u8").read_text().replace("KEYURI", f"{public.url}/key.bin")
    (hls_root / "enc_mixed.m3u8").write_text(
        playlist.replace("\nenc1.ts", f"\n{private.url}/enc1.ts"))
    assert_refused(run_stream_job(f"{public.url}/enc_mixed.m3u8"), private)


@pytest.mark.django_db
@pytest.mark.parametrize("scheme", ["httpproxy", "crypto+httpproxy", "tcp", "tls"])
def test_a_segment_naming_a_lower_protocol_cannot_connect_directly(served, hls_root, scheme):
    """FFmpeg's own proxy client (httpproxy, needed for CONNECT) and its transports would
    connect without the guard if a playlist could name them."""
    public, private = served
    playlist = (hls_root / "index.m3u8").read_text()
    name = f"lower_{scheme.replace('+', '_')}.m3u8"
    (hls_root / name).write_text(playlist.replace(
        "\nindex1.ts", f"\n{scheme}://{PRIVATE}:{private.port}/index1.ts"))
    run_stream_job(f"{public.url}/{name}")
    assert private.paths == [] and private.connections == 0


@pytest.mark.django_db
def test_the_first_url_naming_a_private_host_is_refused(served):
    public, private = served
    assert_refused(run_stream_job(f"http://localhost:{private.port}/index.m3u8"), private)


def test_no_proxy_in_the_environment_cannot_bypass_the_proxy(monkeypatch):
    """FFmpeg connects directly to hosts matching ``no_proxy``: the guard hides it from
    FFmpeg and leaves the value to Python's libraries as ``NO_PROXY``."""
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.delenv("NO_PROXY", raising=False)
    with GuardProxy():
        import os

        assert "no_proxy" not in os.environ and os.environ["NO_PROXY"] == "*"


def proxy_request(proxy: GuardProxy, line: str) -> bytes:
    with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))) as s:
        s.sendall(f"{line}\r\nHost: x\r\n\r\n".encode())
        s.settimeout(5)
        return s.recv(200)


def test_the_proxy_takes_plain_requests_only(served):
    """No CONNECT tunnel (FFmpeg never needs one: https is originated by the proxy), and a
    plain request to a private host is refused and recorded."""
    public, private = served
    with override_settings(MODERATION=GUARDED), GuardProxy() as proxy:
        assert b" 405 " in proxy_request(proxy, f"CONNECT {PUBLIC}:{public.port} HTTP/1.1")
        assert b" 405 " in proxy_request(proxy, f"GET tcp://{PUBLIC}:{public.port}/ HTTP/1.1")
        assert b" 403 " in proxy_request(proxy, f"GET {private.url}/key.bin HTTP/1.1")
        assert b" 200 " in proxy_request(proxy, f"GET {public.url}/key.bin HTTP/1.1")
        assert len(proxy.refused) == 1
        assert proxy.refused[0].startswith(f"{PRIVATE}:{private.port} ")
    assert private.paths == [] and public.paths == ["/key.bin"]


class FakeRtsp:
    """An RTSP server on one address that answers each request from ``replies`` (method ->
    status line and extra headers) and records the request lines; or, with no replies, a
    bare listener that records every connection (the private host)."""

    def __init__(self, address: str, replies: dict[str, str] | None = None):
        self.requests: list[str] = []
        self.connections = 0
        self.replies = replies
        self.server = socket.create_server((address, 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while self.replies is not None:
                data = conn.recv(4096)
                if not data:
                    return
                buffer += data
                while b"\r\n\r\n" in buffer:
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    lines = head.decode().split("\r\n")
                    self.requests.append(lines[0])
                    cseq = next(line.split(":", 1)[1].strip() for line in lines
                                if line.lower().startswith("cseq"))
                    reply = self.replies[lines[0].split()[0]]
                    conn.sendall(f"RTSP/1.0 {reply}\r\nCSeq: {cseq}\r\n\r\n".encode())

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def rtsp_hosts() -> Iterator[tuple[FakeRtsp, FakeRtsp]]:
    private = FakeRtsp(PRIVATE)
    public = FakeRtsp(PUBLIC, {"OPTIONS": "200 OK\r\nPublic: DESCRIBE, SETUP, PLAY",
                               "DESCRIBE": "404 Not Found"})
    yield public, private
    public.close()
    private.close()


@pytest.mark.django_db
def test_an_rtsp_redirect_is_not_followed(rtsp_hosts):
    """FFmpeg's RTSP client would reconnect to any Location by itself: the relay refuses
    the redirect before FFmpeg sees it."""
    public, private = rtsp_hosts
    public.replies["OPTIONS"] = f"302 Moved\r\nLocation: rtsp://{PRIVATE}:{private.port}/cam"
    job = run_stream_job(f"rtsp://{PUBLIC}:{public.port}/live")
    assert (job.status, job.error_code) == (Status.FAILED, "forbidden_address")
    assert "redirect" in job.error_message
    assert private.connections == 0


@pytest.mark.django_db
def test_rtsp_goes_through_the_relay_to_the_vetted_server(rtsp_hosts):
    public, private = rtsp_hosts
    job = run_stream_job(f"rtsp://{PUBLIC}:{public.port}/live?token=1")
    assert (job.status, job.error_code) == (Status.FAILED, "stream_unavailable")  # the 404
    url = f"rtsp://{PUBLIC}:{public.port}/live?token=1"
    assert public.requests == [f"OPTIONS {url} RTSP/1.0", f"DESCRIBE {url} RTSP/1.0"]


def test_a_kept_alive_connection_cannot_carry_a_request_past_the_guard(served):
    """A second request on the same client connection (keep-alive) must not reach a host
    the proxy never vetted: each request gets its own upstream connection, then it closes."""
    public, private = served
    with (override_settings(MODERATION=GUARDED), GuardProxy() as proxy,
          socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))) as s):
        s.settimeout(5)
        first = (f"GET {public.url}/key.bin HTTP/1.1\r\nHost: {PUBLIC}\r\n"
                 "Connection: keep-alive\r\n\r\n")
        s.sendall(first.encode())
        answer = b""
        while not answer.endswith(bytes(range(16))):
            answer += s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        with contextlib.suppress(OSError):  # the proxy closes after the first answer
            s.sendall(f"GET {private.url}/key.bin HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            s.recv(100)
        time.sleep(0.3)
    assert public.paths == ["/key.bin"] and private.paths == []


def test_non_http_schemes_get_the_vetted_address_literal():
    with override_settings(MODERATION={"ALLOWED_NETWORKS": ["127.0.0.0/8", "::1/128"]}):
        pinned = pinned_url("rtmp://user:pw@localhost:1935/live/key?x=1")
        assert pinned in ("rtmp://user:pw@127.0.0.1:1935/live/key?x=1",
                          "rtmp://user:pw@[::1]:1935/live/key?x=1")
    with pytest.raises(MediaError) as info:
        pinned_url("rtsp://localhost/cam")
    assert info.value.code == "forbidden_address"
    for url in ("rtsp://[::ffff:127.0.0.1]/cam", "srt://10.1.2.3:9000", "http://169.254.169.254/"):
        with pytest.raises(MediaError) as info:
            check_remote_url(url)
        assert info.value.code == "forbidden_address"


def make_tls_context(root: Path) -> ssl.SSLContext:
    """A server context with a self-signed certificate for the public host (FFmpeg and the
    guard do not verify upstream certificates, as FFmpeg's default)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, PUBLIC)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(PUBLIC))]), critical=False)
            .sign(key, hashes.SHA256()))
    (root / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(root / "cert.pem", root / "key.pem")
    return context


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory) -> ssl.SSLContext:
    return make_tls_context(tmp_path_factory.mktemp("tls"))


@pytest.mark.django_db
def test_https_streams_are_fetched_through_the_guard(hls_root, tls_context):
    """https is fetched by the proxy (FFmpeg is given http URLs to a marked host, in the
    first URL, in redirects and in playlists) and vetted like plain http."""
    public, private = Host(PUBLIC, hls_root, tls_context), Host(PRIVATE, hls_root)
    plain = Host(PUBLIC, hls_root)
    try:
        plain.redirects["/secure.m3u8"] = f"{public.url}/index.m3u8"  # http -> https
        job = run_stream_job(f"{plain.url}/secure.m3u8")
        assert job.status == Status.DONE, job.error_message
        assert job.frames.count() >= 6 and "/index0.ts" in public.paths
        public.redirects["/live.m3u8"] = f"{private.url}/index.m3u8"
        assert_refused(run_stream_job(f"{public.url}/live.m3u8"), private)
        playlist = (hls_root / "index.m3u8").read_text()  # an absolute https segment URL
        (hls_root / "https_mixed.m3u8").write_text(
            playlist.replace("\nindex1.ts", f"\nhttps://{PRIVATE}:{private.port}/index1.ts"))
        assert_refused(run_stream_job(f"{public.url}/https_mixed.m3u8"), private)
    finally:
        for host in (public, private, plain):
            host.close()


# --- evidence copies (requests with vetted connections) -----------------------------------


def test_evidence_redirected_to_a_private_host_is_refused(served, caplog):
    public, private = served
    public.redirects["/frame.jpg"] = f"{private.url}/key.bin"
    public.redirects["/moved.jpg"] = f"{public.url}/key.bin"
    with override_settings(MODERATION=GUARDED):
        assert download(f"{public.url}/frame.jpg") is None
        assert download(f"{public.url}/moved.jpg") == bytes(range(16))  # a public hop: fine
    assert private.paths == [] and "private address" in caplog.text


def test_evidence_host_that_rebinds_after_the_check_is_refused(served, monkeypatch):
    """The name answers public for the early check, private afterwards (DNS rebinding):
    the connection resolves and vets again and never reaches the private host."""
    public, private = served
    real = socket.getaddrinfo
    answers = iter([PUBLIC])

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            host = next(answers, PRIVATE)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with override_settings(MODERATION=GUARDED):
        assert download(f"http://rebind.test:{private.port}/key.bin") is None
    assert private.paths == []


# --- uploaded playlists -------------------------------------------------------------------


def hls_segment(path: Path) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i",
                    str(MEDIA / "speech_ad.mp4"), "-t", "2", "-c", "copy", "-f", "mpegts",
                    str(path)], check=True)
    return path


def test_a_playlist_whose_bad_entry_is_past_the_first_megabyte_is_refused(tmp_path):
    playlist = tmp_path / "big.m3u8"
    filler = "#EXTINF:2.0,\nseg.ts\n" * 60_000  # 1.2 MB of harmless entries
    playlist.write_text(f"#EXTM3U\n{filler}#EXTINF:2.0,\nhttp://{PRIVATE}/x.ts\n")
    assert playlist.stat().st_size > 1 << 20
    with pytest.raises(MediaError) as info:
        probe(playlist)
    assert info.value.code == "unsupported_format"


@pytest.mark.parametrize("name", ["clip.mp4", "clip.mov", "clip.mp3"])
def test_a_playlist_under_a_media_name_is_refused(tmp_path, name):
    upload = tmp_path / name
    upload.write_text("\ufeff#EXTM3U\n#EXTINF:2.0,\nsecret.ts\n#EXT-X-ENDLIST\n")
    with pytest.raises(MediaError) as info:
        probe(upload)
    assert info.value.code == "unsupported_format" and "playlist" in str(info.value)


def test_an_upload_cannot_read_another_local_file(tmp_path):
    """A playlist naming a real media file next to it (a relative path, which the old check
    let through) is refused by the sniff, and FFmpeg itself refuses it without the sniff."""
    hls_segment(tmp_path / "secret.ts")
    upload = tmp_path / "clip.mp4"
    upload.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nsecret.ts\n"
                      "#EXT-X-ENDLIST\n")
    with pytest.raises(MediaError):
        probe(upload)
    with pytest.raises(MediaError) as info:
        open_container(str(upload))  # the demuxer allow-list has no playlist demuxer
    assert info.value.code == "unsupported_format"
    with open(upload, "rb") as fh, pytest.raises(MediaError):
        open_container(fh)  # nor when read through a file object
    with open_container(str(tmp_path / "secret.ts")) as container:  # the file itself is fine
        assert container.streams.video


@pytest.mark.django_db
def test_an_uploaded_playlist_fails_its_job_visibly(tmp_path):
    content = b"#EXTM3U\n#EXTINF:2.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    with override_settings(MODERATION={"PROVIDERS": ENGINE}):
        job = pipeline.create_adhoc_job(kind="video", name="clip.mp4", content=content)
        assert pipeline.process(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error_code == "unsupported_format"


# --- stream URL fields and settings -------------------------------------------------------


@pytest.mark.parametrize("url, valid", [
    ("rtmp://live.example.com/app/key", True),
    ("rtmps://live.example.com/app/key", True),
    ("rtsp://camera.example.com:8554/stream", True),
    ("srt://live.example.com:9000?streamid=abc", True),
    ("https://cdn.example.com/live/index.m3u8", True),
    ("file:///etc/passwd", False),
    ("javascript:alert(1)", False),
    ("ftp://example.com/video.flv", False),
    ("rtsp://192.168.1.10/cam", False),  # a literal private address
])
def test_the_stream_url_field_takes_the_documented_schemes(url, valid):
    form = modelform_factory(Post, fields=["title", "stream_url"])(
        data={"title": "live", "stream_url": url})
    assert form.is_valid() is valid, form.errors
    demo_form = PostForm(data={"title": "live", "stream_url": url})  # the demo's own form
    assert demo_form.is_valid() is valid, demo_form.errors


def test_a_stream_url_without_a_scheme_is_taken_as_https():
    form = PostForm(data={"title": "live", "stream_url": "cdn.example.com/live.m3u8"})
    assert form.is_valid() and form.cleaned_data["stream_url"].startswith("https://")


@pytest.mark.parametrize("networks", [["10.0.0.0/33"], ["not-a-network"], "10.0.0.0/8"])
def test_bad_allowed_networks_are_reported(networks):
    with override_settings(MODERATION={"ALLOWED_NETWORKS": networks}):
        ids = [message.id for message in run_checks()]
    assert "moderation.E013" in ids


def test_good_allowed_networks_pass_the_check():
    with override_settings(MODERATION={"ALLOWED_NETWORKS": ["10.20.0.0/16", "fd00::/8"]}):
        assert "moderation.E013" not in [message.id for message in run_checks()]
