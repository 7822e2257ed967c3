"""The provider contract, proven by a provider a site would write (tests/site_provider.py):
its own callback format (JSON + HMAC header) through the real callback view, its own
system check in ``manage.py check``, and capability flags the pipeline enforces."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, override_settings
from django.urls import reverse

import moderation
from moderation.models import Job, Status
from moderation.providers import get_provider
from moderation.testing import run_pending_jobs
from tests import site_provider
from tests.conftest import png_bytes
from tests.site_provider import SIGNATURE_HEADER, sign

ALIAS, SECRET = "acme", "acme-secret-0123456789"
BACKEND = "tests.site_provider.AcmeProvider"


def acme_settings(secret: str = SECRET, **extra) -> dict:
    return {"PROVIDERS": {ALIAS: {"BACKEND": BACKEND, "OPTIONS": {"SECRET": secret}}},
            "DEFAULT_PROVIDER": ALIAS, **extra}


@pytest.fixture
def acme():
    site_provider.SUBMITTED.clear()
    with override_settings(MODERATION=acme_settings(
            CALLBACK_BASE_URL="https://site.example")):
        get_provider.cache_clear()
        yield
    get_provider.cache_clear()


def submitted_job() -> Job:
    """An image moderated through Acme, submitted: in progress at the provider."""
    job = moderation.moderate(png_bytes(), name="pic.png", provider=ALIAS)
    run_pending_jobs()
    job.refresh_from_db()
    return job


def post(body: dict, signature: str | None = None, secret: str = SECRET):
    data = json.dumps(body).encode()
    headers = {SIGNATURE_HEADER: signature if signature is not None else sign(secret, data)}
    return Client().post(reverse("moderation:callback", args=[ALIAS]), data=data,
                         content_type="application/json", headers=headers)


def verdict(job: Job, risk: str = "high") -> dict:
    return {"task": job.provider_task_id, "seed": job.seed, "state": "finished",
            "labels": [{"name": "pornographic_adultContent", "score": 97.5, "risk": risk}]}


@pytest.mark.django_db
def test_submit_then_its_own_signed_callback_finishes_the_job(acme):
    job = submitted_job()
    assert job.status == Status.IN_PROGRESS and job.provider_task_id == f"acme-{job.data_id}"
    task_id, seed, callback_url = site_provider.SUBMITTED[0]
    assert seed == job.seed
    assert callback_url == "https://site.example" + reverse("moderation:callback",
                                                            args=[ALIAS])

    response = post(verdict(job))

    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == Status.DONE
    assert job.risk_level == "high" and job.suggestion == "block"
    assert "pornographic_adultContent" in json.dumps(job.result)


@pytest.mark.django_db
def test_a_bad_signature_is_refused_and_changes_nothing(acme):
    job = submitted_job()
    assert post(verdict(job), signature="0" * 64).status_code == 403
    assert post(verdict(job), secret="someone-elses-secret").status_code == 403
    forged_seed = {**verdict(job), "seed": "guessed"}
    assert post(forged_seed).status_code == 403
    job.refresh_from_db()
    assert job.status == Status.IN_PROGRESS and not job.result


@pytest.mark.django_db
def test_its_own_format_is_read_by_its_hook_not_refused_as_a_form(acme):
    job = submitted_job()
    url = reverse("moderation:callback", args=[ALIAS])
    # Not JSON: the provider's read_callback refuses it (400), the view adds no rule.
    assert Client().post(url, data=b"checksum=x&content=y",
                         content_type="application/x-www-form-urlencoded").status_code == 400
    assert post({"task": "acme-unknown", "seed": job.seed, "state": "finished"}
                ).status_code == 404
    # Verified but not shaped like a result: its parser refuses it (400), nothing stored.
    assert post({**verdict(job), "state": "exploded"}).status_code == 400
    job.refresh_from_db()
    assert job.status == Status.IN_PROGRESS
    # A verified answer that is no verdict: recorded like a worker would, 200.
    assert post({**verdict(job), "state": "failed"}).status_code == 200
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.error_code == "provider_failed"


@pytest.mark.django_db
def test_a_provider_without_the_callback_capability_gets_no_callbacks(scripted):
    url = reverse("moderation:callback", args=["scripted"])
    response = Client().post(url, data=b"{}", content_type="application/json")
    assert response.status_code == 404


@pytest.mark.django_db
def test_a_media_kind_it_does_not_declare_fails_the_job_visibly(acme):
    job = moderation.moderate(b"RIFF\x00\x00\x00\x00WAVEfmt ", name="talk.wav", kind="audio",
                              provider=ALIAS)
    run_pending_jobs()
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.error_code == "not_supported"
    assert site_provider.SUBMITTED == []


def check_output(moderation_settings: dict) -> str:
    out, err = StringIO(), StringIO()
    with override_settings(MODERATION=moderation_settings):
        try:
            call_command("check", stdout=out, stderr=err)
        except SystemCheckError as exc:
            return str(exc) + err.getvalue()
    return out.getvalue() + err.getvalue()


def test_its_own_system_check_appears_in_manage_py_check():
    weak = check_output(acme_settings(secret="short", CALLBACK_BASE_URL="https://site.example"))
    assert "acme.W001" in weak and "SECRET is shorter than 16" in weak
    # No Alibaba rule applies to it: no UID is needed for its callbacks.
    assert "moderation.E011" not in weak
    assert "acme.W001" not in check_output(acme_settings())
    missing = check_output(acme_settings(secret=""))
    assert "moderation.E003" in missing and "acme.W001" not in missing


BUILT_INS = ("moderation.providers.local.LocalProvider",
             "moderation.providers.aliyun.green.GreenProvider",
             "moderation.providers.aliyun.guardrails.GuardrailsProvider",
             "moderation.providers.aliyun.imm.ImmProvider",
             BACKEND)
#: a declared capability is only true if the hook serving it is implemented
HOOKS = {"live": ("stream",), "feedback": ("feedback",),
         "callback": ("read_callback", "verify_callback", "parse_callback")}


@pytest.mark.parametrize("path", BUILT_INS)
def test_capability_flags_match_the_hooks_implemented(path):
    from django.utils.module_loading import import_string

    from moderation.providers import Provider

    cls = import_string(path)
    for capability, hooks in HOOKS.items():
        implemented = all(getattr(cls, hook) is not getattr(Provider, hook) for hook in hooks)
        if capability in cls.capabilities:
            assert implemented, f"{path} declares {capability} without {hooks}"
        else:
            assert not implemented, f"{path} implements {capability} but does not declare it"
    assert set(cls.capabilities) <= {"image", "video", "frames", "live", "audio", "feedback",
                                     "callback", "sync"}


@pytest.mark.django_db
def test_the_policy_is_applied_once_and_stored_with_the_result(acme):
    """Providers return findings; the pipeline's suggestion (here the site's POLICY, high ->
    review) is the job's and the stored normalized result's alike."""
    policy = acme_settings(POLICY={"none": "pass", "low": "pass", "medium": "review",
                                   "high": "review"})
    with override_settings(MODERATION=policy):
        get_provider.cache_clear()
        job = submitted_job()
        assert post(verdict(job)).status_code == 200
    job.refresh_from_db()
    assert job.risk_level == "high"
    assert job.suggestion == "review" and job.result["suggestion"] == "review"
    assert job.result["risk_level"] == "high"


@pytest.mark.django_db
def test_a_provider_without_callbacks_is_given_no_callback_url(scripted):
    from moderation.testing import scripted_result

    scripted.script = [scripted_result("none")]
    with override_settings(MODERATION={**settings_of_scripted(),
                                       "CALLBACK_BASE_URL": "https://site.example"}):
        job = moderation.moderate(png_bytes(), name="pic.png", provider="scripted")
        run_pending_jobs()
    job.refresh_from_db()
    assert job.status == Status.DONE
    (_, _, _, request), = scripted.calls
    assert request.callback_url == "" and request.seed == job.seed


def settings_of_scripted() -> dict:
    from django.conf import settings

    return dict(settings.MODERATION)
