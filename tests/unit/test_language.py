"""Language per slice (stored result, ingest, API, console, admin) and Chinese text rules that
read a transcript as they read OCR text (traditional characters, spaces between characters,
numbers said in Chinese numerals)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from moderation import pipeline
from moderation.labels import make_label
from moderation.language import LOW_CONFIDENCE, doubt, is_uncertain
from moderation.models import AudioSlice, Job, Status
from moderation.providers.local import speech
from moderation.providers.local.speech_rules import (
    SPEECH_RULES,
    SUPERSEDED_TEXT_RULES,
    classify_speech,
)
from moderation.providers.local.text_rules import classify_text
from moderation.providers.result import Label, Result, Slice
from moderation.vocabulary import family_of
from tests.pipeline.test_review import moderator

API = "/api/moderation"
KEYWORDS = {"contraband_drug": ["冰毒"], "my_words": ["蓝色港湾"]}
SPEECH_ONLY = {rule.name for rule in SPEECH_RULES} | {"speech.phone"}


# --- the stored result ------------------------------------------------------------------------


def test_slice_language_round_trips_through_the_stored_result():
    result = Result(slices=[
        Slice(0.0, 2.0, "加微信", language="zh", language_confidence=0.42),
        Slice(2.0, 4.0, "hello"),
    ])
    back = Result.from_dict(result.to_dict())
    assert [(s.language, s.language_confidence) for s in back.slices] == [("zh", 0.42), ("", None)]
    # A result stored before the fields existed reads as "not said".
    old = Slice.from_dict({"start": 1, "end": 2, "text": "x"})
    assert (old.language, old.language_confidence) == ("", None)


@pytest.mark.parametrize(("language", "confidence", "why"), [
    ("zh", 0.42, "low language confidence"), ("zh", LOW_CONFIDENCE, ""), ("en", 0.97, ""),
    ("", None, ""), ("en", None, ""), ("", 0.1, ""), ("zh-CN", 0.9, ""),
    # Whisper base on synthetic Mandarin: "Thai", 0.74 (docs/providers.md).
    ("th", 0.74, "a language the text rules do not read"),
    ("ja", None, "a language the text rules do not read"),
])
def test_a_slice_is_doubtful_when_its_language_is_improbable_or_unread(language, confidence, why):
    assert doubt(language, confidence) == why
    assert is_uncertain(language, confidence) is bool(why)


# --- ingest, API, console, admin --------------------------------------------------------------


def _label(name: str, confidence: float = 90.0) -> Label:
    return make_label(name, confidence, "asr", "antispam", name)


@pytest.fixture
def ingested(db):
    job = Job.objects.create(media_kind="audio", provider="local", status=Status.SUBMITTED,
                             file_name="talk.wav")
    slices = [
        Slice(0.0, 2.0, "add me on telegram", [_label("ad")], ["add me on telegram"], "medium",
              b"RIFF wav", language="en", language_confidence=0.97),
        Slice(2.0, 4.0, "加微信abc888", [_label("ad")], ["加微信"], "medium", b"RIFF wav",
              language="zh", language_confidence=0.42),
        Slice(4.0, 6.0, "", [_label("contraband")], ["cheap pills"], "high", b"RIFF wav"),
        # A provider's odd values: a probability over 1 and a NaN are stored sane.
        Slice(6.0, 7.0, "ok", language="en", language_confidence=1.7),
        Slice(7.0, 8.0, "ok", language="en", language_confidence=float("nan")),
        Slice(8.0, 9.0, "คินฟรีกราย", language="th", language_confidence=0.74),
    ]
    result = Result(status="done", risk_level="high", suggestion="block", slices=slices)
    return pipeline.ingest(job, result)


def test_ingest_stores_each_slices_language(ingested):
    rows = list(AudioSlice.objects.filter(job=ingested).order_by("start"))
    assert [(r.language, r.language_confidence) for r in rows] == [
        ("en", 0.97), ("zh", 0.42), ("", None), ("en", 1.0), ("en", None), ("th", 0.74)]
    assert [r.language_uncertain for r in rows] == [False, True, False, False, False, True]
    assert rows[1].language_text == "zh 42%"


def test_the_api_serves_language_confidence_and_the_uncertain_mark(ingested, django_user_model):
    client = APIClient()
    client.force_authenticate(moderator("viewer", "view_job"))
    body = client.get(f"{API}/jobs/{ingested.pk}/slices/").json()
    got = [(s["language"], s["language_confidence"], s["language_uncertain"])
           for s in body["results"]]
    assert got == [("en", 0.97, False), ("zh", 0.42, True), ("", None, False),
                   ("en", 1.0, False), ("en", None, False), ("th", 0.74, True)]


def test_the_console_transcript_shows_language_and_marks_the_doubtful_slice(client, ingested):
    client.force_login(moderator("alice", "view_job", "review_job"))
    page = client.get(reverse("admin:moderation_job_review", args=[ingested.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "zh 42% uncertain" in body and "th 74% uncertain" in body
    assert body.count('class="mod-lang mod-lang-uncertain"') == 2
    assert 'title="low language confidence: listen to the clip"' in body
    assert ">en 97%<" in body
    assert 'lang="zh">' in body  # the transcript text is tagged for fonts and screen readers
    assert body.count('class="mod-lang') == 5  # the slice without a language has no badge


def test_the_admin_inline_shows_a_flagged_slices_language(admin_client, ingested):
    page = admin_client.get(reverse("admin:moderation_job_change", args=[ingested.pk]))
    body = page.content.decode()
    assert 'zh 42% <strong title="low language confidence">uncertain</strong>' in body
    assert "en 97%" in body


# --- Chinese: a transcript is read as OCR text is ---------------------------------------------


def families(hits) -> set[str]:
    return {family_of(hit.label) for hit in hits}


def rules(hits) -> set[str]:
    return {hit.rule for hit in hits}


CHINESE = [
    # (text as OCR or a recogniser writes it, rules that must fire)
    ("加我微信abc_888", {"contact.zh_add", "contact.zh_app"}),
    ("微信号\uff1aabc_888", {"contact.app_id", "contact.zh_id"}),
    ("QQ群 12345678 私聊", {"contact.zh_id", "contact.zh_private"}),
    ("扫码领取免费礼品", {"contact.zh_scan", "contact.zh_free_claim"}),
    ("出售冰毒 量大从优", {"keyword.contraband_drug"}),
    ("来蓝色港湾找我", {"keyword.my_words"}),
    ("你这个傻逼", {"profanity.zh"}),
    ("我的手机号13800138000", {"contact.cn_mobile", "contact.zh_private"}),
    ("访问example点com领取", {"contact.spoken_url"}),
]
# How Whisper may write the same: traditional characters, spaces between characters,
# a phone number in Chinese numerals.
TRANSCRIBED = [
    ("加 我 微 信 abc_888", {"contact.zh_add", "contact.zh_app"}),
    ("微信號\uff1aabc_888", {"contact.app_id", "contact.zh_id"}),
    ("掃碼領取免費禮品", {"contact.zh_scan", "contact.zh_free_claim"}),
    ("聯繫方式 加微信", {"contact.zh_private", "contact.zh_add"}),
    ("出 售 冰 毒", {"keyword.contraband_drug"}),
    ("來 藍色港灣 找我", {"keyword.my_words"}),
    ("我的手機號一三八零零一三八零零零", {"contact.cn_mobile", "contact.zh_private"}),
    ("你 這個 傻 逼", {"profanity.zh"}),
]


@pytest.mark.parametrize(("text", "expected"), CHINESE + TRANSCRIBED)
def test_a_chinese_transcript_gets_the_findings_of_the_same_ocr_text(text, expected):
    ocr = classify_text(text, KEYWORDS)
    said = classify_speech(text, KEYWORDS)
    assert expected <= rules(ocr)
    assert families(said) == families(ocr)
    # Every shared rule that fired on the OCR text fires on the transcript, but the ones a
    # speech rule replaces ("x dot com": speech.url, which reads 点 too).
    assert rules(said) - SPEECH_ONLY == rules(ocr) - SUPERSEDED_TEXT_RULES
    assert all(hit.label in ("ad", "profanity", "contraband", "C_customized") for hit in said)


@pytest.mark.parametrize(("written", "transcribed"), [
    ("加我微信abc_888", "加 我 微 信 abc_888"),
    ("扫码领取免费礼品", "掃碼領取免費禮品"),
    ("出售冰毒", "出 售 冰 毒"),
])
def test_written_and_transcribed_forms_find_the_same(written, transcribed):
    assert rules(classify_text(transcribed, KEYWORDS)) == rules(classify_text(written, KEYWORDS))


def test_hits_report_the_words_as_the_recogniser_wrote_them():
    hits = {hit.rule: hit.risk_words for hit in classify_speech("請 加 微 信 聯繫方式", None)}
    assert hits["contact.zh_add"] == ["加 微 信"]
    assert hits["contact.zh_private"] == ["聯繫方式"]
    numbers = {h.rule: h.risk_words for h in classify_text("電話一三八零零一三八零零零", None)}
    assert numbers["contact.cn_mobile"] == ["一三八零零一三八零零零"]


@pytest.mark.parametrize("text", [
    "一二三四五六",  # six numerals: counting, not a number
    "我们三个人一起去",
    "妈妈的生日",  # 妈的 inside 妈妈的
    "今天天气很好\uff0c我们去公园",
])
def test_ordinary_chinese_stays_clean(text):
    assert classify_text(text, KEYWORDS) == [] and classify_speech(text, KEYWORDS) == []


def test_a_chinese_slice_carries_its_findings_and_language():
    span = speech._Span(0.0, 2.0, "加 微 信 買 冰 毒", language="zh", language_confidence=0.31)
    span.findings = speech.asr_findings(span.text, KEYWORDS)
    part = speech.to_slice(span, speech.np.ones(3 * speech.RATE, dtype="int16"), offset=10.0)
    assert {lbl.label for lbl in part.labels} == {"ad", "contraband"}
    assert (part.language, part.language_confidence) == ("zh", 0.31)
    assert part.risk_level == "high" and part.audio
