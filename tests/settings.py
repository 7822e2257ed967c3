"""Test settings: the demo site plus a test app with integer, UUID and string keys.

The database and broker follow the same DEMO_DB / DEMO_BROKER switches as the demo.
Media and evidence go to a throw-away directory per test run.
"""

import json
import os
import tempfile

from demo_project.settings import *  # noqa: F403
from demo_project.settings import DATABASES, INSTALLED_APPS, MODERATION

TEST_ROOT = os.environ.get("MODERATION_TEST_ROOT") or tempfile.mkdtemp(prefix="moderation-tests-")
MEDIA_ROOT = os.path.join(TEST_ROOT, "media")
INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]
# Evidence through a STORAGES alias, so that tests overriding MODERATION still write
# their evidence under TEST_ROOT (MODERATION["EVIDENCE_STORAGE"] names this alias).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "moderation_evidence": {
        "BACKEND": "moderation.storage.PrivateFileSystemStorage",
        "OPTIONS": {"location": os.path.join(TEST_ROOT, "evidence")},
    },
}
# No public base URL unless a test sets one (the test runner runs with DEBUG off, where
# an http URL is an error, E004).
MODERATION = {**MODERATION, "EVIDENCE_ROOT": os.path.join(TEST_ROOT, "evidence"),
              "PUBLIC_BASE_URL": ""}
# A subprocess (a real qcluster) started by a test gets that test's MODERATION as JSON.
if os.environ.get("MODERATION_TEST_SETTINGS"):
    MODERATION = {**MODERATION, **json.loads(os.environ["MODERATION_TEST_SETTINGS"])}
# Our own queue name, so a test run never takes a demo's tasks or leaves its own behind.
# One queue per xdist worker: on the Redis broker the queue is shared by name, so two
# workers' tests would take or purge each other's tasks (the ORM broker's queue lives in
# each worker's own test database).
Q_CLUSTER = {**Q_CLUSTER,  # noqa: F405
             "name": "moderation-tests" + os.environ.get("PYTEST_XDIST_WORKER", "")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so that a real qcluster subprocess sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(TEST_ROOT, "test.sqlite3")}
