"""Database outage (issue 10, item 9): a transaction that fails leaves no orphaned file in
evidence storage, and the API (and the callback receiver) answer 503 with a clear message
and ``Retry-After`` instead of a 500 page.

The database fails for real: SQLite locked by a second connection (``BEGIN EXCLUSIVE``) with
a short busy timeout, the connection pointed at a database file that cannot be opened, or a
deferred foreign key that makes the commit itself fail.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection
from django.db.models.signals import post_save
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from moderation import pipeline
from moderation.models import Frame, FrameLabel, Job, ReviewEvent, Status
from moderation.providers import Label, Result, get_provider
from moderation.providers.result import Frame as ResultFrame
from moderation.providers.result import Slice
from moderation.storage import evidence_storage
from tests.conftest import png_bytes

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite",
                       reason="the outage is staged with SQLite's file locks and paths"),
]

MODERATE = "/api/moderation/moderate/"


def evidence_files() -> set[str]:
    root = Path(evidence_storage().path(""))
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@contextmanager
def locked_database(busy_ms: int = 200) -> Iterator[None]:
    """Another connection holds SQLite's write lock; ours gives up after ``busy_ms``."""
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
    other = sqlite3.connect(connection.settings_dict["NAME"], timeout=1,
                            isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()
        connection.close()  # the next query reconnects with the configured timeout


@contextmanager
def unreachable_database(tmp_path: Path) -> Iterator[None]:
    """Every new connection fails as when the database server is gone: the file lives in a
    directory that does not exist."""
    name = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = str(tmp_path / "gone" / "db.sqlite3")
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = name


def risky_result() -> Result:
    label = Label("pt_qrCode", 99.0, risk_level="high", service="test")
    frames = [ResultFrame(offset=float(i), risk_level="high", labels=[label],
                          image=b"\xff\xd8\xff\xe0 jpeg %d" % i) for i in range(3)]
    slices = [Slice(start=0, end=2, text="buy now", labels=[label], risk_level="high",
                    audio=b"RIFF fake wav")]
    return Result(status="done", risk_level="high", suggestion="block", labels=[label],
                  frames=frames, slices=slices)


def submitted_job() -> Job:
    return Job.objects.create(media_kind="video", provider="local", status=Status.SUBMITTED,
                              file_name="v.mp4")


# --- ingest: evidence written before the transaction ----------------------------------------


def test_ingest_under_a_locked_database_leaves_no_evidence_behind():
    job = submitted_job()
    before = evidence_files()
    with locked_database(), pytest.raises(OperationalError):
        pipeline.ingest(job, risky_result())
    assert evidence_files() == before
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED and not Frame.objects.filter(job=job).exists()
    # the same ingest with the database back writes the files it took back (test has teeth)
    pipeline.ingest(job, risky_result())
    written = evidence_files() - before
    assert len(written) == 4 and job.frames.exclude(thumbnail="").count() == 3


def test_ingest_whose_commit_fails_leaves_no_evidence_behind():
    """A deferred foreign key violated inside the ingest transaction: SQLite refuses the
    COMMIT itself, after every statement succeeded."""
    job = submitted_job()
    before = evidence_files()

    def break_the_commit(sender, instance, created, **kwargs):
        if created and instance.job_id == job.pk and instance.action == "completed":
            FrameLabel.objects.bulk_create([FrameLabel(frame_id=10**9, label="x", confidence=1.0)])

    post_save.connect(break_the_commit, sender=ReviewEvent)
    try:
        with pytest.raises(Exception) as raised:  # IntegrityError at commit
            pipeline.ingest(job, risky_result())
    finally:
        post_save.disconnect(break_the_commit, sender=ReviewEvent)
    assert "FOREIGN KEY" in str(raised.value).upper()
    assert evidence_files() == before
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED


def test_a_late_result_for_a_cancelled_job_leaves_no_evidence_behind():
    job = submitted_job()
    Job.objects.filter(pk=job.pk).update(status=Status.CANCELLED)
    before = evidence_files()
    pipeline.ingest(job, risky_result())
    assert evidence_files() == before


# --- the API -------------------------------------------------------------------------------


@pytest.fixture
def operator() -> APIClient:
    api = APIClient()
    api.force_authenticate(User.objects.create_superuser("op", password="pw"))
    return api


def upload() -> dict:
    return {"file": SimpleUploadedFile("pic.png", png_bytes(), content_type="image/png")}


def assert_unavailable(answer) -> None:
    assert answer.status_code == 503
    assert answer["Retry-After"] == "30"
    assert answer["Content-Type"].startswith("application/json")
    assert answer.json()["code"] == "database_unavailable"
    assert "database is unavailable" in answer.json()["detail"]


def test_moderate_upload_under_a_locked_database_is_503_and_leaves_no_file(operator):
    before = evidence_files()
    with locked_database():
        answer = operator.post(MODERATE, upload(), format="multipart")
    assert_unavailable(answer)
    assert evidence_files() == before and not Job.objects.exists()
    # with the database back, the same upload is stored (the file is really written)
    assert operator.post(MODERATE, upload(), format="multipart").status_code in (201, 202)
    assert len(evidence_files() - before) == 1


def test_moderate_upload_whose_commit_fails_leaves_no_file(operator):
    before = evidence_files()

    def break_the_commit(sender, instance, created, **kwargs):
        if created and instance.action == "created":
            FrameLabel.objects.bulk_create([FrameLabel(frame_id=10**9, label="x", confidence=1.0)])

    post_save.connect(break_the_commit, sender=ReviewEvent)
    try:
        with pytest.raises(Exception, match=r"(?i)foreign key"):
            operator.post(MODERATE, upload(), format="multipart")
    finally:
        post_save.disconnect(break_the_commit, sender=ReviewEvent)
    assert evidence_files() == before and not Job.objects.exists()


def test_moderate_runs_its_own_transaction_under_atomic_requests(operator):
    """Under ATOMIC_REQUESTS the view's commit would otherwise happen after it returned,
    out of reach of its cleanup: the view opts out and commits inside it."""
    connection.settings_dict["ATOMIC_REQUESTS"] = True
    try:
        test_moderate_upload_whose_commit_fails_leaves_no_file(operator)
    finally:
        connection.settings_dict["ATOMIC_REQUESTS"] = False


@pytest.mark.parametrize("path", ["/api/moderation/jobs/", "/api/moderation/stats/labels/",
                                  "/api/moderation/library/"])
def test_reads_with_the_database_unreachable_are_503(operator, tmp_path, path):
    with unreachable_database(tmp_path):
        answer = operator.get(path)
    assert_unavailable(answer)
    assert operator.get(path).status_code == 200  # and fine once it is back


def test_moderate_with_the_database_unreachable_is_503_without_a_file(operator, tmp_path):
    before = evidence_files()
    with unreachable_database(tmp_path):
        answer = operator.post(MODERATE, upload(), format="multipart")
    assert_unavailable(answer)
    assert evidence_files() == before


def test_a_callback_with_the_database_unreachable_asks_for_a_retry(tmp_path):
    from tests.providers.aliyun.test_aliyun_callbacks import ALIAS, provider_settings

    content = '{"TaskId":"vi_f_x","DataId":"d"}'
    with override_settings(MODERATION=provider_settings()):
        get_provider.cache_clear()
        with unreachable_database(tmp_path):
            answer = Client().post(reverse("moderation:callback", args=[ALIAS]),
                                   {"checksum": "ab", "content": content})
    get_provider.cache_clear()
    assert answer.status_code == 503 and answer["Retry-After"] == "30"
    assert answer.content == b"database unavailable"
