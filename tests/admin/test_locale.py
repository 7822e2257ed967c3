"""The Simplified Chinese locale (issue 14, item 6): the catalogue is complete, the shipped
``.mo`` is the compiled ``.po``, and the console, the job admin and the label names follow
the user's language (LocaleMiddleware: Accept-Language, the language cookie).

The catalogue is read with a small parser of the PO subset ``makemessages`` writes, and the
``.mo`` with the standard library's :mod:`gettext`, so no GNU gettext is needed except for
the one test that re-extracts the sources (skipped without ``xgettext``)."""

from __future__ import annotations

import ast
import gettext
import os
import re
import shutil
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import translation

from moderation import labels
from moderation.labels import DEFAULT_LABELS, SUFFIX_RULES, UNKNOWN_RULE, label_name
from moderation.models import AudioSlice, Job, ReviewEvent
from tests.conftest import ROOT
from tests.pipeline.test_review import make_job, moderator

APP = ROOT / "moderation"
MESSAGES = APP / "locale" / "zh_Hans" / "LC_MESSAGES"
PO = MESSAGES / "django.po"
MO = MESSAGES / "django.mo"
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans,zh;q=0.9,en;q=0.5"}
FORMAT = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[sdifr]|%[sd%]")
CJK = re.compile(r"[\u4e00-\u9fff]")


def parse_po(path: Path) -> list[dict]:
    """Entries as dicts: msgctxt, msgid, msgid_plural, msgstr (list), flags, obsolete."""
    entries: list[dict] = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        entry: dict = {"msgctxt": None, "msgid_plural": None, "msgstr": [], "flags": set(),
                       "obsolete": False}
        key = None
        for line in block.strip().splitlines():
            if line.startswith("#~"):
                entry["obsolete"] = True
                continue
            if line.startswith("#,"):
                entry["flags"] |= {f.strip() for f in line[2:].split(",")}
                continue
            if line.startswith("#"):
                continue
            word, _, rest = line.partition(" ")
            if line.startswith('"'):
                value = ast.literal_eval(line)
                if key == "msgstr":
                    entry["msgstr"][-1] += value
                else:
                    entry[key] += value
                continue
            value = ast.literal_eval(rest)
            if word.startswith("msgstr"):
                key = "msgstr"
                entry["msgstr"].append(value)
            else:
                key = word
                entry[word] = value
        if "msgid" in entry:
            entries.append(entry)
    return entries


@pytest.fixture(autouse=True)
def _default_language_after():
    """LocaleMiddleware activates the request's language in this thread and nothing undoes
    it in the test client: without this, the tests after a Chinese page ran in Chinese."""
    yield
    translation.deactivate()


def messages() -> list[dict]:
    return [e for e in parse_po(PO) if e["msgid"] and not e["obsolete"]]


# --- the catalogue --------------------------------------------------------------------------


def test_every_message_is_translated_and_none_is_fuzzy():
    entries = messages()
    assert len(entries) > 300
    header = next(e for e in parse_po(PO) if e["msgid"] == "")
    assert "fuzzy" not in header["flags"]
    assert "Language: zh_Hans" in header["msgstr"][0]
    assert "Plural-Forms: nplurals=1; plural=0;" in header["msgstr"][0]
    untranslated = [e["msgid"] for e in entries if not all(s.strip() for s in e["msgstr"])]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert untranslated == [] and fuzzy == []
    assert not [e for e in parse_po(PO) if e["obsolete"]], "obsolete (#~) entries left"


def test_translations_keep_their_placeholders_and_are_chinese():
    for entry in messages():
        wanted = sorted(FORMAT.findall(entry["msgid"]))
        for text in entry["msgstr"]:
            assert sorted(FORMAT.findall(text)) == wanted, entry["msgid"]
        # Everything but codes and numbers ("0..100", "sha256", "pdq") reads as Chinese.
        if re.search(r"[a-z]{3}", re.sub(FORMAT, "", entry["msgid"])) and entry["msgid"] not in {
                "sha256", "pdq", "0..100"}:
            assert CJK.search(entry["msgstr"][0]), entry["msgid"]


def test_the_shipped_mo_is_the_compiled_po():
    """A .po edited without running compilemessages would ship stale translations."""
    with MO.open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)._catalog
    expected: dict = {}
    for entry in messages():
        msgid = entry["msgid"] if entry["msgctxt"] is None else \
            f"{entry['msgctxt']}\x04{entry['msgid']}"
        if entry["msgid_plural"] is None:
            expected[msgid] = entry["msgstr"][0]
        else:
            for n, text in enumerate(entry["msgstr"]):
                expected[(msgid, n)] = text
    compiled = {key: value for key, value in catalog.items() if key != ""}
    assert compiled == expected


def test_the_package_ships_the_catalogue():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = conf["tool"]["setuptools"]["package-data"]["moderation"]
    for path in (PO, MO):
        relative = path.relative_to(APP).as_posix()
        assert any(fnmatch(relative, pattern) for pattern in patterns), relative


@pytest.mark.slow  # runs xgettext over the app (about 2 s)
@pytest.mark.skipif(shutil.which("xgettext") is None,
                    reason="GNU gettext (xgettext) is not installed: apt-get install gettext")
def test_the_catalogue_covers_every_marked_string(tmp_path):
    """makemessages on a copy of the app finds no msgid the catalogue lacks (a string marked
    since the last makemessages would show in English to a Chinese reader)."""
    copy = tmp_path / "moderation"
    shutil.copytree(APP, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    admin = Path(sys.executable).with_name("django-admin")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([str(admin), "makemessages", "-l", "zh_Hans", "--add-location=file"],
                   cwd=copy, check=True, capture_output=True, env=env)
    fresh = {(e["msgctxt"], e["msgid"])
             for e in parse_po(copy / "locale/zh_Hans/LC_MESSAGES/django.po")
             if e["msgid"] and not e["obsolete"] and all(s.strip() for s in e["msgstr"])}
    extracted = {(e["msgctxt"], e["msgid"])
                 for e in parse_po(copy / "locale/zh_Hans/LC_MESSAGES/django.po")
                 if e["msgid"] and not e["obsolete"]}
    assert extracted - fresh == set(), "marked strings without a translation"
    ours = {(e["msgctxt"], e["msgid"]) for e in messages()}
    assert ours - extracted == set(), "translations of strings no longer in the sources"


# --- label names ----------------------------------------------------------------------------


def test_label_names_follow_the_language():
    with translation.override("zh-hans"):
        assert label_name("pt_qrCode") == "二维码"
        assert label_name("sexual_partialNudity") == "臀部裸露"
        assert label_name("contraband_drug_tii") == "文字中的自定义关键词"
        assert label_name("someone_elses_label") == "无规则的标签"
    with translation.override("en"):
        assert label_name("pt_qrCode") == "a QR code"
    # Stored descriptions stay English whatever the language (results, the emulator).
    with translation.override("zh-hans"):
        assert labels.rule_for("pt_qrCode").description == "a QR code"


def test_every_label_description_has_a_translation():
    rules = [*DEFAULT_LABELS.values(), *SUFFIX_RULES.values(), UNKNOWN_RULE]
    descriptions = {rule.description for rule in rules}
    assert descriptions <= set(labels.SPEECH_FAMILY_DESCRIPTIONS) | {
        e["msgid"] for e in messages()}
    with translation.override("zh-hans"):
        for text in descriptions:
            assert CJK.search(translation.gettext(text)), text


# --- pages ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_review_queue_in_chinese_and_in_english(client):
    make_job(frames=2, flagged_every=1)
    client.force_login(moderator("alice", "view_job", "review_job"))
    body = client.get(reverse("admin:moderation_job_queue"), **ZH).content.decode()
    assert '<html lang="zh-hans"' in body
    for text in ("审核队列", "审核下一项", "1 项待审", "最严重的标签", "筛选队列",
                 "始终显示有风险的图像"):
        assert text in body, text
    assert "Review next item" not in body
    english = client.get(reverse("admin:moderation_job_queue"),
                         HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Review next item" in english and "审核下一项" not in english


@pytest.mark.django_db
def test_review_job_page_in_chinese_shows_label_names(client):
    job = make_job(frames=3, flagged_every=1, labels=("pt_qrCode",))
    client.force_login(moderator("alice", "view_job", "review_job"))
    body = client.get(reverse("admin:moderation_job_review", args=[job.pk]), **ZH)
    body = body.content.decode()
    for text in ("通过 —— 放行", "拒绝 —— 拦截", "审计记录", "键盘", "并打开下一项",
                 '<small class="mod-label-name">二维码</small>', "视频",
                 '<span class="mod-risk mod-risk-medium">中</span>', "建议: <b>人工审核</b>"):
        assert text in body, text
    assert "pt_qrCode" in body  # the code stays beside its name
    assert "Approve — pass" not in body


@pytest.mark.django_db
def test_job_admin_in_chinese(client, django_user_model):
    make_job(frames=1, flagged_every=1)
    admin = django_user_model.objects.create_superuser("root", password="pw")
    client.force_login(admin)
    body = client.get(reverse("admin:moderation_job_changelist"), **ZH).content.decode()
    for text in ("内容审核", "任务", "媒体类型", "状态", "风险等级", "人工审核状态",
                 "重试所选的失败或过期任务", "需人工审核"):
        assert text in body, text
    index = client.get(reverse("admin:index"), **ZH).content.decode()
    assert "内容审核" in index and "哈希条目" in index


@pytest.mark.django_db
def test_language_cookie_switches_the_console(client, settings):
    """The admin's own language switch (set_language) sets this cookie."""
    make_job()
    client.force_login(moderator("alice", "view_job", "review_job"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    body = client.get(reverse("admin:moderation_job_queue")).content.decode()
    assert "审核队列" in body


# --- values shown by name: risk levels, label names, object names (acceptance review) ------


def outside_titles(html: str) -> str:
    """The page without its ``title="..."`` attributes: what a reader sees without hovering."""
    return re.sub(r'\stitle="[^"]*"', "", html)


@pytest.mark.django_db
def test_overview_names_the_labels_with_the_code_on_hover(client):
    from tests.admin.test_overview import job as overview_job
    Job.objects.bulk_create([overview_job(1, labels=["pt_qrCode"]),
                             overview_job(2, labels=["pt_qrCode", "ad"])])
    client.force_login(moderator("viewer", "view_job"))
    body = client.get(reverse("admin:moderation_job_overview"), {"days": 7},
                      **ZH).content.decode()
    for code, name in (("pt_qrCode", "二维码"), ("ad", "语音广告引流")):
        assert re.search(rf'<li title="{code}"><svg [^>]*>.*?</svg> {name}</li>', body), code
        assert f'<th class="mod-num" title="{code}">{name}</th>' in body  # the figures table
        assert re.search(rf"<title>[^<]* · {name}: 1</title>", body), code  # the tooltips
    assert "pt_qrCode" not in outside_titles(body)
    english = client.get(reverse("admin:moderation_job_overview"), {"days": 7},
                         HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<th class="mod-num" title="pt_qrCode">a QR code</th>' in english


def test_risk_badge_shows_the_risk_levels_name():
    from moderation.admin.jobs import risk_badge
    with translation.override("zh-hans"):
        assert risk_badge("high") == '<b style="color:#ba2121">高</b>'
        assert risk_badge("none") == '<b style="color:#2e7d32">无</b>'
        assert risk_badge("odd") == '<b style="color:#666">odd</b>'  # not a level: as stored
    with translation.override("en"):
        assert risk_badge("medium") == '<b style="color:#c77c00">medium</b>'


@pytest.mark.django_db
def test_job_list_and_job_page_in_chinese_show_risk_names_and_object_names(client,
                                                                          django_user_model):
    job = make_job("high", frames=3, flagged_every=1, slices=1, pending=False)
    client.force_login(django_user_model.objects.create_superuser("root", password="pw"))
    listing = client.get(reverse("admin:moderation_job_changelist"), **ZH).content.decode()
    assert '<b style="color:#ba2121">高</b>' in listing
    assert f"任务 {job.pk} 视频 [已完成]" in listing  # the row checkbox's label
    page = client.get(reverse("admin:moderation_job_change", args=[job.pk]),
                      **ZH).content.decode()
    assert '<b style="color:#ba2121">高</b>' in page  # the job's risk
    assert '<b style="color:#c77c00">中</b>' in page  # its flagged audio slice's
    assert f"<title>任务 {job.pk} 视频 [已完成] |" in page  # the page title
    # the breadcrumbs' last item: "&rsaquo; name</div>" to Django 6.0, an <li> from 6.1
    assert re.search(rf"(&rsaquo; |<li aria-current=\"page\">)任务 {job.pk} 视频 \[已完成\]"
                     r"\s*</(div|li)>", page)
    assert f"任务 {job.pk} 的片段 0.0\u20135.0 秒" in page  # the slice inline's row
    visible = outside_titles(page)
    for english in (">high<", ">medium<", "[done]", "slice 0.0", f"of job {job.pk}"):
        assert english not in visible, english


@pytest.mark.django_db
def test_object_names_follow_the_language():
    job = make_job("medium", slices=1, pending=False, kind="image")
    piece = AudioSlice.objects.get(job=job)
    event = ReviewEvent.objects.create(job=job, action=ReviewEvent.Action.REVIEW_REQUIRED)
    with translation.override("en"):
        assert str(job) == f"Job {job.pk} image [done]"
        assert str(piece) == f"slice 0.0-5.0s of job {job.pk}"
        assert str(event) == f"sent to review on job {job.pk}"
        job.field_name = "photo"
        assert str(job) == f"Job {job.pk} image photo [done]"
    with translation.override("zh-hans"):
        assert str(job) == f"任务 {job.pk} 图片 photo [已完成]"
        job.field_name = ""
        assert str(job) == f"任务 {job.pk} 图片 [已完成]"
        assert str(piece) == f"任务 {job.pk} 的片段 0.0\u20135.0 秒"
        assert str(event) == f"任务 {job.pk}\uff1a已送人工审核"
    job.status = "no_such_status"  # a value the choices lack is shown as stored
    with translation.override("en"):
        assert str(job) == f"Job {job.pk} image [no_such_status]"


@pytest.mark.django_db
def test_timeline_tooltips_name_the_labels(client):
    job = make_job("medium", frames=3, flagged_every=1, labels=("pt_qrCode",))
    client.force_login(moderator("alice", "view_job", "review_job"))
    page = client.get(reverse("admin:moderation_job_change", args=[job.pk]),
                      **ZH).content.decode()
    assert 'title="0.0\u20132.0 s · 二维码"' in page
    review = client.get(reverse("admin:moderation_job_review", args=[job.pk]),
                        **ZH).content.decode()
    assert 'title="0.0\u20132.0 s · 3 · 二维码"' in review
    english = client.get(reverse("admin:moderation_job_change", args=[job.pk]),
                         HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'title="0.0\u20132.0 s · a QR code"' in english


@pytest.mark.django_db
def test_the_host_admins_current_jobs_inline_names_risk_and_labels():
    from django.contrib import admin

    from moderation.admin.mixins import CurrentJobsInline
    from tests.testapp.models import Photo
    job = make_job("medium", labels=("pt_qrCode",))
    inline = CurrentJobsInline(Photo, admin.site)
    with translation.override("zh-hans"):
        assert inline.risk(job) == '<b style="color:#c77c00">中</b>'
        assert inline.labels_text(job) == (
            '<span class="mod-label mod-risk-none" title="pt_qrCode">二维码</span>')
