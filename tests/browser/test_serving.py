"""A logged-in moderator opens hostile uploads directly in Chromium: no script runs.

The payloads try three things a script could do with the moderator's session: change
``document.title``, set a cookie on the site, and call a loopback "beacon" server. A control
run serves the same page as plain text/html from the beacon itself, so the test proves it
would see the script if it ran. Real media opened the same way still display: the sandboxing
CSP does not break direct viewing, nor (tests/browser/test_console.py) the console's players.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from tests.conftest import png_bytes, serving

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEDIA = Path(__file__).resolve().parent.parent / "media"
PERMS = ("moderation.view_job",)


def _script(beacon: str, tag: str) -> str:
    return (f"document.title='pwned-{tag}';document.cookie='pwned={tag}; path=/';"
            f"fetch('{beacon}/fetch-{tag}').catch(()=>{{}});"
            f"new Image().src='{beacon}/img-{tag}';")


def _html(beacon: str, tag: str) -> bytes:
    return f"<!doctype html><title>t</title><script>{_script(beacon, tag)}</script>".encode()


def _svg(beacon: str, tag: str) -> bytes:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20">'
            f"<script>{_script(beacon, tag)}</script><rect width='9' height='9'/></svg>").encode()


@pytest.fixture(autouse=True)
def app_serves_media(monkeypatch):
    """Django's live server serves MEDIA_ROOT itself under MEDIA_URL (a test-server
    convenience, not the demo): hand /media/ back to the URLconf, where the demo mounts
    ``moderation.views.media.visible_media``."""
    from django.test.testcases import _MediaFilesHandler

    monkeypatch.setattr(_MediaFilesHandler, "_should_handle", lambda self, path: False)


@pytest.fixture
def beacon(tmp_path):
    """A loopback server recording every path asked of it (yields its URL and the list)."""
    hits: list[str] = []
    lock = threading.Lock()

    def record(path: str) -> None:
        with lock:
            hits.append(path)

    with serving(tmp_path, on_request=record) as url:
        yield url, hits, tmp_path


def _open(page, url: str):
    """Navigate to ``url``: (the download, None) for an attachment, else (None, status)."""
    from playwright.sync_api import Error

    shown = None
    try:
        with page.expect_download(timeout=5_000) as info:
            try:
                shown = page.goto(url)
            except Error as exc:  # "Download is starting": the navigation became a download
                assert "download" in str(exc).lower(), exc
        return info.value, None
    except Error:  # no download: the page was displayed
        return None, shown.status if shown else None


def _post(name: str, data: bytes):
    from demo_project.blog.models import Post
    from moderation.models import Job

    post = Post.objects.create(title=name, video=ContentFile(data, name=name))
    return post, Job.objects.get(object_id=str(post.pk), field_name="video")


def test_control_the_harness_sees_a_script_that_runs(page, beacon):
    url, hits, root = beacon
    (root / "control.html").write_bytes(_html(url, "control"))
    page.goto(f"{url}/control.html")
    page.wait_for_function("document.title === 'pwned-control'")
    page.wait_for_timeout(500)
    assert any(hit.startswith("/fetch-control") for hit in hits), hits


@pytest.mark.parametrize(("name", "payload", "download"), [
    ("page.html", _html, True),
    ("drawing.svg", _svg, True),
    ("clip.mp4", _html, False),  # HTML lying about its type: shown (as a broken video), inert
    ("payload.bin", _html, True),
])
def test_moderator_opening_an_upload_runs_no_script(page, login, make_user, live_server,
                                                    beacon, name, payload, download):
    url, hits, _root = beacon
    login(page, make_user("moderator", perms=PERMS))
    tag = name.replace(".", "-")
    post, job = _post(name, payload(url, tag))
    targets = [reverse("moderation:job-media", args=[job.pk]), post.video.url]
    for target in targets:
        got, status = _open(page, f"{live_server.url}{target}")
        assert (got is not None) is download, target
        if got is None:
            assert status == 200 and "pwned" not in page.title()
    page.wait_for_timeout(800)  # time for any beacon request to land
    page.goto(f"{live_server.url}/admin/")
    assert "pwned" not in page.evaluate("document.cookie")
    assert not [c for c in page.context.cookies() if c["name"] == "pwned"]
    assert not hits, hits


def test_real_media_still_display_when_opened_directly(page, login, make_user, live_server):
    login(page, make_user("moderator", perms=PERMS))
    _, image_job = _post("photo.png", png_bytes(size=(64, 48)))
    page.goto(f"{live_server.url}{reverse('moderation:job-media', args=[image_job.pk])}")
    assert page.evaluate("document.images.length && document.images[0].naturalWidth") == 64
    _, video_job = _post("clean.mp4", (MEDIA / "clean.mp4").read_bytes())
    page.goto(f"{live_server.url}{reverse('moderation:job-media', args=[video_job.pk])}")
    page.wait_for_function("document.querySelector('video') && "
                           "document.querySelector('video').readyState >= 1")
    assert page.evaluate("document.querySelector('video').duration") > 0
