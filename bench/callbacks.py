"""Callback costs: SM3 per implementation (OpenSSL through hashlib, cryptography, pure
Python) on a callback-sized body, and the time to refuse an over-cap or deeply nested body.

    .venv/bin/python bench/callbacks.py

No database: the checksum and parser are pure functions; the refusals go through the view's
own body reader with a RequestFactory request.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.test import RequestFactory

    from moderation.providers.aliyun.callbacks import load_content
    from moderation.providers.aliyun.checksum import SM3_IMPLEMENTATION, sm3_implementations
    from moderation.views.callbacks import MalformedCallback, read_body

    body = os.urandom(1024 * 1024)
    print(f"SM3 of 1 MiB (in use: {SM3_IMPLEMENTATION})")
    for name, sm3 in sm3_implementations().items():
        seconds = best_of(lambda sm3=sm3: sm3(body), repeat=3 if name == "python" else 10)
        print(f"  {name:<13} {seconds * 1000:9.1f} ms   {1 / seconds:8.1f} MiB/s")

    cap = 16 * 1024 * 1024
    request = RequestFactory().post("/cb/", b"x" * 1024,
                                    content_type="application/x-www-form-urlencoded")
    request.META["CONTENT_LENGTH"] = str(10**9)  # announces 1 GB

    def refuse_declared():
        with contextlib.suppress(MalformedCallback):
            read_body(request, cap)

    print(f"refuse a body announcing 1 GB (cap {cap >> 20} MiB): "
          f"{best_of(refuse_declared, 100) * 1e6:.1f} µs, nothing read")
    deep = '{"TaskId":"t","a":' + "[" * 500_000 + "]" * 500_000 + "}"

    def refuse_deep():
        with contextlib.suppress(MalformedCallback):
            load_content(deep)

    print(f"refuse content nested 500,000 deep ({len(deep) >> 10} KiB): "
          f"{best_of(refuse_deep) * 1000:.1f} ms")
    frames = [{"Offset": i, "RiskLevel": "none",
               "Results": [{"Result": [{"Label": "nonLabel"}],
                            "Service": "videoDetection_global"}]} for i in range(7200)]
    big = json.dumps({"TaskId": "t", "FrameResult": {"Frames": frames}})
    seconds = [best_of(lambda: load_content(big)) for _ in range(3)]
    print(f"parse a 2-hour video's callback (7,200 frames, {len(big) >> 10} KiB) with the "
          f"depth check: {statistics.median(seconds) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
