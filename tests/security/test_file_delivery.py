"""FILE_DELIVERY: evidence and originals handed to the storage or the web server instead of
streamed through Django, after the same permission check (issue 15, item 7).

The object store here has no local path (like S3): ``proxy`` still streams from it,
``redirect`` sends a presigned URL whose signature, expiry and response headers the test
checks; ``x-accel-redirect``/``x-sendfile`` name the file for nginx/Apache.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.test import override_settings
from django.urls import reverse

from demo_project.blog.models import Post
from moderation.models import Frame, Job
from moderation.serving import presigned_url
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db

KEY = b"object-store-secret"
OBJECTS: dict[str, bytes] = {}


class ObjectStore(Storage):
    """An S3-like storage in memory: no ``path()``, and a ``url()`` that signs like
    django-storages' S3 backend (``parameters`` become response headers, ``expire``)."""

    def _save(self, name, content):
        OBJECTS[name] = content.read()
        return name

    def _open(self, name, mode="rb"):
        if name not in OBJECTS:
            raise FileNotFoundError(name)
        return ContentFile(OBJECTS[name], name=name)

    def exists(self, name):
        return name in OBJECTS

    def size(self, name):
        return len(OBJECTS[name])

    def delete(self, name):
        OBJECTS.pop(name, None)

    def url(self, name, parameters=None, expire=None):
        query = {**(parameters or {}), "Expires": str(int(time.time()) + int(expire or 3600))}
        signed = f"{name}?{urlencode(sorted(query.items()))}"
        query["Signature"] = hmac.new(KEY, signed.encode(), hashlib.sha256).hexdigest()
        return f"https://bucket.example/{name}?{urlencode(sorted(query.items()))}"


def verify(url: str) -> dict[str, str]:
    """The query of a URL ObjectStore signed, after checking signature and expiry."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    signature = query.pop("Signature")
    signed = f"{parts.path.lstrip('/')}?{urlencode(sorted(query.items()))}"
    expected = hmac.new(KEY, signed.encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert int(query["Expires"]) > time.time()
    return query


OBJECT_STORE = {**settings.STORAGES, "moderation_evidence": {
    "BACKEND": f"{__name__}.ObjectStore"}}


def _moderator() -> User:
    user = User.objects.create_user("mod", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_job"))
    return user


def _frame(name: str, data: bytes) -> Frame:
    post = Post.objects.create(title="t", video=ContentFile(b"x", name="v.mp4"))
    job = Job.objects.get(object_id=str(post.pk), field_name="video")
    return Frame.objects.create(job=job, thumbnail=ContentFile(data, name=name))


def _settings(**delivery):
    return {**settings.MODERATION, **delivery}


@pytest.fixture
def object_store():
    OBJECTS.clear()
    with override_settings(STORAGES=OBJECT_STORE):
        yield
    OBJECTS.clear()


def test_proxy_streams_from_a_storage_without_a_local_path(client, object_store):
    frame = _frame("t.png", png_bytes())
    with pytest.raises(NotImplementedError):
        frame.thumbnail.path  # noqa: B018 - no local file behind it
    client.force_login(_moderator())
    response = client.get(reverse("moderation:frame-thumbnail", args=[frame.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == OBJECTS[frame.thumbnail.name]
    assert response["Content-Type"] == "image/png"


@pytest.mark.parametrize(("name", "data", "ctype", "inline"), [
    ("t.png", png_bytes(), "image/png", True),
    ("page.html", b"<script>alert(1)</script>", "application/octet-stream", False),
])
def test_redirect_sends_a_short_lived_presigned_url(client, object_store, name, data, ctype,
                                                    inline):
    frame = _frame(name, data)
    client.force_login(_moderator())
    with override_settings(MODERATION=_settings(FILE_DELIVERY="redirect",
                                                FILE_DELIVERY_EXPIRES=45)):
        before = time.time()
        response = client.get(reverse("moderation:frame-thumbnail", args=[frame.pk]))
    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    location = response["Location"]
    assert location.startswith("https://bucket.example/")
    query = verify(location)
    assert before + 44 <= int(query["Expires"]) <= time.time() + 46
    # the object store answers with the allow-listed type and disposition
    assert query["ResponseContentType"] == ctype
    assert query["ResponseContentDisposition"].startswith("inline" if inline else "attachment")


def test_redirect_still_checks_permission_first(client, object_store):
    frame = _frame("t.png", png_bytes())
    url = reverse("moderation:frame-thumbnail", args=[frame.pk])
    with override_settings(MODERATION=_settings(FILE_DELIVERY="redirect")):
        anonymous = client.get(url)
        client.force_login(User.objects.create_user("nobody", password="pw"))
        refused = client.get(url)
    assert anonymous.status_code == 302 and "bucket.example" not in anonymous["Location"]
    assert refused.status_code == 403


def test_redirect_of_a_missing_object_is_404(client, object_store):
    frame = _frame("t.png", png_bytes())
    OBJECTS.clear()
    client.force_login(_moderator())
    with override_settings(MODERATION=_settings(FILE_DELIVERY="redirect")):
        response = client.get(reverse("moderation:frame-thumbnail", args=[frame.pk]))
    assert response.status_code == 404


def test_redirect_falls_back_to_proxy_for_a_storage_that_cannot_sign(client):
    """FileSystemStorage's url() is public and unsigned: never redirected to."""
    frame = _frame("t.png", png_bytes())
    client.force_login(_moderator())
    with override_settings(MODERATION=_settings(FILE_DELIVERY="redirect")):
        response = client.get(reverse("moderation:frame-thumbnail", args=[frame.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == png_bytes()


def test_a_storage_may_offer_its_own_presigned_url_hook():
    class Hooked(ObjectStore):
        def presigned_url(self, name, *, expires, content_type, disposition):
            return f"https://cdn.example/{name}?t={expires}&ct={content_type}&d={disposition}"

    url = presigned_url(Hooked(), "a/b.svg", filename="b.svg")
    assert url == ("https://cdn.example/a/b.svg?t=60&ct=application/octet-stream"
                   '&d=attachment; filename="b.svg"')


def _media_job(client, name="clip.mp4", data=b"\x00\x00\x00\x18ftypmp42"):
    client.force_login(_moderator())
    post = Post.objects.create(title="t", video=ContentFile(data, name=name))
    job = Job.objects.get(object_id=str(post.pk), field_name="video")
    return post, reverse("moderation:job-media", args=[job.pk])


def test_x_accel_redirect_names_the_internal_location(client):
    post, url = _media_job(client)
    locations = {settings.MEDIA_ROOT: "/_protected/media/"}
    with override_settings(MODERATION=_settings(FILE_DELIVERY="x-accel-redirect",
                                                FILE_DELIVERY_LOCATIONS=locations)):
        response = client.get(url)
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/_protected/media/{post.video.name}"
    # nginx keeps the upstream's headers: the inert type and policy still apply
    assert response["Content-Type"] == "video/mp4"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"].startswith("sandbox")


def test_x_accel_redirect_without_a_mapping_is_sent_through_django(client):
    post, url = _media_job(client)
    with override_settings(MODERATION=_settings(FILE_DELIVERY="x-accel-redirect",
                                                FILE_DELIVERY_LOCATIONS={"/elsewhere": "/x/"})):
        response = client.get(url)
    assert response.status_code == 200 and "X-Accel-Redirect" not in response
    assert b"".join(response.streaming_content) == post.video.open("rb").read()


def test_x_sendfile_names_the_real_path(client):
    post, url = _media_job(client)
    with override_settings(MODERATION=_settings(FILE_DELIVERY="x-sendfile")):
        response = client.get(url)
    assert response.status_code == 200 and response.content == b""
    assert response["X-Sendfile"] == os.path.realpath(post.video.path)
    assert response["Content-Type"] == "video/mp4"


def test_x_sendfile_on_a_storage_without_paths_is_sent_through_django(client, object_store):
    frame = _frame("t.png", png_bytes())
    client.force_login(_moderator())
    with override_settings(MODERATION=_settings(FILE_DELIVERY="x-sendfile")):
        response = client.get(reverse("moderation:frame-thumbnail", args=[frame.pk]))
    assert response.status_code == 200 and "X-Sendfile" not in response
    assert b"".join(response.streaming_content) == io.BytesIO(png_bytes()).getvalue()
