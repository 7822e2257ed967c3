"""Prepare the demo: an admin account and posts made of the bundled sample media."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand

from moderation.models import Job

from ...models import Post

SAMPLES = Path(__file__).resolve().parents[3] / "sample_media"
SAMPLE_POSTS = [
    ("A quiet landscape", "benign.jpg"),
    ("Scan me", "qrcode.jpg"),
    ("Special offer", "ad_text.png"),
]


class Command(BaseCommand):
    help = "Create the demo admin account and sample posts; optionally wait for moderation."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--wait", type=float, default=0,
                            help="seconds to wait for the sample jobs to finish")

    def handle(self, *args, username, wait, **options):
        self._admin(username)
        created = self._posts()
        if wait:
            self._wait(created, wait)

    def _admin(self, username):
        User = get_user_model()
        password = secrets.token_urlsafe(9)
        user, _ = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True})
        user.set_password(password)
        user.save()
        self.stdout.write(self.style.SUCCESS(
            f"Admin account: username {username!r}, password {password!r}"))

    def _posts(self) -> list[Post]:
        created = []
        for title, filename in SAMPLE_POSTS:
            if Post.objects.filter(title=title).exists():
                continue
            data = (SAMPLES / filename).read_bytes()
            created.append(Post.objects.create(title=title,
                                               image=ContentFile(data, name=filename)))
        self.stdout.write(f"{len(created)} sample post(s) created and queued for moderation.")
        return created

    def _wait(self, posts, timeout):
        ids = [str(p.pk) for p in posts]
        jobs = Job.objects.filter(object_id__in=ids, content_type__model="post")
        deadline = time.monotonic() + timeout
        self.stdout.write("Waiting for the qcluster to moderate them ...")
        while jobs.unfinished().exists() and time.monotonic() < deadline:
            time.sleep(1)
        for job in jobs.order_by("pk"):
            outcome = job.suggestion or job.status
            labels = ", ".join(job.labels) or "-"
            error = f"  {job.error_message}" if job.error_message else ""
            self.stdout.write(f"  {job.content_object}: {outcome:<7} risk {job.risk_level:<6} "
                              f"labels {labels}{error}")
        if jobs.unfinished().exists():
            self.stdout.write(self.style.WARNING("Some jobs are still running; see the admin."))
