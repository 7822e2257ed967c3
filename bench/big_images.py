"""Peak memory and wall time of very large images through the local engine.

    .venv/bin/python bench/big_images.py [--only png,jpeg,gif]

Each input is generated here, then analysed through ``LocalProvider.submit`` in a fresh
process (all scenes, frame work in threads of that process, as in a daemonic django-q2
worker), which reports its peak RSS (``ru_maxrss``, models included) and its wall time.
The models alone take about 450-500 MB (ENGINE-NOTES); the target is about 1 GB.

Inputs: a 36-megapixel PNG and JPEG (7360x4912, a photo-like gradient with shapes and a
QR code), a big animated GIF (2000x2000, 200 frames of 100 ms, 800 megapixels decoded)
a GIF of 10 000 one-pixel frames on a 4000x4000 canvas (must fail at once) and, with
``--only webp``, an animated WebP of 6 frames at the working size (4096x4096).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QR = ROOT / "demo_project" / "sample_media" / "qrcode.jpg"
BIG = (7360, 4912)  # 36 MP, a full-frame camera's picture
GIF_FRAMES = 200


def _canvas(size: tuple[int, int], seed: int = 0):
    """A photo-like picture: smooth gradients, shapes and a QR code (PNG stays < 20 MB)."""
    import numpy as np
    from PIL import Image, ImageDraw

    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    red = (x[None, :] * 0.6 + y * 0.4).astype(np.uint8)
    green = np.broadcast_to((255 - x)[None, :] * 0.5 + 60, (height, width)).astype(np.uint8)
    blue = np.broadcast_to(y * 0.8 + (seed * 37) % 60, (height, width)).astype(np.uint8)
    image = Image.fromarray(np.dstack([red, green, blue]))
    draw = ImageDraw.Draw(image)
    for i in range(12):
        left, top = (i * 577 + seed * 91) % (width - 600), (i * 331) % (height - 600)
        draw.ellipse((left, top, left + 500, top + 400), fill=(40 * i % 255, 200, 90))
    qr = Image.open(QR).convert("RGB")
    qr = qr.resize((qr.width * 2, qr.height * 2))
    image.paste(qr, (width // 3, height // 3))
    return image


def make_inputs(folder: Path, only: set[str]) -> dict[str, Path]:
    from PIL import Image

    made: dict[str, Path] = {}
    if only & {"png", "jpeg"}:
        picture = _canvas(BIG)
        if "png" in only:
            made["png"] = folder / "big.png"
            picture.save(made["png"], compress_level=6)
        if "jpeg" in only:
            made["jpeg"] = folder / "big.jpg"
            picture.save(made["jpeg"], quality=90)
        del picture
    if "gif" in only:
        from PIL import ImageDraw

        base = _canvas((2000, 2000)).quantize(colors=64)
        frames = []
        for i in range(GIF_FRAMES):  # a moving square: small deltas, a small file
            frame = base.copy()
            ImageDraw.Draw(frame).rectangle((i * 9, 100, i * 9 + 150, 250), fill=i % 64)
            frames.append(frame)
        made["gif"] = folder / "big.gif"
        frames[0].save(made["gif"], save_all=True, append_images=frames[1:], duration=100,
                       loop=0)
        del frames
    if "bomb" in only:  # 10 000 one-pixel frames on a 4000x4000 canvas: 160 gigapixels
        pixel = (b"\x21\xf9\x04\x00\x0a\x00\x00\x00\x2c\x00\x00\x00\x00\x01\x00\x01\x00"
                 b"\x00\x02\x02\x44\x01\x00")
        made["bomb"] = folder / "bomb.gif"
        made["bomb"].write_bytes(b"GIF89a\xa0\x0f\xa0\x0f\x80\x00\x00\x00\x00\x00\xff\xff\xff"
                                 + pixel * 10_000 + b"\x3b")
    if "webp" in only:
        frames = [_canvas((4096, 4096), seed=i) for i in range(6)]  # the working size
        made["webp"] = folder / "big.webp"
        frames[0].save(made["webp"], save_all=True, append_images=frames[1:], duration=250,
                       quality=70)
        del frames
    Image.Image.close  # noqa: B018 (keep the import used by type checkers)
    return made


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so
    a child would report its parent's peak if that was higher."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(path: str) -> None:
    """In a fresh process: analyse one file, print JSON figures."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("MODERATION_TEST_ROOT", tempfile.mkdtemp(prefix="moderation-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from moderation.providers import Media, ModerationRequest, get_provider

    provider = get_provider("local")
    request = ModerationRequest(scenes=["porn", "qrcode", "ad"],
                                options={"parallelism": "threads"})
    start = time.perf_counter()
    result = provider.submit(Media.from_path(path, "image"), request)
    wall = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    raw = result.raw or {}
    print(json.dumps({
        "wall_s": round(wall, 2), "peak_rss_mb": round(peak_mb),
        "frames": len(result.frames), "risk": result.risk_level,
        "labels": sorted({lbl.label for lbl in result.labels}),
        "working_size": raw.get("size") or raw.get("working_size"),
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="png,jpeg,gif,bomb",
                        help="comma list: png,jpeg,gif,bomb,webp")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one)
        return
    with tempfile.TemporaryDirectory(prefix="moderation-big-") as tmp:
        inputs = make_inputs(Path(tmp), set(args.only.split(",")))
        print(f"{'input':6} {'file MB':>8} {'pixels':>14} {'wall s':>7} {'peak RSS MB':>12}"
              "  frames  risk / labels")
        for name, path in inputs.items():
            from PIL import Image

            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)
                pixels = f"{image.width}x{image.height}" + (f"x{frames}" if frames > 1 else "")
            out = subprocess.run([sys.executable, __file__, "--one", str(path)],
                                 capture_output=True, text=True, check=False)
            if out.returncode:
                error = (out.stderr.strip().splitlines() or [""])[-1]
                print(f"{name:6} {path.stat().st_size / 1e6:8.1f} {pixels:>14} failed: {error}")
                continue
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{name:6} {path.stat().st_size / 1e6:8.1f} {pixels:>14} "
                  f"{figures['wall_s']:7.1f} {figures['peak_rss_mb']:12}  {figures['frames']:6}"
                  f"  {figures['risk']} {figures['labels']}")


if __name__ == "__main__":
    main()
