"""Speech recognisers compared on a varied synthetic speech set, in one run.

    .venv/bin/python bench/speech_asr.py [--quick]

The set (tests/media/make_speech_set.py): 8 known sentences (4 with configured keyword
phrases, 4 without) per voice - flite rms/slt/awb, espeak-ng en-us/en-gb at two speeds -
clean and with white noise at 20 and 10 dB SNR. Each voice x noise is one track of its 8
sentences, analysed as the app does: pocketsphinx per VAD utterance, Whisper on the whole
piece with the keywords as hotwords. Printed per engine: WER per voice and noise, the
real-time factor (recognition seconds / audio seconds), load time and RSS growth; keyword
recall and false alarms with and without pocketsphinx keyword spotting (KWS); the language
Whisper base detects on English and on espeak-ng Mandarin. Ratios are to pocketsphinx.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ENGINES = [
    ("pocketsphinx", {"asr_engine": "pocketsphinx"}),
    ("whisper tiny.en", {"asr_engine": "whisper", "asr_model": "tiny.en"}),
    ("whisper base", {"asr_engine": "whisper", "asr_model": "base"}),
]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def words_of(text: str) -> list[str]:
    text = text.casefold().replace(".com", " dot com").replace("-", " ")
    return re.findall(r"[a-z0-9']+", text)


def wer(reference: list[str], hypothesis: list[str]) -> tuple[int, int]:
    """(word edits, reference words): Levenshtein distance over words."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ref != hyp))
    return row[-1], len(reference)


def count_phrase(words: list[str], phrase: str) -> int:
    want = phrase.split()
    return sum(words[i : i + len(want)] == want for i in range(len(words) - len(want) + 1))


def tracks(clips):
    """(voice, snr) -> (pcm of the sentences one after another, reference words, keywords)."""
    out = {}
    grouped = defaultdict(list)
    for clip in clips:
        if clip.language == "en":
            grouped[(clip.voice, clip.snr)].append(clip)
    for key, group in grouped.items():
        pcm = np.concatenate([c.pcm for c in group])
        out[key] = (pcm, [w for c in group for w in words_of(c.text)],
                    [k for c in group for k in c.keywords])
    return out


def recognise_track(engine_options, pcm, phrases):
    from moderation.providers.local.asr import RATE, get_recogniser
    from moderation.providers.local.vad import segment

    recogniser = get_recogniser(engine_options)
    if getattr(recogniser, "whole_piece", False):
        return recogniser.recognise(pcm, phrases).text
    parts = [recogniser.recognise(pcm[round(u.start * RATE):round(u.end * RATE)], phrases).text
             for u in segment(pcm)]
    return " ".join(parts)


def main(quick: bool) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from moderation.providers.local.asr import RATE, get_recogniser, spot_keywords
    from moderation.providers.local.speech import keyword_phrases
    from tests.media.make_speech_set import KEYWORDS, speech_set

    print(f"# speech recognisers ({os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}, 1 thread each)")
    clips = speech_set(quick=quick)
    data = tracks(clips)
    phrases = keyword_phrases(KEYWORDS)
    audio = sum(pcm.size for pcm, _, _ in data.values()) / RATE
    print(f"{len(data)} tracks of 8 sentences, {audio:.0f} s of English speech; keywords {phrases}")

    results = {}  # engine -> {(voice, snr): words}
    costs = {}  # engine -> (load s, rss MB, recognition s)
    for name, options in ENGINES:
        before, t0 = rss_mb(), time.perf_counter()
        get_recogniser(options).load()
        load = time.perf_counter() - t0
        grown = rss_mb() - before
        spent, heard = 0.0, {}
        for key, (pcm, _ref, _kw) in data.items():
            t0 = time.perf_counter()
            heard[key] = words_of(recognise_track(options, pcm, phrases))
            spent += time.perf_counter() - t0
        results[name] = heard
        costs[name] = (load, grown, spent)

    t0 = time.perf_counter()
    spotted = {key: [hit.phrase for hit in spot_keywords(pcm, phrases)]
               for key, (pcm, _r, _k) in data.items()}
    kws_seconds = time.perf_counter() - t0

    print("\n## WER by voice and noise (word edits / reference words)")
    names = [n for n, _ in ENGINES]
    print(f"{'voice':<22}{'noise':>7}" + "".join(f"{n:>17}" for n in names))
    totals = defaultdict(lambda: [0, 0])
    by_noise = defaultdict(lambda: [0, 0])
    for key in sorted(data, key=lambda k: (k[0], k[1] or 99)):
        voice, snr = key
        cells = ""
        for name in names:
            edits, count = wer(data[key][1], results[name][key])
            totals[name][0] += edits
            totals[name][1] += count
            by_noise[(name, snr)][0] += edits
            by_noise[(name, snr)][1] += count
            cells += f"{edits / count:>17.2f}"
        print(f"{voice:<22}{'clean' if snr is None else f'{snr:g} dB':>7}{cells}")
    for snr in sorted({k[1] for k in data}, key=lambda s: s or 99):
        label = "clean" if snr is None else f"{snr:g} dB"
        print(f"{'all voices':<22}{label:>7}" + "".join(
            f"{by_noise[(n, snr)][0] / by_noise[(n, snr)][1]:>17.2f}" for n in names))
    print(f"{'all':<29}" + "".join(f"{totals[n][0] / totals[n][1]:>17.2f}" for n in names))

    print("\n## cost (one thread): load, RSS growth, recognition")
    base_rtf = costs[names[0]][2] / audio
    for name in names:
        load, grown, spent = costs[name]
        print(f"{name:<18} load {load:5.2f} s  RSS +{grown:5.0f} MB  RTF {spent / audio:.3f} "
              f"({spent / audio / base_rtf:.2f}x pocketsphinx)")
    print(f"{'KWS alone':<18} RTF {kws_seconds / audio:.3f}")

    print("\n## keyword phrases: found / said, false alarms (found more often than said)")
    print(f"{'source':<28}{'recall':>10}{'false':>7}")
    for name in names + [f"{n} + KWS" for n in names[1:]] + ["KWS alone"]:
        hit = said = false = 0
        for key, (_pcm, _ref, expected) in data.items():
            for phrase in phrases:
                want = expected.count(phrase)
                asr = count_phrase(results[name.removesuffix(" + KWS")][key], phrase) \
                    if name != "KWS alone" else 0
                kws = spotted[key].count(phrase) if "KWS" in name else 0
                found = max(asr, kws)
                said += want
                hit += min(want, found)
                false += max(0, found - want)
        print(f"{name:<28}{hit:>6}/{said:<3}{false:>7}")

    if not quick:
        print("\n## language detected by whisper base (piece by piece)")
        recogniser = get_recogniser(ENGINES[2][1])
        for clip in clips:
            if clip.language == "zh" or (clip.snr is None and clip.text.startswith("hello")):
                heard = recogniser.recognise(clip.pcm)
                print(f"{clip.voice:<20} said {clip.language}: heard {heard.language} "
                      f"p={heard.language_confidence} {heard.text!r}")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
