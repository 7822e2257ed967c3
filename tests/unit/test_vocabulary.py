"""One vocabulary: a category's words read as one family whether OCR, a transcript or
keyword spotting found them. Driven by the table in docs/providers.md ("One vocabulary"),
so the documentation and the code cannot drift apart."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings

from moderation import vocabulary
from moderation.labels import risk_of, rule_for
from moderation.providers.base import Media, ModerationRequest
from moderation.providers.local import LocalProvider, speech
from moderation.providers.local.asr import KeywordHit
from moderation.providers.local.speech_rules import classify_speech, keyword_labels
from moderation.providers.local.text_rules import classify_text

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "providers.md"
AD_TEXT = ROOT / "demo_project" / "sample_media" / "ad_text.png"  # English + Chinese ad lines
CELL = re.compile(r"`([^`]+)`")

# Words that make each row's category fire. Built-in rules need no configured keywords.
BUILTIN_WORDS = {
    "pt_toDirectContact": "add me on telegram",
    "profanity_offensive": "you are a fucking idiot",
}
KEYWORD = "blue harbour"  # a configured phrase pocketsphinx can spell (kws_phrase)


def documented_rows() -> list[dict[str, str]]:
    """The rows of the vocabulary table in docs/providers.md, as code names."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("#### One vocabulary", 1)[1].split("\n#### ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows.append({
            "category": CELL.search(cells[0]).group(1),
            "family": CELL.search(cells[1]).group(1),
            "ocr": CELL.search(cells[2]).group(1),
            "speech": CELL.search(cells[3]).group(1),
            "risk": cells[4],
        })
    return rows


ROWS = documented_rows()


def row_id(row: dict[str, str]) -> str:
    return row["category"]


def test_the_documented_table_has_the_builtins_and_every_family():
    categories = {row["category"] for row in ROWS}
    assert set(vocabulary.BUILTIN) <= categories
    families = {row["family"] for row in ROWS}
    assert {family for _, family, _ in vocabulary.PREFIX_FAMILIES} | {vocabulary.CUSTOM} == families


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_the_code_table_is_the_documented_table(row):
    entry = vocabulary.entry(row["category"])
    assert (entry.family, entry.ocr, entry.speech) == (row["family"], row["ocr"], row["speech"])
    assert vocabulary.family_of(row["ocr"]) == vocabulary.family_of(row["speech"]) == row["family"]
    # A category given with its OCR suffix is the same row.
    assert vocabulary.entry(row["ocr"]) == entry


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_both_channels_of_a_family_weigh_the_same(row):
    assert rule_for(row["ocr"]).risk_level == rule_for(row["speech"]).risk_level == row["risk"]
    assert risk_of(row["ocr"], 90) == risk_of(row["speech"], 90) == row["risk"]
    assert risk_of(row["ocr"], 10) == risk_of(row["speech"], 10) == "none"


def _words_and_keywords(row) -> tuple[str, dict[str, list[str]] | None]:
    if row["category"] in BUILTIN_WORDS:
        return BUILTIN_WORDS[row["category"]], None
    return f"we went down to the {KEYWORD} last night", {row["category"]: [KEYWORD]}


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_ocr_text_and_a_transcript_give_the_same_family(row):
    text, keywords = _words_and_keywords(row)
    ocr = {hit.label for hit in classify_text(text, keywords)}
    said = {hit.label for hit in classify_speech(text, keywords)}
    assert row["ocr"] in ocr and row["speech"] in said
    assert {vocabulary.family_of(label) for label in ocr} == {
        vocabulary.family_of(label) for label in said
    } == {row["family"]}


@pytest.mark.parametrize("row", [r for r in ROWS if r["category"] not in BUILTIN_WORDS],
                         ids=row_id)
def test_a_spotted_keyword_gets_the_label_its_transcript_would(row):
    keywords = {row["category"]: [KEYWORD]}
    assert keyword_labels(KEYWORD, keywords) == [row["speech"]]
    # Through the speech path's own assembly: a hit inside an utterance, one outside.
    spans = [speech._Span(1.0, 3.0, "something else entirely")]
    hits = [KeywordHit(KEYWORD, 1.5, 2.2), KeywordHit(KEYWORD, 6.0, 6.8)]
    out = speech.attach_hits(spans, hits, keywords)
    pcm = np.ones(8 * speech.RATE, dtype=np.int16)
    for span in out:
        part = speech.to_slice(span, pcm, offset=0.0)
        assert [(lbl.label, lbl.service) for lbl in part.labels] == [(row["speech"], "kws")]
        assert vocabulary.family_of(part.labels[0].label) == row["family"]
        assert part.risk_level == row["risk"]


def test_a_phrase_listed_by_two_categories_gets_both_families():
    keywords = {"contraband_drug": ["Blue  Harbour"], "my_words": ["blue harbour"]}
    assert keyword_labels("blue harbour", keywords) == ["contraband", vocabulary.CUSTOM]
    assert keyword_labels("something unlisted", keywords) == [vocabulary.CUSTOM]


def test_a_family_override_covers_its_ocr_labels_unless_they_have_their_own():
    with override_settings(MODERATION={"LABELS": {"contraband": {"risk_level": "low"}}}):
        assert risk_of("contraband", 90) == risk_of("contraband_drug_tii", 90) == "low"
    with override_settings(MODERATION={"LABELS": {
        "contraband": {"risk_level": "low"}, "contraband_drug_tii": {"risk_level": "medium"},
    }}):
        assert risk_of("contraband_drug_tii", 90) == "medium"
        assert risk_of("contraband_gamble_tii", 90) == "low"


def test_labels_outside_the_table_are_their_own_family():
    assert vocabulary.family_of("pt_qrCode") == "pt_qrCode"
    assert vocabulary.family_of("sexual_sounds") == "sexual_sounds"
    with pytest.raises(ValueError, match="unknown channel"):
        vocabulary.entry("contraband_drug").label("video")


def test_real_ocr_and_the_same_words_said_and_spotted_are_one_family():
    """The engine's OCR of a real image, the OCR'd lines as a transcript, and a spotted
    phrase: each keyword category and built-in rule lands in the same family."""
    keywords = {"contraband_drug": ["cheap deals"], "my_words": ["领取"]}
    data = AD_TEXT.read_bytes()
    media = Media(name="ad.png", kind="image", opener=lambda: io.BytesIO(data), size=len(data))
    result = LocalProvider("local", {}).submit(
        media, ModerationRequest(scenes=["ad"], options={"keywords": keywords}))
    ocr = {label.label for label in result.labels}
    assert ocr == {"pt_toDirectContact_tii", "contraband_drug_tii", "my_words_tii"}
    transcript = " ".join(line["text"] for line in result.raw["ocr"])
    said = {hit.label for hit in classify_speech(transcript, keywords)}
    assert said == {"ad", "contraband", vocabulary.CUSTOM}
    assert {vocabulary.family_of(label) for label in ocr} == said
    spotted = {label for phrase in ("cheap deals", "领取")
               for label in keyword_labels(phrase, keywords)}
    assert spotted == {"contraband", vocabulary.CUSTOM}
