"""Text rules: contact details, keywords and profanity, on clean and on OCR-mangled text."""

from __future__ import annotations

import pytest

from moderation.providers.local.text_rules import (
    CONTACT,
    PROFANITY,
    classify_text,
    normalise,
)


def labels(text: str, keywords: dict[str, list[str]] | None = None) -> set[str]:
    return {hit.label for hit in classify_text(text, keywords)}


def words(text: str, label: str = CONTACT) -> list[str]:
    return [word for hit in classify_text(text) if hit.label == label for word in hit.risk_words]


@pytest.mark.parametrize(
    "text, expected_word",
    [
        # URLs and domains
        ("visit https://spam.example/offer now", "https://spam.example/offer"),
        ("go to www.cheap-deals.xyz/today", "www.cheap-deals.xyz/today"),
        ("order at bestpills.shop", "bestpills.shop"),
        ("visit example dot com for more", "example dot com"),
        ("see exampledotcom", "exampledotcom"),
        # e-mail and handles
        ("write to joe.doe+promo@gmail.com", "joe.doe+promo@gmail.com"),
        ("follow @deals_4_you", "@deals_4_you"),
        # phone numbers
        ("call +1 555 010 7788 today", "+1 555 010 7788"),
        ("tel. (555) 010-7788", "(555) 010-7788"),
        ("phone 555.010.7788", "555.010.7788"),
        ("OCR misread: +1 555 O1O 7788", "+1 555 O1O 7788"),
        ("手机 13812345678", "13812345678"),
        # messaging apps and ids
        ("WeChat: deals_888", "WeChat: deals_888"),
        ("QQ号 12345678", "QQ号 12345678"),
        ("line id: mygirl88", "line id: mygirl88"),
        ("message me on Telegram", "Telegram"),
        ("Kik me", "Kik"),
        # calls to action
        ("Add me on WhatsApp for cheap deals", "Add me on"),
        ("click the link below", "click the link"),
        ("link in bio", "link in bio"),
        ("Buy cheap pills now", "Buy cheap pills now"),
        ("BUYCHEAPPILLSNOW", "BUYCHEAPPILLSNOW"),
        ("B U Y  N O W", "B U Y  N O W"),
        ("Contact me 0n WhatsApp", "Contact me 0n"),
        ("free iPhone giveaway", "free iPhone"),
        # Chinese
        ("加微信领取免费礼品", "加微信"),
        ("加V了解详情", "加V"),
        ("微信号\uff1aabc_888", "微信号"),  # full-width colon
        ("欢迎加入QQ群", "QQ群"),
        ("有意私聊", "私聊"),
        ("点击链接立即购买", "点击链接"),
    ],
)
def test_contact_rules_report_the_written_words(text, expected_word):
    assert expected_word in words(text)


def test_claim_free_needs_both_words():
    hits = {hit.rule: hit for hit in classify_text("加微信领取免费礼品")}
    assert hits["contact.zh_free_claim"].risk_words == ["领取", "免费"]
    assert "contact.zh_free_claim" not in {hit.rule for hit in classify_text("领取快递")}


def test_whole_ad_line_gives_one_label_with_every_signal():
    hits = classify_text("Add me on WhatsApp +1 555 010 7788 for cheap deals")
    assert {hit.label for hit in hits} == {CONTACT}
    found = {word for hit in hits for word in hit.risk_words}
    assert {"Add me on", "WhatsApp", "+1 555 010 7788"} <= found
    assert max(hit.confidence for hit in hits) >= 85


@pytest.mark.parametrize(
    "text",
    [
        "Lovely sunset over the lake, 2023",
        "The meeting is on 2024-01-15 at 10:30 in room 4",
        "Copyright 2019 2020 2021 All rights reserved",
        "Prices from $1 299 999",
        "Add members to your team",
        "buyers know best",
        "a b testing plan",
        "加VIP会员",
        "妈妈的生日蛋糕",
        "Welcome to the site.Come in",
        "www.www.ww.",
        "Line up here",
        "",
        "   ",
    ],
)
def test_benign_text_has_no_hits(text):
    assert classify_text(text) == []


@pytest.mark.parametrize(
    "text, expected_word",
    [
        ("this is a fucking scam", "fucking"),
        ("you stupid idiot", "idiot"),
        ("what the f*ck", "f*ck"),
        ("fvck off", "fvck"),
        ("sh1t happens", "sh1t"),
        ("f u c k you", "f u c k"),
        ("F.U.C.K", "F.U.C.K"),
        ("what an asshole", "asshole"),
        ("son of a BITCH", "BITCH"),
        ("\uff26\uff35\uff23\uff2b", "\uff26\uff35\uff23\uff2b"),  # full-width FUCK
        ("你这个傻逼", "傻逼"),
        ("草泥马", "草泥马"),
        ("王八蛋", "王八蛋"),
    ],
)
def test_profanity(text, expected_word):
    assert expected_word in words(text, PROFANITY)


@pytest.mark.parametrize(
    "text",
    [
        "Scunthorpe United won at home",
        "a class of assassins passed the bass",
        "Charles Dickens lived in Sussex",
        "Arsenal played in Penistone",
        "shiitake mushrooms and a cocktail",
        "Hitchcock's therapist",
        "documents were assessed",
        "a peacock and a cockpit",
    ],
)
def test_no_scunthorpe_false_hits(text):
    assert PROFANITY not in labels(text)


def test_keywords_give_category_labels():
    keywords = {"contraband_drug": ["cheap pills", "大麻"], "gambling_tii": ["casino"]}
    assert labels("buy cheap pills", keywords) >= {"contraband_drug_tii"}
    assert labels("出售大麻", keywords) == {"contraband_drug_tii"}
    # a category already named <x>_tii is not suffixed twice
    assert labels("Best CASINO in town", keywords) == {"gambling_tii"}


def test_keywords_survive_ocr_glueing_but_not_inside_other_words():
    keywords = {"contraband_drug": ["cheap pills"], "weapons": ["gun"]}
    hits = {hit.rule: hit for hit in classify_text("BUYCHEAPPILLSNOW", keywords)}
    assert hits["keyword.contraband_drug.glued"].risk_words == ["CHEAPPILLS"]
    assert hits["keyword.contraband_drug.glued"].confidence < 100
    # short keywords match whole words only
    assert "weapons_tii" not in labels("a begun project", keywords)
    assert "weapons_tii" in labels("a GUN for sale", keywords)


def test_no_keywords_means_only_builtin_rules():
    assert labels("casino tonight", None) == set()
    assert labels("casino tonight", {}) == set()


def test_normalise_folds_width_case_leetspeak_and_spaces():
    full_width_con = "\uff23\uff4f\uff4e"
    assert normalise(full_width_con + "tact ME 0n WhatsApp!") == "contactmeonwhatsapp"
    assert normalise("+1 555 010") == "1555010"  # digits stay digits
    assert normalise("f u c k") == "fuck"


def test_hits_are_one_per_rule_with_unique_words():
    hits = classify_text("WhatsApp whatsapp WhatsApp")
    app_hits = [hit for hit in hits if hit.rule == "contact.app"]
    assert len(app_hits) == 1
    assert app_hits[0].risk_words == ["WhatsApp", "whatsapp"]
