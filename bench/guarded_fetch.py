"""What the network guard costs: a local HLS stream read by FFmpeg (PyAV) directly and
through the guarded loopback proxy, and an evidence copy with plain requests against the
vetted connections. Runs interleaved so that noise hits both alike.

    .venv/bin/python bench/guarded_fetch.py [--seconds 60] [--repeat 5]

The stream is demuxed, not decoded: this is the fetch path alone (the engine's analysis
costs far more per second of stream). Served from 127.0.0.2, admitted by ALLOWED_NETWORKS.
"""

from __future__ import annotations

import argparse
import functools
import ssl
import statistics
import subprocess
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from _setup import machine, setup_django


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:
        pass


def serve(root: Path, tls: ssl.SSLContext | None = None) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.2", 0), functools.partial(Quiet, directory=str(root)))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if tls else "http"
    return server, f"{scheme}://127.0.0.2:{server.server_address[1]}"


def self_signed(root: Path) -> ssl.SSLContext:
    from tests.security.test_network_guard import make_tls_context

    return make_tls_context(root)


def make_stream(root: Path, seconds: int) -> int:
    """A 1280x720 HLS VOD at about 8 Mbit/s (2 s segments); its size in bytes."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc2=size=1280x720:rate=30:duration={seconds}", "-c:v", "libx264",
                    "-preset", "ultrafast", "-b:v", "8M", "-g", "60", "-f", "hls",
                    "-hls_time", "2", "-hls_playlist_type", "vod", str(root / "index.m3u8")],
                   check=True)
    (root / "evidence.bin").write_bytes(bytes(5 * 1024 * 1024))
    return sum(p.stat().st_size for p in root.glob("*.ts"))


def read_stream(url: str, guarded: bool) -> int:
    import av

    from moderation.providers.local.live import HTTP, LIVE_FORMATS, network_guard

    with network_guard(url, allow_private_addresses=not guarded) as (
            source, guard_options, guard):
        assert guarded == (guard is not None)
        options = {"protocol_whitelist": HTTP, "format_whitelist": LIVE_FORMATS,
                   **guard_options}
        with av.open(source, options=options) as container:
            return sum(packet.size for packet in container.demux())


def main(seconds: int, repeat: int) -> None:
    setup_django()
    import requests
    from django.test import override_settings

    from moderation.guard_proxy import GuardProxy
    from moderation.guarded_http import fetch

    root = Path(tempfile.mkdtemp(prefix="guard-bench-"))
    size = make_stream(root, seconds)
    server, base = serve(root)
    tls_server, tls_base = serve(root, self_signed(root))
    print(f"# network guard overhead ({machine()})")
    print(f"HLS stream: {seconds} s, 720p, {size / 1e6:.1f} MB in {seconds // 2} segments; "
          f"median of {repeat}, interleaved")
    direct_settings = {"ALLOW_PRIVATE_ADDRESSES": True}
    guarded_settings = {"ALLOWED_NETWORKS": ["127.0.0.2/32"]}
    for label, url in (("http", f"{base}/index.m3u8"), ("https", f"{tls_base}/index.m3u8")):
        walls: dict[str, list[float]] = {"direct": [], "guarded": []}
        cpus: dict[str, list[float]] = {"direct": [], "guarded": []}
        for _ in range(repeat):
            for name, conf in (("direct", direct_settings), ("guarded", guarded_settings)):
                with override_settings(MODERATION=conf):
                    w0, c0 = time.perf_counter(), time.process_time()
                    read_stream(url, guarded=name == "guarded")
                    walls[name].append(time.perf_counter() - w0)
                    cpus[name].append(time.process_time() - c0)
        for name in walls:
            wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
            print(f"  {label:5s} {name:8s} {wall * 1000:8.1f} ms wall  {cpu * 1000:8.1f} ms CPU"
                  f"  {size / wall / 1e6:8.1f} MB/s  ({seconds / wall:6.0f}x real time)")
        extra = statistics.median(walls["guarded"]) - statistics.median(walls["direct"])
        extra_cpu = statistics.median(cpus["guarded"]) - statistics.median(cpus["direct"])
        print(f"  {label:5s} guard adds {extra * 1000:.1f} ms wall, {extra_cpu * 1000:.1f} ms CPU"
              f" per {seconds} s of stream")
    tls_server.shutdown()

    starts = []
    for _ in range(20):
        w0 = time.perf_counter()
        GuardProxy().close()
        starts.append(time.perf_counter() - w0)
    print(f"  proxy start + stop: {statistics.median(starts) * 1000:.2f} ms (median of 20)")

    evidence = f"{base}/evidence.bin"
    plain, vetted = [], []
    with override_settings(MODERATION=guarded_settings):
        for _ in range(repeat * 4):
            w0 = time.perf_counter()
            assert requests.get(evidence, timeout=10).content
            plain.append(time.perf_counter() - w0)
            w0 = time.perf_counter()
            fetch(evidence, max_bytes=10 << 20, timeout=(5, 15))
            vetted.append(time.perf_counter() - w0)
    print(f"evidence copy, 5 MB: requests {statistics.median(plain) * 1000:.1f} ms, "
          f"guarded fetch {statistics.median(vetted) * 1000:.1f} ms (median of {repeat * 4})")
    server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    main(args.seconds, args.repeat)
