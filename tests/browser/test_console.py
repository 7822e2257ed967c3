"""The review console in a real browser: the queue, blurred imagery, the player following
the frame grid, keyboard decisions, feedback, and a refused user.

The items are real: tests/media/speech_ad.mp4 uploaded to the demo's Post.video and run
through the local engine (QR code and caption frames, a profane transcript slice), with a
policy that sends every risk to review.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEDIA = Path(__file__).resolve().parent.parent / "media"
PERMS = ("moderation.view_job", "moderation.review_job", "moderation.send_feedback")


@pytest.fixture
def review_items(settings):
    """Two pending video reviews (the older one first in the queue)."""
    from demo_project.blog.models import Post
    from moderation import pipeline
    from moderation.models import Job

    policy = {"high": "review", "medium": "review", "low": "pass", "none": "pass"}
    data = (MEDIA / "speech_ad.mp4").read_bytes()
    jobs = []
    with override_settings(MODERATION={**settings.MODERATION, "POLICY": policy}):
        for title in ("Summer sale", "Street interview"):
            post = Post.objects.create(title=title, video=ContentFile(data, "speech_ad.mp4"))
            job = Job.objects.get(object_id=str(post.pk), field_name="video")
            assert pipeline.process(job.pk) in ("done", "reused")
            job.refresh_from_db()
            assert job.review_state == "pending", job.decision
            jobs.append(job)
    return jobs


def test_moderator_reviews_with_the_keyboard(page, login, make_user, live_server, screenshot,
                                             review_items):
    from moderation.models import FeedbackRequest, Job

    first, second = review_items
    user = make_user("moderator", perms=PERMS)
    login(page, user)

    # the queue: both items, worst risk first, flagged thumbnails blurred until clicked
    page.goto(f"{live_server.url}/admin/moderation/job/queue/")
    rows = page.locator("#mod-queue-table tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).get_attribute("data-job") == str(first.pk)
    thumb = rows.nth(0).locator(".mod-thumb").first
    assert "mod-blurred" in thumb.get_attribute("class")
    page.wait_for_function("document.querySelector('.mod-strip img').complete")
    screenshot(page, "console-queue")
    thumb.click()  # reveals, stays on the queue
    assert "mod-blurred" not in thumb.get_attribute("class")
    assert page.url.endswith("/queue/")

    # "n" claims and opens the first item
    page.keyboard.press("n")
    page.wait_for_url(re.compile(rf"/admin/moderation/job/{first.pk}/review/$"))
    first.refresh_from_db()
    assert first.claimed_by_id == user.pk
    assert "You hold this item" in page.content()

    # the player follows the frame grid; a click reveals the frame too
    player = page.locator("#mod-player")
    page.wait_for_function("document.getElementById('mod-player').readyState >= 1")
    frame = page.locator(".mod-frame").nth(1)
    offset = float(frame.get_attribute("data-offset"))
    assert offset > 1 and "mod-blurred" in frame.locator(".mod-thumb").get_attribute("class")
    frame.click()
    assert "mod-blurred" not in frame.locator(".mod-thumb").get_attribute("class")
    page.wait_for_function(
        f"Math.abs(document.getElementById('mod-player').currentTime - {offset}) < 0.3")
    page.keyboard.press("j")  # the next frame
    following = float(page.locator(".mod-frame").nth(2).get_attribute("data-offset"))
    page.wait_for_function(
        f"Math.abs(document.getElementById('mod-player').currentTime - {following}) < 0.3")
    assert player.evaluate("v => v.paused")
    page.locator(".mod-media .mod-reveal").click()  # reveal the video itself
    assert "mod-blurred" not in page.locator(".mod-media").get_attribute("class")
    # the transcript, risk words highlighted
    assert page.locator(".mod-slice mark").count() >= 1
    screenshot(page, "console-job")

    # feedback on one frame
    frame_id = int(frame.get_attribute("data-frame"))
    frame.locator("input[name=frame_ids]").check()
    page.fill("#mod-feedback input[name=note]", "QR code of a known spammer")
    page.locator("#mod-feedback button[type=submit]").click()
    page.wait_for_selector(".mod-feedback-row")
    request = FeedbackRequest.objects.get(job=first)
    assert request.frame_ids == [frame_id] and request.created_by_id == user.pk
    assert request.decision == "approved"  # the first choice: no decision taken yet

    # "a" approves and the next item opens
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("a")
    page.wait_for_url(re.compile(rf"/admin/moderation/job/{second.pk}/review/$"))
    first.refresh_from_db()
    assert (first.decision, first.review_state, first.claimed_by_id) == (
        "approved", "resolved", None)
    assert first.events.filter(action="approved", actor=user).exists()
    assert Job.objects.get(pk=second.pk).claimed_by_id == user.pk

    # "r" rejects the last one; the queue is empty
    page.keyboard.press("r")
    page.wait_for_url(re.compile(r"/admin/moderation/job/queue/$"))
    assert "Nothing waiting for review" in page.content()
    second.refresh_from_db()
    assert second.decision == "rejected"


def test_staff_without_permission_is_refused(page, login, make_user, live_server,
                                             review_items):
    job = review_items[0]
    frame = job.frames.exclude(thumbnail="").first()
    login(page, make_user("staff"))
    for path in ("/admin/moderation/job/queue/", f"/admin/moderation/job/{job.pk}/review/",
                 f"/moderation/evidence/frame/{frame.pk}/",
                 f"/moderation/evidence/job/{job.pk}/media/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 403, path
    job.refresh_from_db()
    assert job.claimed_by is None


def test_an_open_page_keeps_its_claim(page, login, make_user, live_server, settings):
    """The page renews its claim every third of REVIEW_CLAIM_SECONDS while it is visible,
    so a moderator reading a long transcript does not lose the item to someone else."""
    from moderation.models import Job
    from tests.pipeline.test_review import make_job

    job = make_job("medium", frames=3, flagged_every=1)
    user = make_user("reader", perms=PERMS)
    login(page, user)
    with override_settings(MODERATION={**settings.MODERATION, "REVIEW_CLAIM_SECONDS": 3}):
        page.goto(f"{live_server.url}/admin/moderation/job/{job.pk}/review/")
        first = Job.objects.get(pk=job.pk).claimed_until
        assert first is not None
        page.wait_for_timeout(4500)  # longer than the claim itself
        renewed = Job.objects.get(pk=job.pk)
    assert renewed.claimed_by_id == user.pk and renewed.claimed_until > first
