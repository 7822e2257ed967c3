"""System checks report bad settings with stable ids; the settings object honours overrides."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from moderation.checks import check_settings
from moderation.conf import moderation_settings
from moderation.registry import Registration, registry
from tests.testapp.models import Photo


def ids(**overrides):
    with override_settings(**overrides):
        return sorted({e.id for e in check_settings()})


def test_default_configuration_is_clean():
    assert check_settings() == []
    assert "moderation.E001" not in {e.id for e in checks.run_checks()}


def test_override_settings_is_honoured():
    assert moderation_settings.DEFAULT_PROVIDER == "local"
    with override_settings(MODERATION={"DEFAULT_PROVIDER": "other", "MAX_ATTEMPTS": 9}):
        assert moderation_settings.DEFAULT_PROVIDER == "other"
        assert moderation_settings.MAX_ATTEMPTS == 9
    assert moderation_settings.MAX_ATTEMPTS == 5


def test_unknown_setting_name_raises():
    with pytest.raises(AttributeError, match="Invalid moderation setting"):
        moderation_settings.NOT_A_SETTING  # noqa: B018


def test_unknown_default_provider():
    assert ids(MODERATION={"DEFAULT_PROVIDER": "nope"}) == ["moderation.E001"]


def test_registration_with_unknown_provider(register):
    register(Photo, provider="ghost")
    errors = check_settings()
    assert [e.id for e in errors] == ["moderation.E001"]
    assert "testapp.Photo" in errors[0].msg


def test_unimportable_backend():
    conf = {"PROVIDERS": {"x": {"BACKEND": "no.such.Provider"}}}
    assert ids(MODERATION=conf) == ["moderation.E002"]


def test_alibaba_without_credentials():
    conf = {"PROVIDERS": {"aliyun": {"BACKEND": "tests.providers.AliyunStub",
                                     "OPTIONS": {"ACCESS_KEY_ID": "id"}}}}
    assert ids(MODERATION=conf) == ["moderation.E003"]


def test_callbacks_need_the_account_uid():
    guardrails = {"BACKEND": "moderation.providers.aliyun.guardrails.GuardrailsProvider",
                  "OPTIONS": {"ACCESS_KEY_ID": "id", "ACCESS_KEY_SECRET": "s"}}
    conf = {"CALLBACK_BASE_URL": "https://example.com", "PROVIDERS": {"g": guardrails}}
    assert ids(MODERATION=conf) == ["moderation.E011"]
    guardrails["OPTIONS"]["UID"] = "1234"
    assert ids(MODERATION=conf) == []


def test_callback_url_must_be_https_in_production():
    conf = {"CALLBACK_BASE_URL": "http://example.com/cb"}
    assert ids(MODERATION=conf, DEBUG=False) == ["moderation.E004"]
    assert ids(MODERATION=conf, DEBUG=True) == []
    assert ids(MODERATION={"PUBLIC_BASE_URL": "https://ok.example"}, DEBUG=False) == []
    # Loopback is reachable only from this machine (the emulator): no clear text on a network.
    for url in ("http://127.0.0.1:8000", "http://localhost:8000/", "http://[::1]:8000"):
        assert ids(MODERATION={"PUBLIC_BASE_URL": url}, DEBUG=False) == []
    for url in ("http://127.0.0.1.example.com", "http://10.0.0.1", "http://localhost.evil"):
        assert ids(MODERATION={"PUBLIC_BASE_URL": url}, DEBUG=False) == ["moderation.E004"]


def test_django_q_missing(settings):
    assert ids(Q_CLUSTER=None) == ["moderation.E005"]
    apps = [a for a in settings.INSTALLED_APPS if a != "django_q"]
    with override_settings(INSTALLED_APPS=apps):
        assert "moderation.E005" in {e.id for e in check_settings()}


def test_bad_policy_and_labels():
    assert ids(MODERATION={"POLICY": {"high": "delete"}}) == ["moderation.E006"]
    bad = {"LABELS": {"pt_qrCode": {"risk_level": "extreme"}, "x": {"min_confidence": 300}}}
    assert ids(MODERATION=bad) == ["moderation.E007"]


def test_settings_of_the_wrong_type_are_reported_not_raised():
    """A non-dict MODERATION or LABELS is a system-check error, not an AttributeError from
    ``manage.py check`` (every registered check runs)."""
    with override_settings(MODERATION=5):
        found = {e.id for e in checks.run_checks() if e.id.startswith("moderation.")}
    assert found == {"moderation.E008"}
    assert ids(MODERATION={"LABELS": 5}) == ["moderation.E007"]


def test_typo_in_setting_name():
    assert ids(MODERATION={"DEFAULT_PROVIDR": "local"}) == ["moderation.E008"]


def test_video_defaults_and_task_timeout(settings):
    assert ids(MODERATION={"VIDEO_INTERVAL": 0}) == ["moderation.E010"]
    assert ids(MODERATION={"VIDEO_MAX_FRAMES": 4000}) == ["moderation.E010"]
    assert ids(Q_CLUSTER={**settings.Q_CLUSTER, "timeout": 600}) == ["moderation.W002"]
    assert ids(Q_CLUSTER={**settings.Q_CLUSTER, "timeout": 600},
               MODERATION={"LIVE_MAX_DURATION": 300}) == []


def test_task_timeout_warns_only_when_a_field_may_hold_a_live_stream(settings, monkeypatch):
    """A site moderating uploads only is not told about live streams (W002)."""
    short = {**settings.Q_CLUSTER, "timeout": 600}
    files_only = {Photo: Registration(model=Photo, fields=["image"])}
    monkeypatch.setattr(registry, "_registry", files_only)
    assert ids(Q_CLUSTER=short) == []
    streams = {Photo: Registration(model=Photo, fields=["image"], kinds={"image": "live"})}
    monkeypatch.setattr(registry, "_registry", streams)
    assert ids(Q_CLUSTER=short) == ["moderation.W002"]


@pytest.mark.parametrize("bad", [
    {"FILE_DELIVERY": "s3"}, {"FILE_DELIVERY_EXPIRES": 0}, {"FILE_DELIVERY_EXPIRES": 86400},
    {"FILE_DELIVERY_LOCATIONS": {"relative/dir": "/x/"}},
    {"FILE_DELIVERY_LOCATIONS": {"/srv/evidence": "no-slash/"}},
    {"FILE_DELIVERY_LOCATIONS": ["/srv"]},
])
def test_bad_file_delivery(bad):
    assert ids(MODERATION=bad) == ["moderation.E022"]


def test_file_delivery_modes_are_accepted():
    for mode in ("proxy", "redirect", "x-accel-redirect", "x-sendfile"):
        assert ids(MODERATION={"FILE_DELIVERY": mode, "FILE_DELIVERY_LOCATIONS": {
            "/srv/evidence": "/_protected/evidence/"}}) == []


def test_evidence_inside_media_root_warns(settings):
    conf = {"EVIDENCE_STORAGE": None, "EVIDENCE_ROOT": f"{settings.MEDIA_ROOT}/evidence"}
    assert ids(MODERATION=conf) == ["moderation.W001"]


def test_label_overrides_change_risk():
    from moderation.labels import risk_of

    assert risk_of("pt_qrCode", 90) == "medium"
    assert risk_of("pt_qrCode", 10) == "none"  # below the threshold
    assert risk_of("violent_explosion_lib", 100) == "high"
    assert risk_of("contraband_drug_tii", 80) == "high"
    assert risk_of("some_new_label", 1) == "medium"
    with override_settings(MODERATION={"LABELS": {"pt_qrCode": {"risk_level": "low"}}}):
        assert risk_of("pt_qrCode", 90) == "low"


def test_a_field_a_remote_provider_cannot_fetch(register):
    from moderation.checks import check_fetchable_fields
    from moderation.providers import get_provider

    guardrails = {"BACKEND": "moderation.providers.aliyun.guardrails.GuardrailsProvider",
                  "OPTIONS": {"ACCESS_KEY_ID": "id", "ACCESS_KEY_SECRET": "s"}}
    register(Photo, provider="g")
    try:
        with override_settings(MODERATION={"PROVIDERS": {"g": guardrails}}):
            get_provider.cache_clear()
            errors = check_fetchable_fields()
            assert [e.id for e in errors] == ["moderation.E012"]
            assert "testapp.Photo.image" in errors[0].msg
        with override_settings(MODERATION={"PROVIDERS": {"g": guardrails},
                                           "PUBLIC_BASE_URL": "https://example.com"}):
            get_provider.cache_clear()
            assert check_fetchable_fields() == []  # signed URLs of this site
    finally:
        get_provider.cache_clear()
    register(Photo)  # the default, local provider reads bytes: no URL needed
    assert check_fetchable_fields() == []
