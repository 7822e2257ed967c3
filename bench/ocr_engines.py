"""RapidOCR 1.4 (rapidocr-onnxruntime) against RapidOCR 3 (rapidocr): accuracy, speed, memory.

    python bench/ocr_engines.py [--repeat 3] [--rounds 2] [--json out.json]

Both engines run as the local engine calls them (moderation/providers/local/engine.py): the
frame downscaled to 960 px wide, ``det_limit_type="max"``, ONNX Runtime at 1 intra-op and
1 inter-op thread. Each engine runs in its own subprocess (so its memory is its own), the
engines alternate ``rounds`` times (the machine is shared and noisy: ENGINE-NOTES P14) and
every figure and ratio printed comes from this one run.

Images: the project's test pictures (demo_project/sample_media, frames of tests/media's
videos) and generated 1280x720 frames with known English and Chinese strings.
Accuracy: English words recovered (case and punctuation ignored, and also with spaces
ignored, as PP-OCR drops spaces in spaced capitals: ENGINE-NOTES P6), Chinese characters
recovered, the character error rate of each true line against the closest OCR line, and
lines read where there is no text. Speed: median wall and CPU ms per image after warm-up.
Memory: RSS after loading, after the first call, and the peak.

The two packages install side by side (modules ``rapidocr_onnxruntime`` and ``rapidocr``);
rapidocr-onnxruntime with ``--no-deps``, or it brings the GUI OpenCV build back:

    pip install rapidocr==3.10.0 && pip install --no-deps rapidocr-onnxruntime==1.4.4
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "demo_project" / "sample_media"
VIDEOS = ROOT / "tests" / "media"
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
LATIN_REGULAR = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
OCR_WIDTH = 960  # EngineConfig.ocr_width
ENGINES = {
    "1.4": ("rapidocr_onnxruntime", "rapidocr-onnxruntime"),
    "3": ("rapidocr", "rapidocr"),
}

# The true text of each picture, one entry per line (an empty list: no text at all).
AD_LINE_EN = "Add me on WhatsApp +1 555 010 7788 for cheap deals"  # make_samples.py
AD_LINE_ZH = "加微信领取免费礼品"
CAPTION = "Add me on WhatsApp +1 555 010 7788"  # make_videos.py, speech_ad.mp4 16-19 s

# Generated frames: (name, [(text, font, size in px)], background, degradation). Sizes are at
# 1280 px wide; the engine reads at 960, so 16 px here is 12 px there.
GENERATED: list[tuple[str, list[tuple[str, str, int]], str, str]] = [
    ("en_large", [("Buy cheap pills now", LATIN_FONT, 48),
                  ("Visit example.com today", LATIN_FONT, 48)], "light", ""),
    ("en_caps_spaced", [("B U Y  C H E A P  P I L L S", LATIN_FONT, 40),
                        ("BUY CHEAP PILLS NOW", LATIN_FONT, 44)], "light", ""),
    ("en_small", [("Contact me on Telegram for a free iPhone", LATIN_REGULAR, 22),
                  ("Limited offer: 50% off all watches", LATIN_REGULAR, 22),
                  ("Call +44 20 7946 0958 before midnight", LATIN_REGULAR, 22)], "light", ""),
    ("en_tiny", [("send your bank password to claim the prize", LATIN_REGULAR, 16),
                 ("follow the link in my profile", LATIN_REGULAR, 16)], "light", ""),
    ("en_on_dark", [("Scan the code for crypto rewards", LATIN_FONT, 36),
                    ("WhatsApp 555 0199 now", LATIN_FONT, 36)], "dark", ""),
    ("en_on_noise", [("Free gift cards every day", LATIN_FONT, 40),
                     ("Click the link below", LATIN_FONT, 40)], "noise", ""),
    ("zh_large", [("加微信领取免费礼品", CJK_FONT, 60),
                  ("点击链接立即购买", CJK_FONT, 60)], "light", ""),
    ("zh_small", [("私聊我获取优惠券", CJK_FONT, 26),
                  ("扫码关注公众号送红包", CJK_FONT, 26),
                  ("正品低价包邮到家", CJK_FONT, 26)], "light", ""),
    ("zh_on_noise", [("免费领取会员", CJK_FONT, 48),
                     ("联系客服微信号", CJK_FONT, 48)], "noise", ""),
    ("mixed", [("加我微信 abc12345 领红包", CJK_FONT, 44),
               ("QQ 123456789 低价出售", CJK_FONT, 44)], "light", ""),
    ("no_text_gradient", [], "light", ""),
    ("no_text_noise", [], "noise", ""),
    # Harder: degraded the way uploads are (blur, heavy JPEG, a tilt, low contrast, tiny).
    ("en_blur", [("Earn money fast from home", LATIN_REGULAR, 28),
                 ("Message me for the price list", LATIN_REGULAR, 28)], "light", "blur"),
    ("en_jpeg_q15", [("Cheap Rolex watches for sale", LATIN_REGULAR, 26),
                     ("Order now at shop-deals.net", LATIN_REGULAR, 26)], "noise", "jpeg"),
    ("en_tilted", [("Meet singles in your area tonight", LATIN_FONT, 34),
                   ("Text 07700 900461 to join", LATIN_FONT, 34)], "light", "tilt"),
    ("en_low_contrast", [("Private photos for subscribers only", LATIN_FONT, 32),
                         ("Use promo code FREE100", LATIN_FONT, 32)], "light", "faint"),
    ("en_13px", [("download the app and enter the code to win cash", LATIN_REGULAR, 13),
                 ("reply STOP to unsubscribe from these offers", LATIN_REGULAR, 13)], "light", ""),
    ("zh_blur", [("日赚千元轻松兼职", CJK_FONT, 32),
                 ("添加客服领取资料", CJK_FONT, 32)], "light", "blur"),
    ("zh_jpeg_q15", [("高价回收二手手机", CJK_FONT, 30),
                     ("同城约会交友平台", CJK_FONT, 30)], "noise", "jpeg"),
    ("zh_tilted", [("代开发票请联系我", CJK_FONT, 40),
                   ("长期有效诚信经营", CJK_FONT, 40)], "light", "tilt"),
    ("zh_16px", [("本店所有商品均为正品保证假一赔十", CJK_FONT, 16),
                 ("关注店铺即可领取五元无门槛优惠券", CJK_FONT, 16)], "light", ""),
    # At the edge: 11-12 px (8-9 px as read), a strong blur, JPEG at quality 8.
    ("en_11px", [("transfer the deposit today and receive your parcel tomorrow", LATIN_REGULAR, 11),
                 ("private chat only no refunds after payment", LATIN_REGULAR, 11)], "light", ""),
    ("zh_12px", [("私信发送验证码即可免费领取大礼包", CJK_FONT, 12),
                 ("点击下方链接下载应用注册送现金", CJK_FONT, 12)], "light", ""),
    ("en_heavy_blur", [("Wire the money to this account", LATIN_REGULAR, 26),
                       ("Fake IDs shipped worldwide", LATIN_REGULAR, 26)], "light", "blur+"),
    ("mixed_jpeg_q8", [("微信 vip8888 包过", CJK_FONT, 30),
                       ("Loans approved in 5 minutes", LATIN_REGULAR, 28)], "noise", "jpeg+"),
]


# --- Images ------------------------------------------------------------------------------


def _background(kind: str, rng: np.random.Generator) -> np.ndarray:
    height, width = 720, 1280
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    if kind == "dark":
        top, bottom = np.array([40, 30, 20]), np.array([90, 60, 30])
    else:
        top, bottom = np.array([250, 245, 235]), np.array([200, 215, 230])
    image = np.broadcast_to(top + (bottom - top) * ramp, (height, width, 3)).copy()
    if kind == "noise":  # a busy photo-like texture: blurred blobs of colour
        blobs = rng.integers(60, 230, size=(9, 16, 3)).astype(np.uint8)
        image = np.asarray(Image.fromarray(blobs).resize((width, height), 3), dtype=float)
        image += rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def generated_images() -> list[tuple[str, np.ndarray, list[str]]]:
    """Deterministic 1280x720 BGR frames with their true lines."""
    missing = [f for f in (LATIN_FONT, LATIN_REGULAR, CJK_FONT) if not os.path.exists(f)]
    if missing:
        sys.exit(f"missing fonts {missing}: apt-get install fonts-dejavu-core fonts-wqy-microhei")
    rng = np.random.default_rng(7)
    out = []
    for name, lines, kind, degradation in GENERATED:
        image = Image.fromarray(_background(kind, rng))
        draw = ImageDraw.Draw(image)
        fill = (250, 250, 250) if kind == "dark" else (25, 25, 25)
        if degradation == "faint":
            fill = (175, 180, 185)
        y = 120
        for text, path, size in lines:
            face = ImageFont.truetype(path, size)
            width = draw.textlength(text, font=face)
            if kind == "noise":  # a translucent band under the text, as on real adverts
                draw.rectangle([60, y - 8, 1220, y + size + 14], fill=(245, 245, 245))
            draw.text(((1280 - width) / 2, y), text, font=face, fill=fill)
            y += int(size * 2.2)
        if degradation.startswith("blur"):
            image = image.filter(ImageFilter.GaussianBlur(2.6 if degradation == "blur+" else 1.6))
        elif degradation == "tilt":
            image = image.rotate(4, resample=Image.Resampling.BICUBIC, fillcolor=(240, 240, 235))
        elif degradation.startswith("jpeg"):
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=8 if degradation == "jpeg+" else 15)
            image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
        out.append((f"gen/{name}", np.asarray(image)[:, :, ::-1].copy(),
                    [text for text, _, _ in lines]))
    return out


def video_frame(path: Path, second: float) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= second:
                return frame.to_ndarray(format="bgr24")
    raise ValueError(f"{path} is shorter than {second} s")


def project_images() -> list[tuple[str, np.ndarray, list[str]]]:
    import cv2

    out = [
        ("sample/ad_text.png", cv2.imread(str(SAMPLES / "ad_text.png")), [AD_LINE_EN, AD_LINE_ZH]),
        ("sample/benign.jpg", cv2.imread(str(SAMPLES / "benign.jpg")), []),
        # Not masked here: the engine blanks QR codes before OCR (PP-OCR invents CJK on them).
        ("sample/qrcode.jpg (QR not blanked)", cv2.imread(str(SAMPLES / "qrcode.jpg")), []),
    ]
    try:
        out.append(("video/speech_ad.mp4@17s", video_frame(VIDEOS / "speech_ad.mp4", 17.0),
                    [CAPTION]))
        out.append(("video/clean.mp4@3s", video_frame(VIDEOS / "clean.mp4", 3.0), []))
    except ImportError:
        print("(PyAV missing: the video frames are left out)", file=sys.stderr)
    return out


def all_images() -> list[tuple[str, np.ndarray, list[str]]]:
    return project_images() + generated_images()


# --- Scoring -----------------------------------------------------------------------------


def _norm(text: str) -> str:
    """Casefolded, NFKC, punctuation and symbols dropped, spaces squeezed; 0 read as o (P6)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c if unicodedata.category(c)[0] in "LNZ" else " " for c in text)
    return " ".join(text.split())


def _is_cjk(c: str) -> bool:
    return "\u3400" <= c <= "\u9fff"


def _edit(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def score(truth: list[str], read: list[str]) -> dict[str, float]:
    """Counts for one image: recovered words/characters, per-line edits, spurious lines."""
    read_norm = [_norm(line) for line in read]
    read_words = Counter(w for line in read_norm for w in line.split() if not any(map(_is_cjk, w)))
    read_joined = "".join(read_norm).replace(" ", "")
    read_chars = Counter(c for c in read_joined if _is_cjk(c))
    keys = ("words", "words_ok", "words_nospace_ok", "cjk", "cjk_ok", "line_chars", "line_edits",
            "lines", "lines_exact", "spurious")
    counts = Counter(dict.fromkeys(keys, 0))
    for line in truth:
        norm = _norm(line)
        words = [w for w in norm.split() if not any(map(_is_cjk, w))]
        counts["words"] += len(words)
        found = read_words.copy()
        for word in words:
            if found[word] > 0:
                found[word] -= 1
                counts["words_ok"] += 1
            if word in read_joined:  # spaces ignored: "BUYCHEAPPILLSNOW" has every word
                counts["words_nospace_ok"] += 1
        chars = [c for c in norm if _is_cjk(c)]
        counts["cjk"] += len(chars)
        found_chars = read_chars.copy()
        for c in chars:
            if found_chars[c] > 0:
                found_chars[c] -= 1
                counts["cjk_ok"] += 1
        squeezed = norm.replace(" ", "")
        best = min((_edit(squeezed, r.replace(" ", "")) for r in read_norm), default=len(squeezed))
        counts["line_chars"] += len(squeezed)
        counts["line_edits"] += min(best, len(squeezed))
        counts["lines"] += 1
        counts["lines_exact"] += best == 0
    # A read line that is no (part of a) true line: a bullet, a texture, CJK invented on a QR
    # code. Part of a line: the edits beyond the missing length are at most half the read.
    for r in read_norm:
        squeezed = r.replace(" ", "")
        truths = [_norm(t).replace(" ", "") for t in truth]
        if not squeezed or not any(
            _edit(squeezed, t) <= max(0, len(t) - len(squeezed)) + len(squeezed) // 2
            for t in truths
        ):
            counts["spurious"] += 1
    return dict(counts)


# --- One engine, in its own process ------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _load(engine: str):
    """A callable ``bgr -> [(box, text, score)]`` configured as engine.py configures it."""
    if engine == "1.4":
        from rapidocr_onnxruntime import RapidOCR

        ocr = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1, det_limit_type="max")

        def run(bgr):
            result, _ = ocr(bgr)
            return [(box, text, float(s)) for box, text, s in result or ()]

        return run
    from rapidocr import RapidOCR

    ocr = RapidOCR(params={
        "Global.log_level": "warning",
        "EngineConfig.onnxruntime.intra_op_num_threads": 1,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        "Det.limit_type": "max",
    })

    def run(bgr):
        out = ocr(bgr)
        if out.boxes is None:
            return []
        return [(box.tolist(), text, float(s))
                for box, text, s in zip(out.boxes, out.txts, out.scores, strict=True)]

    return run


def child(engine: str, repeat: int) -> None:
    """Runs in the subprocess: prints one JSON object."""
    import cv2

    cv2.setNumThreads(1)
    images = all_images()
    module = ENGINES[engine][0]
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    run = _load(engine)
    load_s = time.perf_counter() - t0
    rss_load = _rss_mb()
    t0 = time.perf_counter()
    run(images[0][1])  # the first call builds the ORT arenas (ENGINE-NOTES 3)
    first_s = time.perf_counter() - t0
    rss_first = _rss_mb()
    rows = []
    for name, bgr, truth in images:
        height, width = bgr.shape[:2]
        if width > OCR_WIDTH:
            bgr = cv2.resize(bgr, (OCR_WIDTH, round(height * OCR_WIDTH / width)),
                             interpolation=cv2.INTER_AREA)
        walls, cpus, lines = [], [], []
        for _ in range(repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            lines = run(bgr)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        texts = [text for _, text, _ in lines]
        rows.append({"image": name, "wall": walls, "cpu": cpus, "read": texts,
                     "scores": [round(s, 3) for _, _, s in lines],
                     "boxes_ok": all(np.asarray(b).shape == (4, 2) for b, _, _ in lines),
                     **score(truth, texts)})
    version = __import__("importlib.metadata").metadata.version(ENGINES[engine][1])
    print(json.dumps({
        "engine": engine, "module": module, "version": version,
        "load_s": load_s, "first_call_s": first_s,
        "rss_start_mb": rss0, "rss_loaded_mb": rss_load, "rss_after_first_mb": rss_first,
        "rss_end_mb": _rss_mb(),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": rows,
    }))


# --- The comparison ----------------------------------------------------------------------


def _available(engine: str) -> bool:
    module = ENGINES[engine][0]
    probe = f"import importlib.util,sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([sys.executable, "-c", probe]).returncode == 0


def _merge(runs: list[dict]) -> dict:
    """Rounds of one engine: every timing pooled, memory and load at their median."""
    merged = dict(runs[0])
    for key in ("load_s", "first_call_s", "rss_loaded_mb", "rss_after_first_mb", "rss_end_mb",
                "peak_mb", "rss_start_mb"):
        merged[key] = statistics.median(r[key] for r in runs)
    merged["rows"] = [dict(row) for row in runs[0]["rows"]]
    for i, row in enumerate(merged["rows"]):
        row["wall"] = [w for r in runs for w in r["rows"][i]["wall"]]
        row["cpu"] = [c for r in runs for c in r["rows"][i]["cpu"]]
    return merged


def _totals(result: dict) -> Counter:
    total = Counter()
    for row in result["rows"]:
        for key, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] += value
        if row["lines"] == 0:
            total["notext_images"] += 1
            total["notext_lines"] += len(row["read"])
    total["wall_ms"] = sum(statistics.median(r["wall"]) for r in result["rows"]) * 1000
    total["cpu_ms"] = sum(statistics.median(r["cpu"]) for r in result["rows"]) * 1000
    return total


def _pct(ok: float, of: float) -> str:
    return f"{100 * ok / of:5.1f} % ({int(ok)}/{int(of)})" if of else "-"


def report(results: dict[str, dict]) -> None:
    engines = list(results)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (2 cores; timings are noisy)\n")
    print("Per image: median wall ms / CPU ms; what was read (3 words at most per line)")
    for i, row in enumerate(results[engines[0]]["rows"]):
        print(f"  {row['image']}")
        for engine in engines:
            r = results[engine]["rows"][i]
            read = " | ".join(" ".join(t.split()[:3]) if " " in t else t[:12] for t in r["read"])
            print(f"    {engine:>4}: {statistics.median(r['wall']) * 1000:7.0f} /"
                  f" {statistics.median(r['cpu']) * 1000:5.0f} ms  "
                  f"edits {r.get('line_edits', 0):>2}/{r.get('line_chars', 0):<3}"
                  f" spurious {r.get('spurious', 0)}  [{read}]")
    totals = {engine: _totals(results[engine]) for engine in engines}
    print("\nTotals over", len(results[engines[0]]["rows"]), "images")
    rows = [
        ("English words recovered", lambda t: _pct(t["words_ok"], t["words"])),
        ("  the same, spaces ignored", lambda t: _pct(t["words_nospace_ok"], t["words"])),
        ("Chinese characters recovered", lambda t: _pct(t["cjk_ok"], t["cjk"])),
        ("Lines exact (spaces ignored)", lambda t: _pct(t["lines_exact"], t["lines"])),
        ("Character error rate of lines",
         lambda t: f"{t['line_edits'] / max(1, t['line_chars']):.3f}"),
        ("Spurious lines (all images)", lambda t: str(t["spurious"])),
        ("Lines on the no-text images", lambda t: f"{t['notext_lines']} on {t['notext_images']}"),
        ("Wall ms, sum of per-image medians", lambda t: f"{t['wall_ms']:.0f}"),
        ("CPU ms, sum of per-image medians", lambda t: f"{t['cpu_ms']:.0f}"),
    ]
    head = "".join(f"{e + ' (' + results[e]['version'] + ')':>28}" for e in engines)
    print(f"  {'':34}{head}")
    for label, fn in rows:
        print(f"  {label:34}" + "".join(f"{fn(totals[e]):>28}" for e in engines))
    for label, key, fmt in (("Load s", "load_s", "{:.2f}"),
                            ("First call s", "first_call_s", "{:.2f}"),
                            ("RSS after load MB", "rss_loaded_mb", "{:.0f}"),
                            ("RSS after first call MB", "rss_after_first_mb", "{:.0f}"),
                            ("RSS at the end MB", "rss_end_mb", "{:.0f}"),
                            ("Peak RSS MB", "peak_mb", "{:.0f}")):
        print(f"  {label:34}" + "".join(f"{fmt.format(results[e][key]):>28}" for e in engines))
    if len(engines) == 2:
        a, b = (totals[e] for e in engines)
        ra, rb = (results[e] for e in engines)
        print(f"\nRatios {engines[1]} / {engines[0]} (below 1: {engines[1]} is faster or smaller)")
        print(f"  wall {b['wall_ms'] / a['wall_ms']:.2f}, CPU {b['cpu_ms'] / a['cpu_ms']:.2f},"
              f" peak RSS {rb['peak_mb'] / ra['peak_mb']:.2f},"
              f" RSS after the first call"
              f" {rb['rss_after_first_mb'] / ra['rss_after_first_mb']:.2f},"
              f" load {rb['load_s'] / ra['load_s']:.2f}")
        print(f"  character error rate {b['line_edits'] / max(1, b['line_chars']):.3f}"
              f" vs {a['line_edits'] / max(1, a['line_chars']):.3f};"
              f" words {b['words_ok']} vs {a['words_ok']} of {a['words']};"
              f" Chinese characters {b['cjk_ok']} vs {a['cjk_ok']} of {a['cjk']}")
    if not all(r["boxes_ok"] for e in engines for r in results[e]["rows"]):
        print("\nWARNING: some boxes are not 4 points")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="calls per image per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the engines")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeat)
        return
    engines = [e for e in ENGINES if _available(e)]
    for e in set(ENGINES) - set(engines):
        print(f"{ENGINES[e][1]} is not installed: left out (see this script's docstring)")
    if not engines:
        sys.exit(1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs: dict[str, list[dict]] = {e: [] for e in engines}
    for round_ in range(args.rounds):
        for engine in engines if round_ % 2 == 0 else engines[::-1]:
            out = subprocess.run([sys.executable, __file__, "--child", engine, "--repeat",
                                  str(args.repeat)], capture_output=True, text=True, env=env)
            if out.returncode:
                sys.exit(f"{engine} failed:\n{out.stderr}")
            runs[engine].append(json.loads(out.stdout.strip().splitlines()[-1]))
    results = {e: _merge(runs[e]) for e in engines}
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
