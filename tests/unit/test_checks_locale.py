"""System checks follow the active language (issue 14, item 6): the same stable id, the
message and hint in Simplified Chinese under ``zh-hans`` and in English otherwise. The
catalogue itself (complete, compiled, re-extracted) is tested in tests/admin/test_locale.py."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings
from django.utils import translation

from moderation.providers.aliyun.credentials import CredentialsError, check_spec, provider_for

CJK = re.compile(r"[\u4e00-\u9fff]")
GUARDRAILS = "moderation.providers.aliyun.guardrails.GuardrailsProvider"


def messages(moderation: dict, wanted: str, language: str) -> list:
    with translation.override(language), override_settings(MODERATION=moderation):
        return [message for message in run_checks() if message.id == wanted]


def test_a_settings_check_in_chinese_and_in_english():
    bad = {**settings.MODERATION, "LEASE_SECONDS": 1}
    [english] = messages(bad, "moderation.E019", "en")
    assert english.msg == "MODERATION['LEASE_SECONDS'] = 1 is not a number of seconds >= 3."
    assert english.hint == "30 hands a dead worker's job on within about a minute."
    [chinese] = messages(bad, "moderation.E019", "zh-hans")
    assert chinese.msg == "MODERATION['LEASE_SECONDS'] = 1 不是 >= 3 的秒数。"
    assert CJK.search(chinese.hint)
    # After the override, the default language again.
    assert messages(bad, "moderation.E019", "en")[0].msg == english.msg


def test_an_unknown_setting_keeps_its_key_in_the_chinese_message():
    bad = {**settings.MODERATION, "ALERT": {}}
    [english] = messages(bad, "moderation.E008", "en")
    assert english.msg == "Unknown MODERATION setting 'ALERT'."
    [chinese] = messages(bad, "moderation.E008", "zh-hans")
    assert chinese.msg == "未知的 MODERATION 设置项 'ALERT'。"
    assert "docs/settings.md" in chinese.hint and CJK.search(chinese.hint)


def test_the_local_providers_own_check_is_translated():
    """E021 comes from LocalProvider.check (providers/local/checks.py), not checks.py."""
    providers = {"local": {"BACKEND": "moderation.providers.local.LocalProvider",
                           "OPTIONS": {"asr_model": "large-v3"}}}
    bad = {**settings.MODERATION, "PROVIDERS": providers, "DEFAULT_PROVIDER": "local"}
    [english] = messages(bad, "moderation.E021", "en")
    assert english.msg.startswith("Provider 'local': asr_model 'large-v3' is not one of ")
    assert english.hint.startswith("pip install 'django-media-moderation[local]'")
    [chinese] = messages(bad, "moderation.E021", "zh-hans")
    assert chinese.msg.startswith("服务商 'local'") and "asr_model 'large-v3' 不是 " in chinese.msg
    assert "asr_engine='pocketsphinx'" in chinese.hint and CJK.search(chinese.hint)


def test_the_alibaba_providers_own_check_is_translated():
    """E011 comes from AliyunCallbacks.check (providers/aliyun/callbacks.py)."""
    providers = {**settings.MODERATION.get("PROVIDERS", {}),
                 "g": {"BACKEND": GUARDRAILS,
                       "OPTIONS": {"ACCESS_KEY_ID": "id", "ACCESS_KEY_SECRET": "s"}}}
    bad = {**settings.MODERATION, "PROVIDERS": providers,
           "CALLBACK_BASE_URL": "https://example.com"}
    [english] = messages(bad, "moderation.E011", "en")
    assert english.msg.startswith("Provider 'g' receives callbacks but has no UID option")
    [chinese] = messages(bad, "moderation.E011", "zh-hans")
    assert chinese.msg.startswith("服务商 'g' 接收回调") and "没有 UID 选项" in chinese.msg
    assert "OPTIONS['UID']" in chinese.hint and "CALLBACK_BASE_URL" in chinese.hint


def test_a_credentials_error_of_a_job_stays_english():
    """check_spec speaks the active language for E003; the same problem raised while a job
    runs (provider_for) is an error stored with the job, in English like the others."""
    with translation.override("zh-hans"), pytest.raises(CredentialsError,
                                                        match="is not one of"):
        provider_for("nonsense")
    with translation.override("zh-hans"):
        assert check_spec("nonsense").startswith("CREDENTIALS 'nonsense' 不是 ")
    with translation.override("en"):
        assert check_spec("nonsense").startswith("CREDENTIALS 'nonsense' is not one of ")
