"""Make the test videos: speech (flite), a QR code and an ad caption at known times.

    python tests/media/make_videos.py            # writes speech_ad.mp4 and clean.mp4 here
    python tests/media/make_videos.py --bench 60 OUT.mp4   # a 60 s video for bench/

Needs Debian's ``flite`` and ``ffmpeg`` (``apt-get install flite ffmpeg``). flite, not
espeak-ng: the CMU acoustic model of pocketsphinx barely understands espeak's formant
voice (ENGINE-NOTES P10). The timeline of each video is in TIMELINES, and the tests read
their expectations from it, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT, FPS, RATE = 1280, 720, 30, 16000

# (start second, text) spoken by flite's "rms" voice.
# (start, end, kind, payload) on screen: "qr" shows a QR code, "caption" a line of text.
TIMELINES = {
    "speech_ad.mp4": {
        "duration": 24.0,
        "speech": [
            (1.0, "hello and welcome to my cooking channel"),
            (7.0, "buy cheap pills now visit example dot com"),
            (14.0, "this is a fucking scam you stupid idiot"),
            (20.0, "thanks for watching"),
        ],
        "screen": [
            (5.0, 9.0, "qr", "https://example.com/promo"),
            (16.0, 19.0, "caption", "Add me on WhatsApp +1 555 010 7788"),
        ],
    },
    "clean.mp4": {
        "duration": 12.0,
        "speech": [(1.0, "hello and welcome to my cooking channel"),
                   (6.0, "today we bake bread with flour and water")],
        "screen": [],
    },
}


def need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        sys.exit(f"{tool} not found: apt-get install flite ffmpeg")
    return path


def say(text: str) -> np.ndarray:
    """16 kHz mono int16 speech from flite's rms voice."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run([need("flite"), "-voice", "rms", "-t", text, "-o", tmp.name],
                       check=True, capture_output=True)
        with wave.open(tmp.name) as wav:
            rate = wav.getframerate()
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    if rate != RATE:  # flite speaks at 8 or 16 kHz depending on the voice
        idx = np.linspace(0, len(samples) - 1, int(len(samples) * RATE / rate))
        samples = np.interp(idx, np.arange(len(samples)), samples).astype(np.int16)
    return samples


def soundtrack(duration: float, speech) -> bytes:
    track = np.zeros(int(duration * RATE), dtype=np.int16)
    for start, text in speech:
        voice = say(text)
        at = int(start * RATE)
        end = min(at + len(voice), len(track))
        track[at:end] = voice[: end - at]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(track.tobytes())
    return buf.getvalue()


def background(t: float) -> np.ndarray:
    """A slowly changing scene: a sky gradient, hills, and a sun that moves every 4 s
    (so that some consecutive frames are near-duplicates and some are not)."""
    import cv2

    y = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None]
    sky = np.dstack([200 - 80 * y, 150 - 40 * y, 90 + 60 * y]).repeat(WIDTH, axis=1)
    frame = np.clip(sky, 0, 255).astype(np.uint8)
    step = int(t // 4)
    cv2.circle(frame, (200 + 160 * step, 160), 60, (80, 200, 250), -1)
    xs = np.arange(WIDTH)
    hills = (480 + 40 * np.sin(xs / 90.0 + step * 0.3)).astype(int)
    for x, top in zip(xs, hills, strict=True):
        frame[top:, x] = (60, 110, 70)
    return frame


def qr_image(payload: str, size: int = 260) -> np.ndarray:
    import cv2

    code = cv2.QRCodeEncoder.create().encode(payload)
    code = cv2.resize(code, (size, size), interpolation=cv2.INTER_NEAREST)
    padded = cv2.copyMakeBorder(code, 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=255)
    return cv2.cvtColor(padded, cv2.COLOR_GRAY2BGR)


def draw(frame: np.ndarray, t: float, screen) -> np.ndarray:
    import cv2

    for start, end, kind, payload in screen:
        if not start <= t < end:
            continue
        if kind == "qr":
            qr = qr_image(payload)
            h, w = qr.shape[:2]
            frame[60:60 + h, WIDTH - w - 60:WIDTH - 60] = qr
        else:
            cv2.rectangle(frame, (80, 560), (WIDTH - 80, 660), (255, 255, 255), -1)
            cv2.putText(frame, payload, (110, 630), cv2.FONT_HERSHEY_SIMPLEX, 1.4,
                        (20, 20, 20), 3, cv2.LINE_AA)
    return frame


def make(out: Path, duration: float, speech, screen) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        wav.write_bytes(soundtrack(duration, speech))
        cmd = [need("ffmpeg"), "-nostdin", "-y", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{WIDTH}x{HEIGHT}",
               "-r", str(FPS), "-i", "-", "-i", str(wav),
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "32", "-g", str(FPS * 2),
               "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "48k", "-ar", "48000",
               "-ac", "2", "-shortest", "-movflags", "+faststart", str(out)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
        last_key, last = None, None
        for i in range(int(duration * FPS)):
            t = i / FPS
            key = (int(t // 4), tuple(s for s in screen if s[0] <= t < s[1]))
            if key != last_key:  # redraw only when the picture changes
                last, last_key = draw(background(t), t, screen), key
            proc.stdin.write(last.tobytes())
        proc.stdin.close()
        if proc.wait():
            sys.exit(f"ffmpeg failed making {out}")


def bench_timeline(duration: float) -> dict:
    """A longer timeline for bench/: the speech_ad events repeated every 24 s."""
    base = TIMELINES["speech_ad.mp4"]
    speech, screen = [], []
    for k in range(int(np.ceil(duration / 24.0))):
        speech += [(s + 24 * k, text) for s, text in base["speech"] if s + 24 * k + 3 < duration]
        screen += [(a + 24 * k, b + 24 * k, kind, p) for a, b, kind, p in base["screen"]
                   if b + 24 * k <= duration]
    return {"duration": duration, "speech": speech, "screen": screen}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench", nargs=2, metavar=("SECONDS", "OUT"))
    args = parser.parse_args()
    if args.bench:
        spec = bench_timeline(float(args.bench[0]))
        make(Path(args.bench[1]), spec["duration"], spec["speech"], spec["screen"])
    else:
        for name, spec in TIMELINES.items():
            make(HERE / name, spec["duration"], spec["speech"], spec["screen"])
            print(f"{name}: {(HERE / name).stat().st_size // 1024} KB")
