"""The REST API needs only DRF: with drf-spectacular not installed (an import of it fails),
``include("moderation.api.urls")`` works and the endpoints answer (issue 15, item 1)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

SCRIPT = textwrap.dedent(
    """
    import sys

    class Absent:
        # an import hook that makes drf_spectacular look uninstalled
        def find_spec(self, name, path=None, target=None):
            if name == "drf_spectacular" or name.startswith("drf_spectacular."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Absent())

    import django
    from django.conf import settings
    from django.urls import include, path

    settings.configure(
        DEBUG=False,
        SECRET_KEY="x" * 50,
        ALLOWED_HOSTS=["testserver"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=[
            "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
            "django.contrib.messages", "django.contrib.admin", "rest_framework", "django_q",
            "moderation",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        ROOT_URLCONF=__name__,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        Q_CLUSTER={"name": "nospec", "orm": "default", "sync": True},
        USE_TZ=True,
    )
    django.setup()
    urlpatterns = [path("api/", include("moderation.api.urls"))]

    from django.core.management import call_command
    call_command("migrate", verbosity=0, run_syncdb=True)

    from django.contrib.auth.models import User
    from django.test import Client

    import moderation.api.schema as schema
    assert not schema.SCHEMA_AVAILABLE
    assert "drf_spectacular" not in sys.modules

    admin = User.objects.create_superuser("admin", "a@example.com", "pw")
    client = Client()
    assert client.get("/api/jobs/").status_code == 403  # not logged in: refused, not a crash
    client.force_login(admin)
    answer = client.get("/api/jobs/?status=done&created_after=2026-01-01T00:00:00Z")
    assert answer.status_code == 200, answer.content
    assert answer.json()["results"] == []
    assert client.get("/api/stats/labels/").status_code == 200
    print("api-ok")
    """
)


def test_api_urls_work_without_drf_spectacular():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "api-ok" in done.stdout
