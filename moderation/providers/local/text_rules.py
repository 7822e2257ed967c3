"""Text rules: contact details / traffic diversion, configured keywords, profanity.

Pure functions over a string, no models: the same rules serve OCR text now and speech
transcripts later. OCR text is messy (pitfall P6 in ENGINE-NOTES): spaced capitals lose
their spaces (``BUYCHEAPPILLSNOW``), ``o`` and ``0`` swap, full-width forms appear. So each
text is matched in three *views*, and every view remembers where each of its characters
came from, so that a hit reports the words as they were written, not as normalised:

``plain``    NFKC + casefold; Chinese made comparable (traditional -> simplified, no
             spaces between Han characters, long numeral runs as digits: zh_text.py).
             For URLs, e-mails, phone numbers, handles.
``words``    word tokens joined by one space; leetspeak undone inside tokens that hold
             a letter (``c0ntact`` -> ``contact``, but ``010`` stays digits); runs of
             single letters glued (``f u c k`` -> ``fuck``). For phrases with ``\\b``.
``compact``  ``words`` without the spaces. For Chinese, which has no spaces anyway.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from ...vocabulary import BUILTIN, CONTACT_CATEGORY, OCR, PROFANITY_CATEGORY, label_for
from .zh_text import NUMERALS, is_han, numeral_runs, simplified

# The built-in rules' OCR labels; every label here comes from the one table (vocabulary.py).
CONTACT = BUILTIN[CONTACT_CATEGORY].ocr
PROFANITY = BUILTIN[PROFANITY_CATEGORY].ocr

PLAIN, WORDS, COMPACT = "plain", "words", "compact"


@dataclass
class TextHit:
    """One rule that fired: the label it gives and the words (as written) that made it."""

    label: str
    confidence: float
    risk_words: list[str] = field(default_factory=list)
    rule: str = ""


@dataclass(frozen=True)
class Rule:
    """A regex in one view. ``also``: a second regex that must match too (e.g. 领取 + 免费)."""

    name: str
    label: str
    view: str
    pattern: re.Pattern[str]
    confidence: float
    also: re.Pattern[str] | None = None


def _rule(
    name: str, label: str, view: str, regex: str, confidence: float, also: str = ""
) -> Rule:
    also_pattern = re.compile(also) if also else None
    return Rule(name, label, view, re.compile(regex), confidence, also_pattern)


# --- Contact details and traffic diversion -----------------------------------------

# Top-level domains common in spam; bare ``name.tld`` counts as a URL only with these.
TLDS = (
    "com|net|org|info|biz|io|co|me|cn|ru|de|uk|xyz|top|vip|shop|site|online|store|app"
    "|link|ly|cc|tv|club|live|win|bet"
)
# TLDs people say aloud or spell out: "example dot com".
SPOKEN_TLDS = "com|net|org|cn|io|co|me"
# Messaging apps; the long names may be glued to other words by OCR ("0nWhatsApp").
APPS_GLUED = r"whats ?app|we ?chat|weixin|telegram|snap ?chat"
APPS_WORD = r"viber|kik|skype|qq|vx|wx|line ?id|tg"
APPS_ZH = r"微信|薇信|威信|徽信|v信"

CONTACT_RULES: tuple[Rule, ...] = (
    _rule("contact.url", CONTACT, PLAIN, r"\bhttps?://\S+", 95),
    # A domain, "www." or not, maybe with a path. A known TLD is required: OCR reads a row
    # of pine trees as "www.www.ww.".
    _rule(
        "contact.domain", CONTACT, PLAIN,
        rf"\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*\.(?:{TLDS})\b(?:/\S*)?", 90,
    ),
    # A spelled-out domain: "example dot com", "example点com".
    _rule(
        "contact.spoken_url", CONTACT, WORDS,
        # Bounded by Latin letters and digits only: Chinese glues words ("访问example点com").
        rf"(?<![a-z0-9])[a-z0-9]+ ?(?:dot|点) ?(?:{SPOKEN_TLDS})(?![a-z0-9])", 90,
    ),
    _rule("contact.email", CONTACT, PLAIN, r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", 95),
    # A social handle: "@name", not the "@" inside an e-mail address.
    _rule("contact.handle", CONTACT, PLAIN, r"(?<![\w@.])@[a-z0-9_][a-z0-9_.]{2,29}\b", 85),
    # An app name followed by an id: "WeChat: abc123", "QQ号 12345678", "微信:abc_88".
    _rule(
        "contact.app_id", CONTACT, PLAIN,
        rf"(?:\b(?:{APPS_GLUED}|{APPS_WORD}|line)(?![a-z])|{APPS_ZH})"
        r"\s*(?:(?:id|号码?)\s*[:\uff1a]?|(?:account|no\.?)?\s*[:\uff1a])\s*\+?[\w.-]{4,}",
        95,
    ),
    # A bare mention of a messaging app: weaker on its own.
    _rule("contact.app", CONTACT, WORDS, rf"(?:{APPS_GLUED})|\b(?:{APPS_WORD})\b", 80),
    # Chinese mainland mobile numbers, written without separators.
    _rule("contact.cn_mobile", CONTACT, PLAIN, r"(?<!\d)1[3-9]\d{9}(?!\d)", 90),
    # Calls to action. " ?" lets OCR'd text without spaces match too ("ADDMEON...").
    _rule(
        "contact.add_me", CONTACT, WORDS,
        r"\b(?:add|contact|message|text|dm|pm|inbox|ping|reach|call) ?me ?(?:on|at|via|in)\b"
        r"|\b(?:add|contact|dm|pm|inbox|message|text) ?me\b",
        85,
    ),
    _rule(
        "contact.click_link", CONTACT, WORDS,
        r"\bclick ?(?:on ?)?(?:(?:the|this|my|our) ?)?(?:link|here|below)\b"
        r"|\blink ?in ?(?:my ?)?bio\b",
        85,
    ),
    # "buy cheap pills now", or glued into one token: "buycheappillsnow".
    _rule(
        "contact.buy_now", CONTACT, WORDS,
        r"\bbuy\b(?: [a-z0-9]+){0,4} now\b|\bbuy[a-z]{0,30}now\b", 85,
    ),
    _rule("contact.order_now", CONTACT, WORDS, r"\b(?:order|shop|call|sign ?up) ?now\b", 70),
    _rule(
        "contact.free_gift", CONTACT, WORDS,
        r"\bfree ?(?:gift|iphone|money|cash|bonus|sample)s?\b", 70,
    ),
    # Chinese: add me on WeChat / QQ ("加V" but not "加VIP"), WeChat id, QQ group.
    _rule(
        "contact.zh_add", CONTACT, COMPACT,
        r"加我?(?:微信|薇信|威信|v信|vx|wx|qq|扣扣|群|好友)|加我?v(?![a-z])",
        90,
    ),
    _rule("contact.zh_id", CONTACT, COMPACT, r"(?:微信|vx|wx|qq)号|qq群|扣扣", 90),
    _rule("contact.zh_app", CONTACT, COMPACT, APPS_ZH, 80),
    _rule("contact.zh_private", CONTACT, COMPACT, r"私聊|私信|私我|联系方式|联系电话|手机号", 85),
    _rule("contact.zh_scan", CONTACT, COMPACT, r"扫码|扫一扫|长按识别", 80),
    _rule("contact.zh_click", CONTACT, COMPACT, r"点击链接|点击下方|立即购买", 80),
    # "claim ... free": 领取 and 免费 anywhere in the same text.
    _rule("contact.zh_free_claim", CONTACT, COMPACT, r"领取|免费领", 85, also=r"免费"),
)

# --- Profanity ------------------------------------------------------------------------

# English, matched on whole words of the ``words`` view: the ``\b`` on both sides keeps
# "Scunthorpe", "class", "assassin" or "Dickens" clean. Bare words with innocent senses
# (cock, dick, ass, prick) only count in their compound forms.
PROFANITY_EN = (
    r"(?:mother ?)?f[u*v]+c?k+(?:er|ers|ing|in|ed|s|face|head|wit|off)?|fck|stfu",
    r"(?:bull ?)?sh[i*]+t(?:s|ty|ting|head|hole|face)?",
    r"(?:dumb|jack|fat|smart) ?ass(?:es)?|ass ?(?:hole|hat|wipe)s?",
    r"bitch(?:es|y|ing)?",
    r"bastards?",
    r"cunts?",
    r"dick ?heads?",
    r"cock ?suckers?",
    r"whores?",
    r"sluts?",
    r"wank(?:er|ers|ing)?",
    r"twats?",
    r"piss(?:ed)? ?off",
    r"douche ?bags?",
    r"retard(?:s|ed)?",
    r"idiots?",
    r"morons?",
    r"f[a*]gg?ots?",
    r"nigg(?:er|a)s?",
)
# Chinese insults, substring-matched ("妈的" alone is left out: it is in "妈妈的").
PROFANITY_ZH = (
    r"傻[逼比屄b叉x]",
    r"煞笔",
    r"草泥马",
    r"操你[妈吗]",
    r"他妈的",
    r"去你妈",
    r"滚蛋",
    r"贱[人货]",
    r"婊子",
    r"王八蛋",
    r"狗娘养",
    r"脑残",
    r"去死",
)

PROFANITY_RULES: tuple[Rule, ...] = (
    _rule("profanity.en", PROFANITY, WORDS, r"\b(?:" + "|".join(PROFANITY_EN) + r")\b", 90),
    _rule("profanity.zh", PROFANITY, COMPACT, "|".join(PROFANITY_ZH), 90),
)

RULES: tuple[Rule, ...] = CONTACT_RULES + PROFANITY_RULES

# --- Normalisation --------------------------------------------------------------------

# Undone only inside tokens that also hold a letter, so numbers stay numbers.
LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t",
                      "@": "a", "$": "s", "!": "i", "|": "l"})
# A token: word characters, possibly joined by the symbols leetspeak uses ("sh!t", "f*ck").
TOKEN = re.compile(r"\w+(?:[@$!|*]+\w+)*")
ASCII_LETTER = re.compile(r"[a-z]")
# Phone-number candidates in the ``plain`` view: digit groups with separators; an "o"
# beside digits is read as zero (OCR swaps them). Validated by :func:`_is_phone`.
PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\do]*(?:[ \t.()-]{1,2}[\do]+){1,6}(?!\w)")
DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
YEAR = re.compile(r"(?:19|20)\d\d")
CURRENCY = "$€£¥"


@dataclass(frozen=True)
class View:
    """A normalised text; ``origin[i]`` is the index in the source of ``text[i]``."""

    text: str
    origin: tuple[int, ...]

    def source_span(self, source: str, start: int, end: int) -> str:
        return source[self.origin[start] : self.origin[end - 1] + 1]


def plain_view(source: str) -> View:
    """NFKC + casefold; Chinese made comparable (:mod:`.zh_text`): traditional characters
    simplified, spaces between two Han characters dropped ("加 微 信"), runs of 7+ Chinese
    numerals read as digits ("一三八…" for a phone number)."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(source):
        for out in unicodedata.normalize("NFKC", ch).casefold():
            chars.append(simplified(out))
            origin.append(i)
    chars, origin = _join_han(chars, origin)
    text = "".join(chars)
    for start, end in numeral_runs(text):
        text = text[:start] + text[start:end].translate(NUMERALS) + text[end:]
    return View(text, tuple(origin))


def _join_han(chars: list[str], origin: list[int]) -> tuple[list[str], list[int]]:
    """Without the spaces between two Han characters (Chinese puts none there)."""
    drop: set[int] = set()
    i = 0
    while i < len(chars):
        if not chars[i].isspace():
            i += 1
            continue
        run_end = i
        while run_end < len(chars) and chars[run_end].isspace():
            run_end += 1
        if i > 0 and run_end < len(chars) and is_han(chars[i - 1]) and is_han(chars[run_end]):
            drop.update(range(i, run_end))
        i = run_end
    if not drop:
        return chars, origin
    keep = [i for i in range(len(chars)) if i not in drop]
    return [chars[i] for i in keep], [origin[i] for i in keep]


def words_view(plain: View) -> View:
    tokens = _glue_spaced_letters(plain)
    chars: list[str] = []
    origin: list[int] = []
    for word, word_origin in tokens:
        if chars:
            chars.append(" ")
            origin.append(origin[-1])
        chars.extend(word)
        origin.extend(word_origin)
    return View("".join(chars), tuple(origin))


def _glue_spaced_letters(plain: View) -> list[tuple[str, tuple[int, ...]]]:
    """Word tokens of a view, with runs of 3+ spaced single characters glued into one.

    "f u c k" and "B.U.Y" become words again; "a b" stays two words.
    """
    tokens: list[tuple[str, tuple[int, ...]]] = []
    run: list[tuple[str, tuple[int, ...]]] = []
    last_end = 0

    def flush() -> None:
        if len(run) >= 3:
            tokens.append(("".join(w for w, _ in run), tuple(i for _, o in run for i in o)))
        else:
            tokens.extend(run)
        run.clear()

    for match in TOKEN.finditer(plain.text):
        word = match.group()
        if ASCII_LETTER.search(word):
            word = word.translate(LEET)
        entry = (word, plain.origin[match.start() : match.end()])
        gap = plain.text[last_end : match.start()]
        if run and (len(gap) > 2 or "\n" in gap):
            flush()
        if len(word) == 1:
            run.append(entry)
        else:
            flush()
            tokens.append(entry)
        last_end = match.end()
    flush()
    return tokens


def compact_view(words: View) -> View:
    keep = [i for i, ch in enumerate(words.text) if ch != " "]
    return View("".join(words.text[i] for i in keep), tuple(words.origin[i] for i in keep))


def normalise(text: str) -> str:
    """The ``compact`` form of a text: what keywords are compared on."""
    return compact_view(words_view(plain_view(text))).text


# --- Matching -------------------------------------------------------------------------


def classify_text(text: str, keywords: dict[str, list[str]] | None = None) -> list[TextHit]:
    """Every rule that fires on ``text``, one :class:`TextHit` per rule.

    ``keywords`` maps a category to words; a hit gives the category's OCR label in
    :mod:`moderation.vocabulary` (``<category>_tii``).
    """
    if not text or not text.strip():
        return []
    plain = plain_view(text)
    words = words_view(plain)
    views = {PLAIN: plain, WORDS: words, COMPACT: compact_view(words)}

    hits: list[TextHit] = []
    for rule in (*RULES, *_keyword_rules(keywords)):
        view = views[rule.view]
        found = _find(rule.pattern, view, text)
        if found and rule.also is not None:
            extra = _find(rule.also, view, text)
            found = found + extra if extra else []
        if found:
            hits.append(TextHit(rule.label, rule.confidence, _unique(found), rule.name))

    phones = _phone_numbers(text, plain)
    if phones:
        hits.append(TextHit(CONTACT, 90, phones, "contact.phone"))
    return hits


def _find(pattern: re.Pattern[str], view: View, source: str) -> list[str]:
    return [view.source_span(source, m.start(), m.end()) for m in pattern.finditer(view.text)]


def _phone_numbers(source: str, plain: View) -> list[str]:
    found = []
    for m in PHONE.finditer(plain.text):
        if _is_phone(m.group()) and not (m.start() and plain.text[m.start() - 1] in CURRENCY):
            found.append(plain.source_span(source, m.start(), m.end()))
    return _unique(found)


def _is_phone(candidate: str) -> bool:
    """7 to 15 digits in separated groups, not a date, not a list of years."""
    digits = re.sub(r"[^\do]", "", candidate)
    if not 7 <= len(digits) <= 15 or digits.count("o") > 2 or DATE.fullmatch(candidate):
        return False
    groups = re.findall(r"[\do]+", candidate)
    return not all(YEAR.fullmatch(group) for group in groups)


def _keyword_rules(keywords: dict[str, list[str]] | None) -> list[Rule]:
    rules: list[Rule] = []
    for category, words in (keywords or {}).items():
        rules.extend(_compile_keywords(category, tuple(words)))
    return rules


@lru_cache(maxsize=256)
def _compile_keywords(category: str, words: tuple[str, ...]) -> tuple[Rule, ...]:
    """Rules for one keyword category.

    Latin keywords match whole words (``\\b``), with optional spaces between their words;
    long ones (8+ letters) also match inside glued OCR text. Others (Chinese) are substrings.
    """
    label = label_for(category, OCR)
    bounded, substrings, glued = [], [], []
    for word in words:
        spaced = words_view(plain_view(word)).text
        if not spaced:
            continue
        compact = spaced.replace(" ", "")
        if ASCII_LETTER.search(spaced):
            bounded.append(" ?".join(re.escape(part) for part in spaced.split(" ")))
            if len(compact) >= 8:
                glued.append(re.escape(compact))
        else:
            substrings.append(re.escape(compact))
    name = f"keyword.{category}"
    rules = []
    if bounded:
        rules.append(_rule(name, label, WORDS, r"\b(?:" + "|".join(bounded) + r")\b", 100))
    if substrings:
        rules.append(_rule(name, label, COMPACT, "|".join(substrings), 100))
    if glued:
        rules.append(_rule(name + ".glued", label, COMPACT, "|".join(glued), 90))
    return tuple(rules)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))
