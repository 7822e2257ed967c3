"""The offline image engine: per-stage latency and whole-image throughput.

    .venv/bin/python bench/image_engine.py [--repeat 10] [--images 48]

Per stage: median wall ms over ``repeat`` runs of each sample picture (after warm-up), as
timed inside the engine. Throughput: images per second through LocalProvider.submit
(decode + all stages + thumbnail), in one process and in a pool of one process per core
(spawned, each with its own models, ONNX at 1 thread, as the qcluster workers run).
CPU time is printed beside wall time: the machine is shared and noisy (ENGINE-NOTES).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "demo_project" / "sample_media"
NAMES = ("benign.jpg", "qrcode.jpg", "ad_text.png")
STAGES = ("decode", "pdq", "nudenet", "qr", "ocr", "rules", "thumbnail")


def _django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")
    import django

    django.setup()


def _provider():
    from moderation.providers import get_provider

    return get_provider("local")


def _submit(provider, path: Path):
    from moderation.providers import Media, ModerationRequest

    media = Media.from_path(str(path), "image")
    return provider.submit(media, ModerationRequest(scenes=list(provider.default_scenes)))


def _worker_init():
    _django()
    from moderation.providers.local.engine import warm_up

    warm_up()


def _worker_run(name: str) -> float:
    c0 = time.process_time()
    _submit(_provider(), SAMPLES / name)
    return time.process_time() - c0


def stage_latency(repeat: int) -> dict[str, dict[str, float]]:
    provider = _provider()
    table = {}
    for name in NAMES:
        runs = [_submit(provider, SAMPLES / name).raw["timings_ms"] for _ in range(repeat)]
        table[name] = {stage: statistics.median(r.get(stage, 0.0) for r in runs)
                       for stage in STAGES}
        table[name]["labels"] = ", ".join(
            lbl.label for lbl in _submit(provider, SAMPLES / name).labels)
    return table


def throughput_single(n: int) -> tuple[float, float]:
    provider = _provider()
    w0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        _submit(provider, SAMPLES / NAMES[i % len(NAMES)])
    return n / (time.perf_counter() - w0), (time.process_time() - c0) / n


def throughput_pool(n: int, workers: int) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_worker_init) as pool:
        pool.map(_worker_run, NAMES * workers)  # every worker warm
        w0 = time.perf_counter()
        cpu = pool.map(_worker_run, [NAMES[i % len(NAMES)] for i in range(n)], chunksize=1)
        wall = time.perf_counter() - w0
    return n / wall, sum(cpu) / n


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(repeat: int, images: int) -> None:
    _django()
    from _setup import machine

    from moderation.providers.local.engine import warm_up

    rss0 = rss_mb()
    t0 = time.perf_counter()
    warm_up()
    load = time.perf_counter() - t0
    print(f"# image engine ({machine()})")
    print(f"model load + warm-up: {load:.2f} s, RSS {rss0:.0f} -> {rss_mb():.0f} MB")
    print(f"\n## per-stage latency, median of {repeat} runs, ms (1 ONNX thread)")
    table = stage_latency(repeat)
    print(f"{'image':<12}" + "".join(f"{s:>10}" for s in STAGES) + f"{'total':>10}  labels")
    for name, row in table.items():
        total = sum(row[s] for s in STAGES)
        print(f"{name:<12}" + "".join(f"{row[s]:>10.1f}" for s in STAGES)
              + f"{total:>10.1f}  {row['labels']}")

    single, single_cpu = throughput_single(images)
    workers = os.cpu_count() or 1
    pooled, pooled_cpu = throughput_pool(images, workers)
    print(f"\n## whole-image throughput ({images} images, the three samples in turn)")
    print(f"1 process:              {single:6.2f} img/s   CPU {single_cpu * 1000:6.1f} ms/img")
    print(f"{workers} processes (spawn):   {pooled:6.2f} img/s   "
          f"CPU {pooled_cpu * 1000:6.1f} ms/img   speed-up {pooled / single:.2f}x")
    print(f"RSS of this process with all models: {rss_mb():.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--images", type=int, default=48)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(args.repeat, args.images)
