"""Nothing served to a moderator or the public can run as a page; unapproved uploads are not
public media.

Every view that answers with stored bytes (a job's original, frame thumbnails, audio clips,
the provider-facing signed URL, the visibility-checked media view) is asked for hostile
files: HTML, SVG with script, HTML named ``.mp4`` and an unknown extension. Only
allow-listed media types are sent inline; all carry nosniff and a sandboxing CSP.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import override_settings
from django.urls import reverse

from demo_project.blog.models import Post
from moderation import media_url, pipeline
from moderation.models import AudioSlice, Frame, Job
from moderation.serving import media_type, security_policy
from moderation.views.media import is_plain_storage_name
from tests.conftest import png_bytes
from tests.providers import result

pytestmark = pytest.mark.django_db

HTML = b"<!doctype html><script>document.title='pwned'</script><h1>hello</h1>"
SVG = (b'<svg xmlns="http://www.w3.org/2000/svg"><script>document.title="pwned"</script>'
       b'<rect width="10" height="10"/></svg>')
# name, bytes, the type expected, inline?
HOSTILE = [
    ("page.html", HTML, "application/octet-stream", False),
    ("drawing.svg", SVG, "application/octet-stream", False),
    ("clip.mp4", HTML, "video/mp4", True),  # lies about its type: nosniff keeps it a video
    ("payload.xyz", HTML, "application/octet-stream", False),
]


def _moderator() -> User:
    user = User.objects.create_user("mod", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_job"))
    return user


def _post(name: str, data: bytes) -> Post:
    return Post.objects.create(title="t", video=ContentFile(data, name=name))


def _job(post: Post) -> Job:
    return Job.objects.get(object_id=str(post.pk), field_name="video")


def _url_job_media(name, data):
    return reverse("moderation:job-media", args=[_job(_post(name, data)).pk])


def _url_frame(name, data):
    frame = Frame.objects.create(job=_job(_post("v.mp4", b"x")),
                                 thumbnail=ContentFile(data, name=name))
    return reverse("moderation:frame-thumbnail", args=[frame.pk])


def _url_clip(name, data):
    piece = AudioSlice.objects.create(job=_job(_post("v.mp4", b"x")), start=0, end=1,
                                      clip=ContentFile(data, name=name))
    return reverse("moderation:slice-clip", args=[piece.pk])


def _url_signed(name, data):
    stored = default_storage.save(f"uploads/{name}", ContentFile(data))
    with override_settings(MODERATION={"PUBLIC_BASE_URL": "https://site.example"}):
        return urlsplit(media_url.public_url_for(default_storage, stored)).path


def _url_visible(name, data):
    return _post(name, data).video.url


VIEWS = {"job_media": _url_job_media, "frame_thumbnail": _url_frame, "slice_clip": _url_clip,
         "signed_media": _url_signed, "visible_media": _url_visible}


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize(("name", "data", "expected", "inline"), HOSTILE,
                         ids=[case[0] for case in HOSTILE])
def test_served_files_never_render_as_pages(client, view, name, data, expected, inline):
    client.force_login(_moderator())
    response = client.get(VIEWS[view](name, data))
    assert response.status_code == 200
    assert _body(response) == data  # served unchanged, only labelled safely
    assert response["Content-Type"] == expected
    disposition = response["Content-Disposition"]
    assert disposition.startswith("inline" if inline else "attachment"), disposition
    assert response["X-Content-Type-Options"] == "nosniff"
    policy = response["Content-Security-Policy"]
    assert policy == security_policy(None if not inline else expected)
    assert policy.startswith("sandbox") and "allow-scripts" not in policy
    assert "default-src 'none'" in policy
    assert response["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize("view", VIEWS)
def test_a_real_image_is_still_shown_inline(client, view):
    client.force_login(_moderator())
    data = png_bytes()
    response = client.get(VIEWS[view]("photo.PNG", data))
    assert response.status_code == 200 and _body(response) == data
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline")


def test_range_answers_carry_the_same_headers(client):
    client.force_login(_moderator())
    url = _url_job_media("page.html", HTML)
    part = client.get(url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == HTML[:10]
    assert part["Content-Type"] == "application/octet-stream"
    assert part["Content-Disposition"].startswith("attachment")
    assert part["X-Content-Type-Options"] == "nosniff"
    assert part["Content-Security-Policy"] == security_policy(None)


@pytest.mark.parametrize(("name", "expected"), [
    ("a/b.jpg", "image/jpeg"), ("B.JPEG", "image/jpeg"), ("x.webp", "image/webp"),
    ("x.gif", "image/gif"), ("x.avif", "image/avif"), ("x.webm", "video/webm"),
    ("x.mov", "video/quicktime"), ("x.mkv", "video/x-matroska"), ("x.ts", "video/mp2t"),
    ("x.mp3", "audio/mpeg"), ("x.wav", "audio/wav"), ("x.flac", "audio/flac"),
    ("x.m4a", "audio/mp4"), ("x.ogg", "audio/ogg"),
    ("x.html", None), ("x.htm", None), ("x.svg", None), ("x.svgz", None), ("x.xml", None),
    ("x.xhtml", None), ("x.pdf", None), ("x.js", None), ("x.mjs", None), ("x.css", None),
    ("x.txt", None), ("x", None), ("x.jpg.html", None), ("x.html.", None),
])
def test_only_media_types_are_allow_listed(name, expected):
    assert media_type(name) == expected


# --- the demo's media: visible or moderator only ------------------------------------------


def _settle(post: Post, risk: str) -> None:
    job = _job(post)
    Job.objects.filter(pk=job.pk).update(status="in_progress")
    pipeline.ingest(job, result(risk, "nonLabel" if risk == "none" else "x_lib"))


@pytest.fixture
def outsider() -> User:
    return User.objects.create_user("outsider", password="pw", is_staff=True)


def test_pending_upload_is_not_public(client, outsider):
    post = _post("v.mp4", b"pending bytes")
    url = post.video.url
    assert url.startswith("/media/")
    assert client.get(url).status_code == 404
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(_moderator())
    response = client.get(url)
    assert response.status_code == 200 and _body(response) == b"pending bytes"


def test_approved_upload_is_public_and_blocked_is_not(client, outsider):
    shown, blocked = _post("ok.mp4", b"fine"), _post("bad.mp4", b"bad")
    _settle(shown, "none")
    _settle(blocked, "high")
    blocked.refresh_from_db()
    assert blocked.hidden
    response = client.get(shown.video.url)
    assert response.status_code == 200 and _body(response) == b"fine"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert client.get(blocked.video.url).status_code == 404
    client.force_login(outsider)
    assert client.get(blocked.video.url).status_code == 404
    client.force_login(_moderator())
    assert client.get(blocked.video.url).status_code == 200


def test_a_hidden_post_is_not_served_even_if_its_job_passed(client):
    post = _post("ok.mp4", b"fine")
    _settle(post, "none")
    Post.objects.filter(pk=post.pk).update(hidden=True)
    assert client.get(post.video.url).status_code == 404


def test_a_replaced_file_is_no_longer_served(client):
    post = _post("old.mp4", b"old")
    _settle(post, "none")
    old_url = post.video.url
    assert client.get(old_url).status_code == 200
    post.video = ContentFile(b"new", name="new.mp4")
    post.save()
    assert client.get(old_url).status_code == 404  # no object holds the old name any more
    assert client.get(post.video.url).status_code == 404  # the new one waits for moderation


def test_files_no_registered_field_holds_are_not_served(client):
    stored = default_storage.save("loose/secret.png", ContentFile(png_bytes()))
    client.force_login(_moderator())
    assert client.get(f"/media/{stored}").status_code == 404


@pytest.mark.parametrize("path", [
    "/media/../demo_project/settings.py",
    "/media/..%2F..%2Fdemo_project%2Fsettings.py",
    "/media/posts/%2E%2E/%2E%2E/manage.py",
    "/media//etc/passwd",
    "/media/%2Fetc%2Fpasswd",
    "/media/posts\\..\\..\\manage.py",
    "/media/posts/./x.mp4",
    "/media/x%00.mp4",
])
def test_path_traversal_is_refused(client, path):
    client.force_login(User.objects.create_superuser("root", password="pw"))
    assert client.get(path).status_code == 404


def test_traversal_is_refused_even_if_a_row_holds_that_name(client):
    post = _post("v.mp4", b"x")
    Post.objects.filter(pk=post.pk).update(video="../manage.py")
    client.force_login(_moderator())
    assert client.get("/media/../manage.py").status_code == 404
    assert client.get("/media/..%2Fmanage.py").status_code == 404


@pytest.mark.parametrize(("name", "plain"), [
    ("posts/a.mp4", True), ("a.mp4", True), ("", False), ("/a", False), ("a//b", False),
    ("a/../b", False), ("./a", False), ("a\\b", False), ("a\x00b", False), ("a/", False),
])
def test_plain_storage_names(name, plain):
    assert is_plain_storage_name(name) is plain


def test_only_the_players_keep_their_origin():
    for content_type in (None, "image/png", "image/gif"):
        assert "allow-same-origin" not in security_policy(content_type)
    for content_type in ("video/mp4", "audio/mpeg"):
        policy = security_policy(content_type)
        assert policy.startswith("sandbox allow-same-origin;") and "allow-scripts" not in policy


def test_non_ascii_names_round_trip_through_the_url(client):
    post = _post("été vidéo.mp4", b"accents")
    _settle(post, "none")
    assert "%C3%A9" in post.video.url
    response = client.get(post.video.url)
    assert response.status_code == 200 and _body(response) == b"accents"
