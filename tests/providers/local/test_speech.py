"""The offline speech path on the committed test videos, with the real pocketsphinx model.

No database. The models load once per module (module-scoped fixtures); the expectations
come from TIMELINES, the same table the videos were made from.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from moderation.labels import risk_of
from moderation.providers.errors import MediaError, NotSupported
from moderation.providers.local import asr, speech
from moderation.providers.local.speech import (
    AD,
    CUSTOMIZED,
    PROFANITY_LABEL,
    RATE,
    KeywordHit,
    PocketSphinxRecogniser,
    SpeechSegment,
    WhisperRecogniser,
    analyse_speech,
    classify_speech,
    decode_audio,
    get_recogniser,
    kws_phrase,
    kws_threshold,
    segment,
    spot_keywords,
)
from tests.media.make_videos import TIMELINES

# slow: 9 s for the module in a full run
pytestmark = pytest.mark.slow

MEDIA = Path(__file__).resolve().parents[2] / "media"
AD_VIDEO, CLEAN_VIDEO = "speech_ad.mp4", "clean.mp4"
SPEECH_AD = MEDIA / AD_VIDEO
CLEAN = MEDIA / CLEAN_VIDEO
KEYWORDS = {"contraband_drug": ["cheap pills"]}
# These expectations are pocketsphinx's (with keyword spotting); Whisper's are in test_asr.py.
POCKETSPHINX = {"asr_engine": "pocketsphinx", "asr_keyword_spotting": True}


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ad_pcm():
    return decode_audio(str(SPEECH_AD))


@pytest.fixture(scope="module")
def clean_pcm():
    return decode_audio(str(CLEAN))


@pytest.fixture(scope="module")
def ad_slices(ad_pcm):
    return analyse_speech(ad_pcm, keywords=KEYWORDS, options=POCKETSPHINX)


@pytest.fixture(scope="module")
def clean_slices(clean_pcm):
    return analyse_speech(clean_pcm, keywords=KEYWORDS, options=POCKETSPHINX)


def slice_near(slices, second):
    found = [s for s in slices if abs(s.start - second) <= 1.0]
    assert len(found) == 1, [(s.start, s.text) for s in slices]
    return found[0]


def label_named(part, name):
    found = [label for label in part.labels if label.label == name]
    assert len(found) == 1, [label.label for label in part.labels]
    return found[0]


# --- decoding -----------------------------------------------------------------------------


@pytest.mark.parametrize("pcm_fixture, name", [("ad_pcm", AD_VIDEO), ("clean_pcm", CLEAN_VIDEO)])
def test_decode_gives_16khz_mono_int16_of_the_whole_track(request, pcm_fixture, name):
    pcm = request.getfixturevalue(pcm_fixture)
    assert pcm.dtype == np.int16
    assert pcm.ndim == 1
    assert pcm.size / RATE == pytest.approx(TIMELINES[name]["duration"], abs=0.1)
    assert np.abs(pcm).max() > 1000  # there is speech in it, not silence


def test_decode_a_file_object_and_a_time_range(ad_pcm):
    with open(SPEECH_AD, "rb") as fh:
        part = decode_audio(fh, start=7.0, end=10.5)
    assert part.size == round(3.5 * RATE)
    # The same samples as the whole decode at 7 s, within a fraction of a sample.
    whole = ad_pcm[7 * RATE : 7 * RATE + part.size].astype(float)
    assert np.corrcoef(whole, part.astype(float))[0, 1] > 0.98


def test_decode_from_bytes_to_the_end(ad_pcm):
    part = decode_audio(io.BytesIO(SPEECH_AD.read_bytes()), start=20.0)
    assert part.size / RATE == pytest.approx(4.0, abs=0.05)


def test_decode_past_the_end_is_empty():
    assert decode_audio(SPEECH_AD, start=30.0).size == 0  # a Path works too


@pytest.fixture(scope="module")
def silent_video(tmp_path_factory):
    if not shutil.which("ffmpeg"):
        pytest.skip("needs ffmpeg")
    out = tmp_path_factory.mktemp("silent") / "x.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=d=2",
         "-an", str(out)],
        check=True,
    )
    return out


def test_a_video_without_audio_gives_nothing(silent_video):
    pcm = decode_audio(str(silent_video))
    assert pcm.size == 0
    assert analyse_speech(pcm, keywords=KEYWORDS) == []


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty_file"),
        (b"this is not a video at all\n", "unsupported_format"),
        (bytes(range(256)) * 40, "unsupported_format"),
        # the header promises packets that are missing
        (SPEECH_AD.read_bytes()[:30000], "corrupt_media"),
        (b"#EXTM3U\n#EXTINF:2.0,\nfile:///etc/passwd\n", "unsupported_format"),
    ],
    ids=["empty", "text", "noise", "truncated", "playlist"],
)
def test_corrupt_media_raises_media_error(tmp_path, content, code):
    """The same codes as the probe: audio is opened with the same allow-lists."""
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError) as info:
        decode_audio(str(path))
    assert info.value.code == code


# --- voice activity -----------------------------------------------------------------------


@pytest.mark.parametrize("pcm_fixture, name", [("ad_pcm", AD_VIDEO), ("clean_pcm", CLEAN_VIDEO)])
def test_segment_finds_each_sentence_of_the_timeline(request, pcm_fixture, name):
    found = segment(request.getfixturevalue(pcm_fixture))
    said = [start for start, _text in TIMELINES[name]["speech"]]
    assert len(found) == len(said)
    for utterance, start in zip(found, said, strict=True):
        assert abs(utterance.start - start) <= 1.0
        assert 1.0 <= utterance.duration <= 15.0


def test_segment_of_silence_and_of_nothing():
    assert segment(np.zeros(0, dtype=np.int16)) == []
    assert segment(np.zeros(3 * RATE, dtype=np.int16)) == []


def test_segment_keeps_speech_that_runs_to_the_end(ad_pcm):
    # Cut in the middle of "buy cheap pills now ...", on a whole number of VAD frames.
    cut = ad_pcm[: int(8.64 * RATE)]
    assert cut.size % 480 == 0
    found = segment(cut)
    assert found[-1].start == pytest.approx(7.0, abs=1.0)
    assert found[-1].end == pytest.approx(cut.size / RATE, abs=0.05)


def test_short_gaps_are_merged_blips_dropped_and_long_spans_split():
    spans = [SpeechSegment(1.0, 2.0), SpeechSegment(2.2, 3.0), SpeechSegment(5.0, 5.1)]
    merged = speech.merge_close(spans)
    assert [(s.start, s.end) for s in merged] == [(1.0, 3.0), (5.0, 5.1)]
    assert [(s.start, s.end) for s in speech.drop_blips(merged)] == [(1.0, 3.0)]
    parts = speech.split_long([SpeechSegment(0.0, 40.0)])
    assert [(s.start, s.end) for s in parts] == [
        (0.0, pytest.approx(40 / 3)), (pytest.approx(40 / 3), pytest.approx(80 / 3)),
        (pytest.approx(80 / 3), 40.0),
    ]


# --- recognisers --------------------------------------------------------------------------


def test_whisper_is_the_default_and_each_recogniser_made_once_per_process():
    default = get_recogniser({})
    assert isinstance(default, WhisperRecogniser)
    assert (default.model_name, default.model_path) == ("base", "")
    assert get_recogniser(None) is default
    first = get_recogniser({"asr_engine": "pocketsphinx"})
    assert isinstance(first, PocketSphinxRecogniser)
    assert get_recogniser({"asr_engine": "pocketsphinx", "asr_model_path": ""}) is first


def test_pocketsphinx_transcribes_an_utterance(ad_pcm):
    recogniser = get_recogniser(POCKETSPHINX)
    text = recogniser.transcribe(ad_pcm[14 * RATE : 18 * RATE])
    assert "stupid idiot" in text
    assert recogniser.transcribe(np.zeros(0, dtype=np.int16)) == ""
    heard = recogniser.recognise(ad_pcm[14 * RATE : 18 * RATE])
    assert [w.text for w in heard.words][-2:] == ["stupid", "idiot"]
    assert all(0 <= w.start < w.end <= 4.0 for w in heard.words)
    assert heard.language == ""  # pocketsphinx does not detect it


def test_whisper_with_a_missing_model_path_is_not_supported(tmp_path):
    with pytest.raises(NotSupported) as info:
        WhisperRecogniser(str(tmp_path / "no-such-model"))
    assert info.value.code == "asr_unavailable"
    with pytest.raises(NotSupported) as info:
        get_recogniser({"asr_model_path": str(tmp_path / "no-such-model")})
    assert info.value.code == "asr_unavailable"


def test_whisper_without_the_package_is_not_supported(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import raises ImportError
    with pytest.raises(NotSupported) as info:
        WhisperRecogniser(str(tmp_path))
    assert info.value.code == "asr_unavailable"
    assert "pip install faster-whisper" in info.value.message


def test_an_unknown_asr_engine_is_not_supported():
    with pytest.raises(NotSupported) as info:
        get_recogniser({"asr_engine": "vosk"})
    assert info.value.code == "asr_unavailable"


def test_importing_the_module_loads_no_model():
    code = (
        "import sys, moderation.providers.local.speech\n"
        "print(sorted(m for m in ('av', 'pocketsphinx', 'faster_whisper') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.stdout.strip() == "[]"


# --- keyword spotting ---------------------------------------------------------------------


def test_keyword_spotting_hears_what_the_language_model_mishears(ad_pcm):
    hits = spot_keywords(ad_pcm, ["Cheap Pills", "idiot"])
    assert [hit.phrase for hit in hits] == ["Cheap Pills", "idiot"]  # as configured
    assert hits[0].start == pytest.approx(7.5, abs=1.0)
    assert hits[1].start == pytest.approx(16.0, abs=1.0)
    assert all(hit.end > hit.start for hit in hits)


def test_keyword_spotting_skips_words_not_in_the_dictionary(ad_pcm, caplog):
    phrases = ["cheap pills", "xqzzyv pills", "555", "加微信", "!!!", "idiot"]
    with caplog.at_level(logging.DEBUG, logger=speech.__name__):
        hits = spot_keywords(ad_pcm, phrases)
    assert {hit.phrase for hit in hits} == {"cheap pills", "idiot"}
    assert "xqzzyv pills" in caplog.text
    assert "555" in caplog.text


def test_keyword_searches_are_cached_and_the_decoder_rebuilt_when_full(ad_pcm, monkeypatch):
    monkeypatch.setattr(asr, "MAX_KWS_SEARCHES", 1)
    for phrases in (["idiot"], ["stupid"], ["idiot"]):
        hits = spot_keywords(ad_pcm, phrases)
        assert [hit.phrase for hit in hits] == phrases


def test_keyword_spotting_of_nothing(ad_pcm):
    assert spot_keywords(ad_pcm, []) == []
    assert spot_keywords(np.zeros(0, dtype=np.int16), ["idiot"]) == []


@pytest.mark.parametrize(
    "phrase, threshold",
    [("scam", 1e-3), ("idiot", 1e-3), ("stupid", 1e-8), ("cheap pill", 1e-8),
     ("cheap pills", 1e-15), ("example dot com", 1e-15)],
)
def test_kws_threshold_by_phrase_length(phrase, threshold):
    assert kws_threshold(phrase) == threshold


def test_kws_phrase_is_lower_case_words():
    assert kws_phrase("  Cheap,  PILLS! ") == "cheap pills"
    assert kws_phrase("what's up") == "what's up"


# --- the analysis on speech_ad.mp4 --------------------------------------------------------


def test_one_slice_per_utterance(ad_slices):
    said = [start for start, _text in TIMELINES[AD_VIDEO]["speech"]]
    assert len(ad_slices) == len(said)
    for part, start in zip(ad_slices, said, strict=True):
        assert abs(part.start - start) <= 1.0
        assert part.end > part.start


def test_the_ad_sentence_is_an_ad_and_a_spotted_keyword(ad_slices):
    part = slice_near(ad_slices, 7.0)
    ad = label_named(part, AD)
    assert ad.service == "asr"
    assert any("dot com" in word for word in part.risk_words)
    # contraband_drug's speech label (vocabulary.py), from keyword spotting as from a transcript.
    keyword = label_named(part, "contraband")
    # The LM hears "cheap thrills"; only keyword spotting hears the configured phrase.
    assert "kws" in keyword.service
    assert "cheap pills" in part.risk_words
    assert "cheap pills" in keyword.description
    assert part.risk_level == "high"


def test_the_insults_are_profanity(ad_slices):
    part = slice_near(ad_slices, 14.0)
    profanity = label_named(part, PROFANITY_LABEL)
    said = " ".join(part.risk_words)
    for word in ("fucking", "stupid", "idiot"):
        assert word in said
    assert profanity.service == "asr"
    assert part.risk_level == "medium"


def test_labels_read_their_risk_from_the_label_table(ad_slices):
    labels = [label for part in ad_slices for label in part.labels]
    assert labels
    for label in labels:
        assert 0 <= label.confidence <= 100
        assert label.risk_level == risk_of(label.label, label.confidence)
        assert label.scene == "antispam"
        assert label.description


def test_clean_utterances_carry_no_risk_and_no_clip(ad_slices):
    clean = [slice_near(ad_slices, 1.0), slice_near(ad_slices, 20.0)]
    for part in clean:
        assert part.risk_level == "none"
        assert part.labels == []
        assert part.risk_words == []
        assert part.audio is None
        assert part.text  # still transcribed


def test_flagged_slices_carry_a_wav_clip_of_the_utterance(ad_slices):
    flagged = [part for part in ad_slices if part.risk_level != "none"]
    assert len(flagged) == 2
    for part in flagged:
        with wave.open(io.BytesIO(part.audio)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
            seconds = wav.getnframes() / wav.getframerate()
        assert seconds == pytest.approx(part.end - part.start, abs=0.02)


def test_clean_video_gives_no_labels(clean_slices):
    assert len(clean_slices) == len(TIMELINES[CLEAN_VIDEO]["speech"])
    assert all(part.labels == [] and part.risk_level == "none" for part in clean_slices)
    assert all(part.audio is None for part in clean_slices)


def test_offset_shifts_slice_times(ad_pcm):
    part = ad_pcm[14 * RATE : 18 * RATE]
    slices = analyse_speech(part, keywords=None, offset=14.0, options=POCKETSPHINX)
    assert len(slices) == 1
    assert slices[0].start == pytest.approx(14.2, abs=0.5)
    assert slices[0].end <= 18.0
    assert {label.label for label in slices[0].labels} == {PROFANITY_LABEL}


# --- keyword hits and slices --------------------------------------------------------------


def test_a_keyword_hit_outside_every_utterance_becomes_its_own_slice():
    spans = [speech._Span(1.0, 3.0, "hello there")]
    hits = [KeywordHit("cheap pills", 2.0, 2.5), KeywordHit("cheap pills", 6.0, 6.8),
            KeywordHit("pills", 6.4, 6.8)]
    out = speech.attach_hits(spans, hits)
    assert [(s.start, s.end) for s in out] == [(1.0, 3.0), (6.0, 6.8)]
    pcm = np.ones(8 * RATE, dtype=np.int16)
    loose = speech.to_slice(out[1], pcm, offset=100.0)
    assert (loose.start, loose.end, loose.text) == (106.0, 106.8, "")
    assert loose.risk_words == ["cheap pills"]  # "pills" was said inside "cheap pills"
    assert [(lb.label, lb.service) for lb in loose.labels] == [(CUSTOMIZED, "kws")]
    assert loose.audio is not None


def test_a_keyword_found_by_both_sources_is_one_label():
    findings = [
        speech.Finding(CUSTOMIZED, 100.0, ["idiot"], "asr"),
        speech.Finding(CUSTOMIZED, 90.0, ["idiot"], "kws"),
        speech.Finding(PROFANITY_LABEL, 90.0, ["idiot"], "asr"),
    ]
    labels = speech.merge_findings(findings)
    assert [(lb.label, lb.service, lb.confidence, lb.description) for lb in labels] == [
        (CUSTOMIZED, "asr+kws", 100.0, "idiot"),
        (PROFANITY_LABEL, "asr", 90.0, "idiot"),
    ]


# --- speech text rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    "transcript, label, word",
    [
        # spelled-out sites and addresses
        ("visit example dot com", AD, "example dot com"),
        ("go to cheap deals dot net today", AD, "deals dot net"),
        ("efficient w w w dot for example dot net", AD, "example dot net"),
        ("email me at john at gmail dot com", AD, "john at gmail dot com"),
        ("write to sales at g mail dot com", AD, "sales at g mail dot com"),
        ("Visit example.com now", AD, "example.com"),  # a Whisper-style transcript
        # spoken phone numbers
        ("call me at five five five zero one zero seven seven eight eight", AD,
         "five five five zero one zero seven seven eight eight"),
        ("plus one double five five oh one oh seven seven eight eight", AD,
         "plus one double five five oh one oh seven seven eight eight"),
        ("my number is 555 010 7788", AD, "555 010 7788"),
        # traffic diversion
        ("add me on what snap", AD, "add me on"),
        ("follow me on instagram for more", AD, "follow me on instagram"),
        ("hit me up on telegram", AD, "hit me up on telegram"),
        ("click the link in the description", AD, "click the link"),
        ("the link is in the description", AD, "link is in the description"),
        ("buy cheap pills now", AD, "buy cheap pills now"),
        ("buy cheap thrills know", AD, "buy cheap thrills know"),
        ("get a free i phone today", AD, "free i phone"),
        ("get a free iphone today", AD, "free iphone"),
        ("use promo code save twenty", AD, "promo code"),
        # profanity and insults
        ("this is a fucking scam you stupid idiot", PROFANITY_LABEL, "fucking"),
        ("this is a fucking scam you stupid idiot", PROFANITY_LABEL, "you stupid"),
        ("this is a fucking scam you stupid idiot", PROFANITY_LABEL, "idiot"),
        ("you are so dumb", PROFANITY_LABEL, "you are so dumb"),
        ("go to hell", PROFANITY_LABEL, "go to hell"),
        ("what a load of bullshit", PROFANITY_LABEL, "bullshit"),
    ],
)
def test_speech_rules_flag(transcript, label, word):
    hits = classify_speech(transcript)
    assert word in [w for hit in hits if hit.label == label for w in hit.risk_words]


@pytest.mark.parametrize(
    "transcript",
    [
        "hello and welcome to my cooking channel",
        "today we bake bread with flour and water",
        "thanks for watching",
        "the dot com bubble burst in two thousand",
        "i went to the com",
        "connect the dots",
        "she wore a polka dot com",
        "one two three four five six seven eight nine ten",
        "ten nine eight seven six five four three two one",
        "oh oh oh oh oh oh oh oh",
        "the score was three to one",
        "i have two cats and five dogs",
        "i want to buy you know a gift",
        "i bought it two years ago and now it works",
        "that was a stupid mistake",
        "you know what i mean",
        "you look great today",
        "free delivery on sundays",
        "link the two ideas",
        "this code is hard to read",
        "",
    ],
)
def test_speech_rules_leave_benign_speech_alone(transcript):
    assert classify_speech(transcript) == []


def test_shared_text_labels_map_to_speech_labels():
    assert speech.speech_label("pt_toDirectContact_tii") == AD
    assert speech.speech_label("profanity_offensive_tii") == PROFANITY_LABEL
    # One vocabulary: a keyword category keeps its family when spoken (was C_customized).
    assert speech.speech_label("contraband_drug_tii") == "contraband"
    assert speech.speech_label("my_words_tii") == CUSTOMIZED


def test_configured_keywords_in_a_transcript_take_their_family():
    keywords = {"contraband_drug": ["cheap pills"], "my_words": ["blue moon"]}
    hits = classify_speech("we sell cheap pills here under a blue moon", keywords)
    assert {(hit.label, word) for hit in hits for word in hit.risk_words} == {
        ("contraband", "cheap pills"), (CUSTOMIZED, "blue moon")
    }
