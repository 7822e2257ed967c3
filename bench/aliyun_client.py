"""The Alibaba client against the emulator on loopback: sustained request rate at the
account's QPS limit, and the time to ingest a 2-hour video result.

    .venv/bin/python bench/aliyun_client.py [--seconds 10] [--threads 4] [--limit 100]

1. Rate: ``--threads`` workers poll ``VideoModerationResult`` of a finished task for
   ``--seconds`` through the real client (signing, the database-backed GCRA limiter,
   HTTP keep-alive). The emulator enforces ``--limit`` requests per wall-clock second and
   counts what it refuses; the client is configured with the same limit. Figures: achieved
   rate, ratio to the limit, throttles the emulator answered (should be 0), and the
   limiter's wait per call.
2. Ingest: a 2.0 ``VideoModerationResult`` body for a 2-hour video (7,200 frames at 1 fps,
   1,000 audio slices; 2 % of frames and 5 % of slices flagged with a ``TempUrl``/``Url``
   served on loopback) is parsed and ingested into one job: rows, evidence copies, wall
   time, database queries.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _setup import ROOT, machine, setup_django

KEY_ID, SECRET = "LTAI5tBenchKeyId000001", "BenchSecret000000000000000001"


def rate(seconds: float, threads: int, limit: int) -> None:
    import tempfile
    from pathlib import Path

    from django.db import connection
    from django.test import override_settings

    from moderation.emulator.config import EmulatorConfig
    from moderation.emulator.server import start
    from moderation.providers import ModerationRequest, get_provider
    from moderation.providers.aliyun.client import RATE_HEADROOM
    from moderation.providers.base import Media

    oss = Path(tempfile.mkdtemp(prefix="bench-oss-"))
    (oss / "clean.mp4").write_bytes((ROOT / "tests" / "media" / "clean.mp4").read_bytes())
    config = EmulatorConfig(access_key_id=KEY_ID, access_key_secret=SECRET, oss_root=oss,
                            qps_limit=limit)
    with start(config) as emulator:
        conf = {"PROVIDERS": {"bench": {
            "BACKEND": "moderation.providers.aliyun.guardrails.GuardrailsProvider",
            "OPTIONS": {"ACCESS_KEY_ID": KEY_ID, "ACCESS_KEY_SECRET": SECRET,
                        "ENDPOINT": emulator.url, "RATE_LIMIT": limit},
        }}}
        with override_settings(MODERATION=conf):
            get_provider.cache_clear()
            provider = get_provider("bench")
            submitted = provider.submit(Media(name="clean.mp4", kind="video",
                                              url="oss://bench/clean.mp4"),
                                        ModerationRequest())
            while provider.fetch(submitted.task_id, ModerationRequest()).status != "done":
                time.sleep(0.5)
            emulator.app.rate.refused = 0
            counts, waits, errors = [0] * threads, [0.0] * threads, []
            stop = time.monotonic() + seconds

            def worker(n: int) -> None:
                from moderation import ratelimit

                own = type(provider)("bench", provider.options)  # its own HTTP session
                key = f"{own.account}:request"
                # The turn is taken here, to time the limiter apart from the HTTP call.
                own.take_turn = lambda rate="request": None
                try:
                    while time.monotonic() < stop:
                        waits[n] += ratelimit.acquire(key, limit * RATE_HEADROOM, max_wait=30)
                        own.fetch(submitted.task_id, ModerationRequest())
                        counts[n] += 1
                except Exception as exc:  # pragma: no cover - reported
                    errors.append(exc)
                finally:
                    connection.close()

            started = time.monotonic()
            pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
            elapsed = time.monotonic() - started
        get_provider.cache_clear()
        total = sum(counts)
        achieved = total / elapsed
        print(f"rate: {threads} threads, {elapsed:.1f} s, limit {limit}/s on both sides")
        print(f"  requests           {total}")
        print(f"  achieved           {achieved:8.1f} req/s   ratio to limit {achieved / limit:.3f}")
        print(f"  throttled (429/403) {emulator.app.rate.refused:6d}   (emulator-side count)")
        print(f"  limiter wait/call  {sum(waits) / max(total, 1) * 1000:8.2f} ms")
        if errors:
            print(f"  errors             {len(errors)}: {errors[0]!r}")


def two_hour_result(base: str, frames: int = 7200, slices: int = 1000) -> dict:
    """A 2.0 VideoModerationResult ``Data`` shaped like the emulator's (Appendix A)."""
    frame_items = []
    for n in range(frames):
        flagged = n % 50 == 0
        item = {"Offset": float(n), "RiskLevel": "medium" if flagged else "none",
                "Results": [{"Service": "videoDetection_global", "Result": (
                    [{"Label": "pt_qrCode", "Confidence": 99.0, "Description": "qr"}]
                    if flagged else [{"Label": "nonLabel", "Description": "no risk"}])}]}
        if flagged:
            item["TempUrl"] = f"{base}/frame/{n}.jpg"
        frame_items.append(item)
    slice_items = []
    for n in range(slices):
        flagged = n % 20 == 0
        item = {"StartTime": n * 7, "EndTime": n * 7 + 6, "Text": f"sentence number {n}",
                "Labels": "profanity" if flagged else "", "Descriptions": "",
                "RiskWords": "damn" if flagged else "", "RiskLevel": "high" if flagged else "none"}
        if flagged:
            item["Url"] = f"{base}/slice/{n}.wav"
        slice_items.append(item)
    return {"Code": 200, "Message": "OK", "RequestId": "bench", "Data": {
        "TaskId": "vi_f_bench", "DataId": "bench", "RiskLevel": "high",
        "FrameResult": {"FrameNum": frames, "FrameSummarys": [], "Frames": frame_items,
                        "RiskLevel": "medium"},
        "AudioResult": {"AudioSummarys": [], "SliceDetails": slice_items, "RiskLevel": "high"},
    }}


def ingest_two_hours() -> None:
    from django.db import connection
    from django.test import override_settings
    from django.test.utils import CaptureQueriesContext

    from moderation import pipeline
    from moderation.models import AudioSlice, Frame, Job
    from moderation.providers.aliyun import guardrails_video as video
    from tests.conftest import png_bytes

    jpeg = png_bytes(size=(320, 180))  # what a TempUrl serves (bytes are stored as given)
    wav = b"RIFF" + b"\0" * 4000

    class Files(BaseHTTPRequestHandler):
        def do_GET(self):
            data = jpeg if "/frame/" in self.path else wav
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    body = two_hour_result(f"http://127.0.0.1:{server.server_port}")
    raw = json.dumps(body)
    try:
        with override_settings(MODERATION={"ALLOW_PRIVATE_ADDRESSES": True}):
            job = pipeline.create_adhoc_job(kind="video", url="https://example.com/2h.mp4",
                                            provider="local")
            t0 = time.perf_counter()
            result = video.parse_video_result(json.loads(raw), "videoDetection_global")
            parsed = time.perf_counter() - t0
            with CaptureQueriesContext(connection) as queries:
                t1 = time.perf_counter()
                pipeline.ingest(job, result)
                ingested = time.perf_counter() - t1
    finally:
        server.shutdown()
    job.refresh_from_db()
    frames = Frame.objects.filter(job=job)
    print(f"ingest of a 2-hour result ({len(raw) / 1e6:.1f} MB JSON)")
    print(f"  parse              {parsed:8.2f} s")
    print(f"  ingest             {ingested:8.2f} s   ({len(queries)} queries)")
    print(f"  rows               {frames.count()} frames, "
          f"{AudioSlice.objects.filter(job=job).count()} slices")
    print(f"  evidence copied    {frames.exclude(thumbnail='').count()} thumbnails, "
          f"{AudioSlice.objects.filter(job=job).exclude(clip='').count()} clips")
    print(f"  job                {job.status}, {job.suggestion}, risk {job.risk_level}")
    assert Job.objects.filter(pk=job.pk, status="done").exists()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args()
    setup_django()
    import logging

    logging.getLogger("django-q").setLevel(logging.WARNING)
    print(f"# Alibaba client vs emulator ({machine()})")
    rate(args.seconds, args.threads, args.limit)
    print()
    ingest_two_hours()


if __name__ == "__main__":
    main()
