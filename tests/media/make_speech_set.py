"""A varied set of synthetic speech with known words, for measuring recognisers.

    python tests/media/make_speech_set.py [--quick]   # prints the set's size

Each clip is one known sentence spoken by one voice at one speed, with or without white
noise at a given SNR, as 16 kHz mono int16 with 0.5 s of silence either side. Voices:
flite's rms, slt and awb, espeak-ng's en-us and en-gb (formant speech, the hardest for
pocketsphinx), and espeak-ng's Mandarin (cmn) for the language check. Nothing is written
to disk: :func:`speech_set` returns the clips. Needs ``flite`` and ``espeak-ng``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass

import numpy as np

RATE = 16000

# The keyword phrases configured for the set (as a site's MODERATION["KEYWORDS"] would).
KEYWORDS = {
    "contraband_drug": ["cheap pills", "oxycodone"],
    "ad": ["wechat", "telegram"],
    "abuse": ["stupid idiot"],
}
# (sentence, keyword phrases said in it). Half say none: they count the false alarms.
SENTENCES = [
    ("buy cheap pills now visit example dot com", ["cheap pills"]),
    ("add me on wechat for a discount", ["wechat"]),
    ("this is a fucking scam you stupid idiot", ["stupid idiot"]),
    ("message me on telegram to order oxycodone", ["telegram", "oxycodone"]),
    ("hello and welcome to my cooking channel", []),
    ("today we bake bread with flour and water", []),
    ("thanks for watching and see you next week", []),
    ("the weather is sunny with a light breeze", []),
]
CHINESE = [("欢迎来到我的烹饪频道", []), ("加我微信购买便宜的药", [])]
# (engine, voice, words per minute or None for the engine's own speed)
VOICES = [
    ("flite", "rms", None),
    ("flite", "slt", None),
    ("flite", "awb", None),
    ("espeak-ng", "en-us", 160),
    ("espeak-ng", "en-gb", 200),
]
NOISE_SNRS = (None, 20.0, 10.0)  # dB of white noise; None: clean


@dataclass
class Clip:
    voice: str  # "flite/rms", "espeak-ng/en-us@160", ...
    snr: float | None
    text: str
    keywords: list[str]
    language: str
    pcm: np.ndarray


def need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        sys.exit(f"{tool} not found: apt-get install flite espeak-ng")
    return path


def speak(engine: str, voice: str, text: str, wpm: int | None = None) -> np.ndarray:
    """16 kHz mono int16 speech of ``text``."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        if engine == "flite":
            command = [need("flite"), "-voice", voice, "-t", text, "-o", tmp.name]
        else:
            command = [need("espeak-ng"), "-v", voice, "-w", tmp.name]
            command += ["-s", str(wpm)] if wpm else []
            command.append(text)
        subprocess.run(command, check=True, capture_output=True)
        with wave.open(tmp.name) as wav:
            rate = wav.getframerate()
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    if rate != RATE:
        idx = np.linspace(0, len(samples) - 1, int(len(samples) * RATE / rate))
        samples = np.interp(idx, np.arange(len(samples)), samples).astype(np.int16)
    pad = np.zeros(RATE // 2, dtype=np.int16)
    return np.concatenate([pad, samples, pad])


def add_noise(pcm: np.ndarray, snr: float, seed: int = 0) -> np.ndarray:
    """White noise at ``snr`` dB below the speech's power (reproducible by ``seed``)."""
    signal = pcm.astype(np.float64)
    power = np.mean(signal[np.abs(signal) > 100] ** 2) if np.any(np.abs(signal) > 100) else 1.0
    noise = np.random.default_rng(seed).normal(0.0, np.sqrt(power / 10 ** (snr / 10)), pcm.size)
    return np.clip(signal + noise, -32768, 32767).astype(np.int16)


def speech_set(quick: bool = False) -> list[Clip]:
    """Every sentence by every voice, clean and noisy; Mandarin by espeak-ng (clean).

    ``quick``: only clean speech and the first two voices.
    """
    clips = []
    voices = VOICES[:2] if quick else VOICES
    for engine, voice, wpm in voices:
        name = f"{engine}/{voice}" + (f"@{wpm}" if wpm else "")
        for n, (text, keywords) in enumerate(SENTENCES):
            clean = speak(engine, voice, text, wpm)
            for snr in (None,) if quick else NOISE_SNRS:
                pcm = clean if snr is None else add_noise(clean, snr, seed=n)
                clips.append(Clip(name, snr, text, keywords, "en", pcm))
    if not quick:
        for text, keywords in CHINESE:
            pcm = speak("espeak-ng", "cmn", text, 150)
            clips.append(Clip("espeak-ng/cmn@150", None, text, keywords, "zh", pcm))
    return clips


if __name__ == "__main__":
    made = speech_set(quick="--quick" in sys.argv)
    seconds = sum(c.pcm.size for c in made) / RATE
    print(f"{len(made)} clips, {seconds:.1f} s of audio, voices: "
          f"{sorted({c.voice for c in made})}")
