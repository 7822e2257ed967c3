"""The offline video engine on a 60 s 720p H.264 video with speech, at 1 frame/s.

    .venv/bin/python bench/video_engine.py [--seconds 60] [--keep DIR]

Makes the video with tests/media/make_videos.py --bench (flite + ffmpeg), then, all in one
run so that the ratios compare like with like on a noisy machine:

1. decoding alone: the strategies of sampling.py (seek vs sequential) at 1 and 2 s;
2. whole jobs (frames + speech) with dedup and the OCR gate on and off, in worker
   processes and in threads: wall, CPU (this process + the worker processes), the
   real-time factor (video seconds per wall second), per-stage seconds, the share of
   frames reused as near-duplicates, and recall on the known events of the timeline (QR
   seconds, caption seconds, the profanity and ad utterances).

CPU time is printed beside wall time: on a shared machine CPU is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENES = ["porn", "qrcode", "ad"]
QR, CONTACT = "pt_qrCode", "pt_toDirectContact_tii"
# (name, options) of the whole-job runs; the first is the default configuration.
RUNS = [
    ("processes, dedup+gate (default)", {"parallelism": "processes"}),
    ("processes, no dedup", {"parallelism": "processes", "dedup_threshold": 0}),
    ("processes, no OCR gate", {"parallelism": "processes", "ocr_gate": False}),
    ("processes, neither", {"parallelism": "processes", "dedup_threshold": 0, "ocr_gate": False}),
    ("threads, dedup+gate", {"parallelism": "threads"}),
    ("threads, neither", {"parallelism": "threads", "dedup_threshold": 0, "ocr_gate": False}),
    # the speech default before issue 11 (its decoders load in the workers on first use)
    ("processes, pocketsphinx+KWS (old)", {"parallelism": "processes",
                                           "asr_engine": "pocketsphinx",
                                           "asr_keyword_spotting": True}),
]
STAGES = ("decode", "hash", "thumbnail", "pdq", "nudenet", "qr", "ocr", "rules", "speech")


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()


def make_video(seconds: float, folder: Path) -> Path | None:
    missing = [tool for tool in ("ffmpeg", "flite") if not shutil.which(tool)]
    if missing:
        print(f"skipped: {' and '.join(missing)} not found (apt-get install flite ffmpeg)")
        return None
    out = folder / f"bench{seconds:g}.mp4"
    if not out.exists():
        script = ROOT / "tests" / "media" / "make_videos.py"
        subprocess.run([sys.executable, str(script), "--bench", f"{seconds:g}", str(out)],
                       check=True)
    return out


def worker_cpu() -> float:
    """CPU seconds used so far by the live worker processes of the pool (Linux /proc)."""
    from moderation.providers.local import pool

    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for executor in list(pool._pools.values()):
        for pid in list(getattr(executor, "_processes", {}) or {}):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


# --- 1. decoding --------------------------------------------------------------------------


def decode_table(video: Path, folder: Path) -> None:
    from moderation.providers.local.container import probe
    from moderation.providers.local.sampling import (
        DecodeStats,
        choose_strategy,
        sample_frames,
        sample_offsets,
    )

    sources = {"as made (GOP 2 s + scene cuts)": video}
    if shutil.which("ffmpeg"):
        short = folder / "gop1.mp4"
        if not short.exists():
            subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(video),
                            "-c:v", "libx264", "-preset", "veryfast", "-crf", "32", "-g", "30",
                            "-c:a", "copy", str(short)], check=True)
        sources["re-encoded, GOP 1 s"] = short
    print("\n## 1. decoding alone (sample_frames), median of 3")
    print(f"{'source':<32}{'interval':>9}{'strategy':>12}{'wall s':>9}{'CPU s':>8}"
          f"{'decoded':>9}{'late s':>8}  chosen")
    for label, path in sources.items():
        info = probe(str(path))
        for interval in (1, 2):
            offsets = sample_offsets(info.duration, interval, 3600)
            chosen = choose_strategy(info, interval)
            for strategy in ("seek", "sequential"):
                runs = []
                for _ in range(3):
                    stats = DecodeStats(strategy=strategy)
                    w0, c0 = time.perf_counter(), time.process_time()
                    for _ in sample_frames(str(path), info, offsets, stats):
                        pass
                    runs.append((time.perf_counter() - w0, time.process_time() - c0, stats))
                wall, cpu, stats = sorted(runs, key=lambda r: r[0])[1]
                mark = "<-" if strategy == chosen else ""
                print(f"{label:<32}{interval:>9}{strategy:>12}{wall:>9.2f}{cpu:>8.2f}"
                      f"{stats.decoded:>9}{stats.late:>8.3f}  {mark}")


# --- 2. whole jobs ------------------------------------------------------------------------


def expected_events(seconds: float) -> dict[str, set[float]]:
    sys.path.insert(0, str(ROOT))
    from tests.media.make_videos import bench_timeline

    spec = bench_timeline(seconds)
    events: dict[str, set[float]] = {"qr": set(), "caption": set(), "profanity": set(), "ad": set()}
    for start, end, kind, _ in spec["screen"]:
        events[kind] |= {float(t) for t in range(int(start), int(end)) if start <= t < end}
    for start, text in spec["speech"]:
        if "fucking" in text:
            events["profanity"].add(start)
        if "cheap pills" in text:
            events["ad"].add(start)
    return events


def recall(result, events: dict[str, set[float]]) -> dict[str, tuple[int, int]]:
    """(found, expected) per event kind: frames by second, utterances by start (+-1 s)."""
    def frames_with(label: str) -> set[float]:
        return {f.offset for f in result.frames
                if any(lbl.label == label and lbl.risk_level != "none" for lbl in f.labels)}

    def slices_with(label: str) -> list[float]:
        return [s.start for s in result.slices
                if any(lbl.label == label and lbl.risk_level != "none" for lbl in s.labels)]

    out = {
        "qr": (len(frames_with(QR) & events["qr"]), len(events["qr"])),
        "caption": (len(frames_with(CONTACT) & events["caption"]), len(events["caption"])),
    }
    for kind in ("profanity", "ad"):
        starts = slices_with(kind)
        found = sum(1 for t in events[kind] if any(abs(s - t) <= 1 for s in starts))
        out[kind] = (found, len(events[kind]))
    return out


def run_job(video: Path, options: dict) -> tuple[object, float, float]:
    from moderation.providers.local.video import analyse_video

    c_workers, c0, w0 = worker_cpu(), time.process_time(), time.perf_counter()
    result = analyse_video(str(video), scenes=SCENES, audio=True,
                           options={"thumbnail_size": 320, **options})
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0 + worker_cpu() - c_workers
    return result, wall, cpu


def jobs_table(video: Path, seconds: float) -> None:
    from moderation.providers.local import pool

    print("\n## 2. whole jobs: 60 frames at 1 frame/s + speech; models loaded and warm")
    w0 = time.perf_counter()
    pool.warm_workers(pool.PROCESSES, pool.default_workers(), {})
    pool.warm_workers(pool.THREADS, 1, {})
    print(f"warm-up (2 worker processes + this process): {time.perf_counter() - w0:.1f} s")
    events = expected_events(seconds)
    rows = []
    for name, options in RUNS:
        result, wall, cpu = run_job(video, options)
        rows.append((name, result, wall, cpu))
    header = (f"{'run':<32}{'wall s':>8}{'CPU s':>8}{'RTF':>7}{'x real':>8}"
              f"{'analysed':>10}{'reused':>8}{'ocr skip':>9}  recall qr/caption/profanity/ad")
    print(header)
    for name, result, wall, cpu in rows:
        raw = result.raw
        found = recall(result, events)
        text = "  ".join(f"{k} {a}/{b}" for k, (a, b) in found.items())
        print(f"{name:<32}{wall:>8.2f}{cpu:>8.2f}{wall / seconds:>7.3f}{seconds / wall:>8.1f}"
              f"{raw['frames_analysed']:>10}{raw['frames_reused']:>8}{raw['ocr_gated']:>9}  {text}")
    base = {name: (wall, cpu) for name, _, wall, cpu in rows}
    default = rows[0]
    print("\nratios (wall / CPU):")
    for name, (wall, cpu) in base.items():
        if name != default[0]:
            print(f"  {name:<32} {wall / default[2]:5.2f}x / {cpu / default[3]:5.2f}x "
                  f"the default")
    print(f"  threads vs processes (dedup+gate): wall {base[RUNS[4][0]][0] / default[2]:.2f}x")
    print("\nper-stage seconds, summed over the job: wall as each stage timed itself (the")
    print("image stages run at 1 ONNX thread, so wall ~ CPU when uncontended); then the CPU")
    print("seconds of the decoding thread (without FFmpeg's own frame threads), of all frame")
    print("tasks and of all speech tasks")
    print(f"{'run':<32}" + "".join(f"{s:>10}" for s in STAGES) + f"{'dec CPU':>9}"
          f"{'frm CPU':>9}{'sp CPU':>8}")
    for name, result, _, _ in rows:
        stages = result.raw["stages"]
        cells = [f"{stages[s]['wall_s']:>10.2f}" if s in stages else f"{'-':>10}" for s in STAGES]
        cpus = [stages.get(s, {}).get("cpu_s", 0.0) for s in ("decode", "frame_tasks", "speech")]
        print(f"{name:<32}" + "".join(cells) + f"{cpus[0]:>9.2f}{cpus[1]:>9.2f}{cpus[2]:>8.2f}")
    decode = default[1].raw["decode"]
    sampled = default[1].raw["frames_sampled"]
    print(f"\ndefault run: decode strategy {decode['strategy']} ({decode['decoded']} frames "
          f"decoded, samples at most {decode['late']} s late); "
          f"{default[1].raw['frames_reused']}/{sampled} frames reused "
          f"({default[1].raw['frames_reused'] / sampled:.0%}); OCR skipped on "
          f"{default[1].raw['ocr_gated']} of {default[1].raw['frames_analysed']} analysed frames")


def main(seconds: float, keep: str | None) -> None:
    setup_django()
    from moderation.providers.local import pool

    load = os.getloadavg()[0]
    print(f"# video engine: {seconds:g} s 1280x720 30 fps H.264 + AAC speech "
          f"({os.cpu_count()} cores, load average {load:.2f}, Python {sys.version.split()[0]})")
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="moderation-video-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        video = make_video(seconds, folder)
        if video is None:
            return
        decode_table(video, folder)
        jobs_table(video, seconds)
    finally:
        pool.shutdown_pools()
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--keep", help="make (or reuse) the videos in this folder")
    args = parser.parse_args()
    main(args.seconds, args.keep)
