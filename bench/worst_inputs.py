"""Memory and time of the local engine on the worst inputs we know, one fresh worker each.

    .venv/bin/python bench/worst_inputs.py [--only NAME ...] [--keep DIR] [--root DIR]

Generates the inputs into a temporary directory (ffmpeg + Pillow; about a minute), then
moderates each through the ``local`` provider in a FRESH subprocess, as a django-q2
worker would (models loaded on first use, speech and frames in the engine's pool of
processes). While it runs, this script samples every 50 ms the resident memory of the
subprocess and of all its descendants (forkserver, pool children) from /proc, and prints:
input, file size, media duration, wall time, the peak RSS of the largest single process
(the moderating process or one pool child: what one worker costs), the peak of the whole
process tree's sum (shared pages counted in each process, so an upper bound), the
outcome (suggestion or MediaError code) and the largest process as a share of the ~1 GB
target.

``--root`` runs the moderation code of another checkout (e.g. ``git archive`` of an
older commit) with this venv, for before/after figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB = 1024
SAMPLE_EVERY = 0.05  # seconds
PAGE = os.sysconf("SC_PAGE_SIZE")


# --- The inputs ---------------------------------------------------------------------------


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def declare_flac_samples(path: Path, samples: int) -> None:
    """Rewrite STREAMINFO's total-samples field: the header then lies about the length."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0, "STREAMINFO must come first"
    (field,) = struct.unpack(">Q", data[18:26])
    field = (field & ~((1 << 36) - 1)) | samples
    data[18:26] = struct.pack(">Q", field)
    path.write_bytes(bytes(data))


def silent_flac(out: Path, seconds: int) -> None:
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", str(seconds),
           "-c:a", "flac", str(out))


def make_inputs(folder: Path) -> list[tuple[str, Path, str, str]]:
    """(name, path, media kind, what it is) of every worst input, made if missing."""
    specs = []

    def add(name: str, kind: str, what: str, make) -> None:
        path = folder / name
        if not path.exists():
            started = time.perf_counter()
            make(path)
            print(f"  made {name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        specs.append((name, path, kind, what))

    add("silence_3h.flac", "audio", "3 h of digital silence, FLAC",
        lambda p: silent_flac(p, 3 * 3600))
    add("black_silent_3h.mp4", "video", "3 h black 160x120 video, silent AAC track",
        lambda p: ffmpeg("-f", "lavfi", "-i", "color=black:s=160x120:r=2",
                         "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "10800",
                         "-c:v", "libx264", "-preset", "ultrafast", "-g", "20",
                         "-c:a", "aac", "-b:a", "16k", "-shortest", str(p)))
    add("huge_frames_8000.mp4", "video", "8000x8000 H.264 frames (64 MP), 4 s",
        lambda p: ffmpeg("-f", "lavfi", "-i", "testsrc2=s=8000x8000:r=1:d=4",
                         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                         str(p)))
    add("big_frames_6000.mp4", "video", "6000x6000 H.264 frames (36 MP), 6 s at 2 fps",
        lambda p: ffmpeg("-f", "lavfi", "-i", "testsrc2=s=6000x6000:r=2:d=6",
                         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                         str(p)))
    add("image_36mp.png", "image", "36 MP PNG (6000x6000)",
        lambda p: ffmpeg("-f", "lavfi", "-i", "testsrc2=s=6000x6000", "-frames:v", "1",
                         str(p)))
    add("image_36mp.jpg", "image", "36 MP JPEG (6000x6000)",
        lambda p: ffmpeg("-f", "lavfi", "-i", "testsrc2=s=6000x6000", "-frames:v", "1",
                         "-q:v", "4", str(p)))
    add("animated_800.gif", "image", "animated GIF, 800x800, 300 frames at 10 fps",
        lambda p: ffmpeg("-f", "lavfi", "-i", "testsrc2=s=800x800:r=10:d=30",
                         "-vf", "split[a][b];[a]palettegen=max_colors=64[p];[b][p]paletteuse",
                         str(p)))
    add("declares_5h.flac", "audio", "5 h of silence: past MAX_DURATION by its header",
        lambda p: silent_flac(p, 5 * 3600))

    def lying(p: Path) -> None:
        silent_flac(p, 10 * 3600)
        declare_flac_samples(p, 10 * 16000)

    add("lies_10s_runs_10h.flac", "audio", "header declares 10 s, runs for 10 h", lying)
    return specs


# --- One moderation in a fresh process ------------------------------------------------------


def moderate_one(path: str, kind: str) -> None:
    """The subprocess: moderate one file through the local provider; JSON on stdout."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ.setdefault("MODERATION_TEST_ROOT", tempfile.mkdtemp(prefix="worst-inputs-"))
    import django

    django.setup()
    from moderation.providers import get_provider
    from moderation.providers.base import Media, ModerationRequest
    from moderation.providers.errors import ModerationError
    from moderation.providers.local import pool

    request = ModerationRequest(scenes=["porn", "qrcode", "ad"],
                                options={"parallelism": "processes"})
    started = time.perf_counter()
    try:
        result = get_provider("local").submit(Media.from_path(path, kind), request)
        outcome = result.suggestion
        detail = {k: result.raw.get(k) for k in ("audio_stream", "frames_sampled")
                  if isinstance(result.raw, dict) and k in result.raw}
    except ModerationError as exc:
        outcome, detail = f"error: {exc.code}", {"message": str(exc)[:120]}
    wall = time.perf_counter() - started
    pool.shutdown_pools()
    with open("/proc/self/status") as fh:  # VmHWM: ru_maxrss is inherited over fork + exec
        own = int(fh.read().split("VmHWM:")[1].split()[0]) // 1024
    print(json.dumps({"outcome": outcome, "wall": wall, "own_peak_mb": own, **detail}))


def tree_rss(root: int) -> tuple[int, int]:
    """(sum, largest) RSS in MB of ``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total = largest = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += pages * PAGE
        largest = max(largest, pages * PAGE)
    return total >> 20, largest >> 20


def run_one(path: Path, kind: str, code_root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    command = [sys.executable, str(Path(__file__).resolve()), "--one", str(path), kind]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=code_root, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    peak_sum = peak_one = 0
    while child.poll() is None:
        total, largest = tree_rss(child.pid)
        peak_sum, peak_one = max(peak_sum, total), max(peak_one, largest)
        time.sleep(SAMPLE_EVERY)
    out, err = child.communicate()
    wall = time.perf_counter() - started
    try:
        report = json.loads(out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        report = {"outcome": f"crashed (exit {child.returncode})", "wall": wall,
                  "own_peak_mb": 0, "stderr": err[-400:]}
    peak_one = max(peak_one, report.get("own_peak_mb", 0))
    return {**report, "process_wall": wall, "peak_sum_mb": peak_sum, "peak_one_mb": peak_one}


def media_seconds(path: Path) -> str:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(path)], capture_output=True, text=True)
    try:
        return f"{float(probe.stdout.strip()):.0f} s"
    except ValueError:
        return "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--one", nargs=2, metavar=("PATH", "KIND"), help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="*", help="names of the inputs to run (default all)")
    parser.add_argument("--keep", help="make and keep the inputs in this directory")
    parser.add_argument("--root", default=str(ROOT), help="checkout whose code moderates")
    args = parser.parse_args()
    if args.one:
        sys.path.insert(0, os.getcwd())
        moderate_one(*args.one)
        return
    if not shutil.which("ffmpeg"):
        print("skipped: ffmpeg not found")
        return
    folder = Path(args.keep or tempfile.mkdtemp(prefix="worst-inputs-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"Worst inputs, local provider, one fresh process each ({os.cpu_count()} cores; "
          f"code from {args.root})")
    specs = make_inputs(folder)
    header = (f"{'input':<24} {'size':>9} {'declared':>9} {'wall':>7} {'largest':>8} "
              f"{'tree sum':>9}  {'of 1 GB':>7}  outcome")
    print(header)
    print("-" * len(header))
    for name, path, kind, _what in specs:
        if args.only and name not in args.only:
            continue
        row = run_one(path, kind, Path(args.root))
        size = path.stat().st_size
        shown = f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"
        declared = media_seconds(path) if kind != "image" else "-"
        print(f"{name:<24} {shown:>9} {declared:>9} {row['process_wall']:>6.1f}s "
              f"{row['peak_one_mb']:>6} MB {row['peak_sum_mb']:>6} MB  "
              f"{row['peak_one_mb'] / TARGET_MB:>6.0%}  {row['outcome']}", flush=True)
        if "stderr" in row:
            print(f"    {row['stderr']}")
    print("\nlargest: peak RSS of the largest single process (the moderating one or a pool "
          "child); tree sum: the whole process tree, shared pages counted per process.")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
