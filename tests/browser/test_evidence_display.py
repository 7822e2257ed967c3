"""Evidence display in Chromium (issue 14, item 3): the job list fits a 1366 px screen
without scrolling sideways, flagged thumbnails are blurred there and on the job page until
the wellness preference says otherwise, a text-only frame shows its OCR boxes with only
the flagged text blurred, and the frames of a sequence are grouped into segments.

The jobs are real: the demo's sample images through the local engine (RapidOCR finds the
contact details of ad_text.png; OpenCV the QR code), as an image and as a frame sequence.
The screenshots are docs/img/admin-evidence.png and admin-jobs.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAMPLES = Path(__file__).resolve().parents[2] / "demo_project" / "sample_media"
PERMS = ("moderation.view_job", "moderation.review_job")
REVIEW_ALL = {"high": "review", "medium": "review", "low": "pass", "none": "pass"}


@pytest.fixture
def evidence_jobs(settings):
    """Blog posts with long titles (one with a QR code), then an ad-hoc image with contact
    details in text and a 16-frame sequence: 8 frames of that text, 4 clean, 4 QR codes."""
    from demo_project.blog.models import Post
    from moderation import pipeline
    from moderation.models import Job

    text, clean, qr = ((SAMPLES / name).read_bytes()
                       for name in ("ad_text.png", "benign.jpg", "qrcode.jpg"))
    with override_settings(MODERATION={**settings.MODERATION, "POLICY": REVIEW_ALL}):
        for n in range(3):  # jobs of a model field (one a QR code), long titles
            Post.objects.create(title=f"A rather long blog post title number {n} " * 2,
                                image=ContentFile(qr if n == 1 else clean, f"holiday-{n}.jpg"))
        image = pipeline.create_adhoc_job(name="ad_text.png", content=text, provider="local")
        frames = [(float(t), text) for t in range(8)] + [
            (float(t), clean) for t in range(8, 12)] + [(float(t), qr) for t in range(12, 16)]
        sequence = pipeline.create_adhoc_job(frames=frames, provider="local")
        for job in Job.objects.all():
            assert pipeline.process(job.pk) in ("done", "reused")
    return Job.objects.get(pk=image.pk), Job.objects.get(pk=sequence.pk)


def computed(locator, prop: str) -> str:
    return locator.evaluate(f"el => getComputedStyle(el).{prop}")


def test_evidence_on_the_job_list_and_page(page, login, make_user, live_server, screenshot,
                                           evidence_jobs):
    image, sequence = evidence_jobs
    assert image.risk_level != "none" and image.content_type_id is None
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, make_user("moderator", perms=PERMS))

    # the list: fits 1366 px, flagged thumbnails blurred, names with codes on hover
    page.goto(f"{live_server.url}/admin/moderation/job/")
    widths = page.evaluate("""() => {
        const results = document.querySelector('#changelist .results');
        return {page: document.documentElement.scrollWidth, view: window.innerWidth,
                results: results.scrollWidth, box: results.clientWidth};
    }""")
    columns = page.evaluate("""() => [...document.querySelectorAll('#result_list thead th')]
        .map(th => [th.className.split(' ').pop(), Math.round(th.offsetWidth)])""")
    assert widths["page"] <= widths["view"] and widths["results"] <= widths["box"], (
        widths, columns)
    screenshot(page, "admin-jobs", full_page=False)  # docs/img/admin-jobs.png
    row = page.locator(f"#result_list tr:has(a[href='/admin/moderation/job/{image.pk}/change/'])")
    thumb = row.locator("td.field-thumb .mod-thumb")
    assert "blur" in computed(thumb.locator("img"), "filter")
    label = row.locator("td.field-label_text .mod-label").first
    assert label.get_attribute("title") == "pt_toDirectContact_tii"
    assert label.inner_text() == "text with contact details or traffic diversion"
    assert row.locator("td.field-object_column").inner_text().split("\n") == [
        "ad-hoc upload", "image"]
    thumb.click()  # the first click reveals, stays on the list
    assert "mod-blurred" not in thumb.get_attribute("class") and page.url.endswith("/job/")
    assert computed(thumb.locator("img"), "filter") == "none"

    # the image's page: OCR boxes drawn, only the flagged text blurred (text-only frame)
    page.goto(f"{live_server.url}/admin/moderation/job/{image.pk}/change/")
    evidence = page.locator(".mod-seg-item .mod-evidence").first
    assert "mod-text-only" in evidence.get_attribute("class")
    page.wait_for_function("document.querySelector('.mod-seg-item img').complete")
    picture = evidence.locator("img").bounding_box()
    flagged = evidence.locator(".mod-box-flagged")
    assert flagged.count() >= 1 and evidence.locator(".mod-box").count() >= 2
    box = flagged.first.bounding_box()
    assert box["width"] > 10 and box["height"] > 3
    assert picture["x"] <= box["x"] and box["x"] + box["width"] <= picture["x"] + picture[
        "width"] + 1
    assert "blur" in computed(flagged.first, "backdropFilter")
    assert "blur" not in computed(evidence.locator("img"), "filter")  # the rest stays sharp

    # the sequence: two segments on the timeline (8 text frames, 4 QR frames), expandable
    page.goto(f"{live_server.url}/admin/moderation/job/{sequence.pk}/change/")
    items = page.locator(".mod-seg-item")
    assert [items.nth(i).get_attribute("data-count") for i in range(items.count())] == [
        "8", "4"]
    assert page.locator(".mod-timeline .mod-seg").count() == 2
    qr = items.nth(1).locator(".mod-evidence").first
    assert "mod-text-only" not in qr.get_attribute("class")
    assert "blur" in computed(qr.locator("img"), "filter")  # a QR code: the whole picture
    items.nth(0).locator("details summary").click()
    assert items.nth(0).locator(".mod-seg-frames figure").count() == 7
    page.evaluate("document.querySelectorAll('img[loading=lazy]')"
                  ".forEach(img => { img.loading = 'eager'; })")  # for the screenshot
    page.wait_for_function("[...document.querySelectorAll('.mod-seg-item img')]"
                           ".every(img => img.complete || !img.offsetParent)")
    page.evaluate("window.scrollTo(0, 0)")
    shot = screenshot(page, "admin-evidence", full_page=False)
    assert shot.stat().st_size > 10_000

    # one preference for every page: reveal flagged imagery, then the blur is gone
    page.locator(".mod-reveal-pref").first.click()
    page.wait_for_url(f"**/job/{sequence.pk}/change/")
    assert page.locator(".mod-blurred").count() == 0
    assert computed(page.locator(".mod-seg-item img").first, "filter") == "none"
    page.goto(f"{live_server.url}/admin/moderation/job/")
    assert page.locator("#result_list .mod-blurred").count() == 0
    page.goto(f"{live_server.url}/admin/moderation/job/queue/")
    assert page.locator(".mod-blurred").count() == 0
    page.locator(".mod-reveal-pref").first.click()  # and back: blurred again everywhere
    page.goto(f"{live_server.url}/admin/moderation/job/")
    assert page.locator("#result_list .mod-blurred").count() == 3  # the flagged jobs
