"""The review console in the admin: queue, job page, claims, decisions, bulk actions,
feedback, the original-media view, permissions and query counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from moderation import claims
from moderation.models import FeedbackRequest, Job, ModeratorPreference
from tests.pipeline.test_review import make_job, moderator, pending_photo_factory
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db

QUEUE = "admin:moderation_job_queue"


def review_url(job):
    return reverse("admin:moderation_job_review", args=[job.pk])


@pytest.fixture
def pending_photo(register, scripted, image_file):
    return pending_photo_factory(register, scripted, image_file)


@pytest.fixture
def alice():
    return moderator("alice", "view_job", "review_job")


@pytest.fixture
def bob():
    return moderator("bob", "view_job", "review_job")


# --- permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize("perms", [(), ("view_job",)])
def test_queue_refuses_staff_without_review_permission(client, perms):
    make_job()
    client.force_login(moderator("staff", *perms))
    assert client.get(reverse(QUEUE)).status_code == 403
    assert client.get(reverse("admin:moderation_job_queue_next")).status_code == 403


def test_queue_sends_anonymous_users_to_the_login(client):
    response = client.get(reverse(QUEUE))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_job_page_and_posts_refuse_users_without_permission(client):
    job = make_job(frames=3, flagged_every=1)
    client.force_login(moderator("staff"))
    assert client.get(review_url(job)).status_code == 403
    assert client.get(reverse("admin:moderation_job_raw", args=[job.pk])).status_code == 403
    assert client.get(reverse("moderation:job-media", args=[job.pk])).status_code == 403
    client.force_login(moderator("viewer", "view_job"))
    for name in ("decide", "skip", "release", "feedback"):
        url = reverse(f"admin:moderation_job_{name}", args=[job.pk])
        assert client.post(url, {"decision": "approve"}).status_code == 403, name
    job.refresh_from_db()
    assert job.review_state == "pending" and job.claimed_by is None


def test_viewer_sees_evidence_but_no_buttons_and_claims_nothing(client):
    job = make_job(frames=3, flagged_every=1)
    client.force_login(moderator("viewer", "view_job"))
    page = client.get(review_url(job))
    body = page.content.decode()
    assert page.status_code == 200
    assert reverse("moderation:frame-thumbnail", args=[job.frames.first().pk]) in body
    assert 'id="mod-decide"' not in body and 'id="mod-feedback"' not in body
    job.refresh_from_db()
    assert job.claimed_by is None


def test_decision_posts_need_csrf(alice):
    from django.test import Client

    job = make_job()
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(reverse("admin:moderation_job_decide", args=[job.pk]),
                           {"decision": "approve"})
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.review_state == "pending"


# --- the queue ------------------------------------------------------------------------------


def test_queue_rows_in_order_with_labels_strip_transcript_and_claims(client, alice, bob):
    medium = make_job("medium", age_minutes=30, frames=12, flagged_every=2, slices=20)
    high = make_job("high", age_minutes=5, frames=3, flagged_every=1,
                    labels=("violent_explosion",))
    make_job("low", pending=False)
    claims.claim(high, bob)
    client.force_login(alice)
    page = client.get(reverse(QUEUE))
    assert page.status_code == 200
    body = page.content.decode()
    rows = [f'data-job="{job.pk}"' for job in (high, medium)]
    assert all(r in body for r in rows) and body.index(rows[0]) < body.index(rows[1])
    assert "2 items waiting" in body
    # worst labels with their highest confidence (make_job: 80 + frame index)
    assert "violent_explosion 82%" in body
    # by name, the code on hover (a label without a rule keeps its code)
    assert 'title="pt_qrCode">a QR code 90%' in body
    assert 'title="profanity">profanity in speech 90%' in body
    flagged = list(medium.frames.exclude(risk_level="none").order_by("offset"))
    strip = [reverse("moderation:frame-thumbnail", args=[f.pk]) for f in flagged]
    assert strip[0] in body and strip[3] in body and strip[4] not in body  # 4 per row
    assert 'loading="lazy"' in body and "mod-blurred" in body
    assert "you <mark>idiot</mark>" in body  # the flagged transcript line
    assert "bob · until" in body  # who holds a claim


def test_queue_filters(client, alice):
    photo_ct = ContentType.objects.get_for_model(Photo)
    a = make_job(provider="aliyun_green", kind="image", labels=("porn",))
    b = make_job(provider="local", kind="video", labels=("pt_qrCode", "ad"), age_minutes=120)
    c = make_job(provider="local", kind="video", labels=("pt_qrCode_lib",),
                 obj=Photo.objects.create(title="x"))
    client.force_login(alice)

    def shown(query):
        body = client.get(reverse(QUEUE), query).content.decode()
        return {job.pk for job in (a, b, c) if f'data-job="{job.pk}"' in body}

    assert shown({}) == {a.pk, b.pk, c.pk}
    assert shown({"provider": "aliyun_green"}) == {a.pk}
    assert shown({"label": "pt_qrCode"}) == {b.pk}  # a whole label, not a prefix
    assert shown({"kind": "video"}) == {b.pk, c.pk}
    assert shown({"content_type": str(photo_ct.pk)}) == {c.pk}
    assert shown({"age": "1h"}) == {b.pk}
    assert shown({"kind": "nonsense", "content_type": "x"}) == {a.pk, b.pk, c.pk}
    body = client.get(reverse(QUEUE)).content.decode()
    assert '<option value="aliyun_green"' in body and '<option value="pt_qrCode_lib"' in body


def test_next_opens_and_claims_the_next_free_item(client, alice, bob):
    first, second = make_job("high"), make_job("medium")
    claims.claim(first, bob)
    client.force_login(alice)
    response = client.get(reverse("admin:moderation_job_queue_next"))
    assert response.status_code == 302 and response["Location"] == review_url(second)
    second.refresh_from_db()
    assert second.claimed_by == alice


# --- the job page ---------------------------------------------------------------------------


def test_opening_claims_and_a_second_moderator_cannot_decide(client, alice, bob):
    job = make_job(frames=2, flagged_every=1)
    client.force_login(alice)
    body = client.get(review_url(job)).content.decode()
    assert "You hold this item" in body and 'id="mod-decide"' in body
    job.refresh_from_db()
    assert job.claimed_by == alice
    assert job.claimed_until > timezone.now() + timedelta(seconds=590)

    client.force_login(bob)
    body = client.get(review_url(job)).content.decode()
    assert "alice is reviewing this item" in body and 'id="mod-decide"' not in body
    response = client.post(reverse("admin:moderation_job_decide", args=[job.pk]),
                           {"decision": "reject"})
    assert response.status_code == 302 and response["Location"] == review_url(job)
    job.refresh_from_db()
    assert job.review_state == "pending" and job.claimed_by == alice


def test_job_page_shows_media_frames_transcript_labels_content_raw_and_audit(client, alice):
    photo = Photo.objects.create(title="holiday snap")
    job = make_job("medium", frames=130, flagged_every=1, slices=15, obj=photo)
    client.force_login(alice)
    body = client.get(review_url(job)).content.decode()
    media = reverse("moderation:job-media", args=[job.pk])
    assert f'<video id="mod-player" controls preload="metadata" src="{media}" muted>' in body
    assert body.count('class="mod-frame ') == 60  # a page of the grid
    assert 'mod-edge-medium" data-offset="59.000"' in body
    assert 'mod-edge-medium" data-offset="60.000" data-frame' not in body
    assert "page 1 of 3" in body and "fpage=2" in body
    page3 = client.get(review_url(job), {"fpage": 3}).content.decode()
    assert page3.count('class="mod-frame ') == 10 and 'data-offset="129.000"' in page3
    assert "a QR code 99%" in body  # frame label with confidence (80 + 19)
    assert "words 10 you <mark>idiot</mark>" in body and "15 slices" in body
    assert f"Photo object ({photo.pk})" in body  # the content object (no admin for Photo)
    assert "<summary>Raw provider result</summary>" in body and "raw answer" in body
    assert "Audit trail" in body
    assert "mod-blurred" in body  # flagged imagery blurred by default
    for key in ("<kbd>a</kbd>", "<kbd>r</kbd>", "<kbd>n</kbd>", "<kbd>j / k</kbd>"):
        assert key in body


def test_flagged_frames_by_default_all_on_request(client, alice):
    job = make_job(frames=10, flagged_every=5)
    client.force_login(alice)
    body = client.get(review_url(job)).content.decode()
    assert body.count('class="mod-frame ') == 2 and "2 flagged of 10" in body
    body = client.get(review_url(job), {"frames": "all"}).content.decode()
    assert body.count('class="mod-frame ') == 10


def test_reveal_preference_turns_the_blur_off(client, alice):
    job = make_job(frames=2, flagged_every=1)
    client.force_login(alice)
    response = client.post(reverse("admin:moderation_job_preferences"),
                           {"reveal_flagged": "1", "next": review_url(job)})
    assert response.status_code == 302 and response["Location"] == review_url(job)
    assert ModeratorPreference.objects.get(user=alice).reveal_flagged
    assert "mod-blurred" not in client.get(review_url(job)).content.decode()
    assert "mod-blurred" not in client.get(reverse(QUEUE)).content.decode()
    # an outside "next" is not followed
    response = client.post(reverse("admin:moderation_job_preferences"),
                           {"reveal_flagged": "0", "next": "https://evil.example/"})
    assert response["Location"] == reverse(QUEUE)
    assert not ModeratorPreference.objects.get(user=alice).reveal_flagged


def test_raw_view_returns_the_whole_provider_answer(client, alice):
    job = make_job()
    client.force_login(alice)
    response = client.get(reverse("admin:moderation_job_raw", args=[job.pk]))
    assert response.json() == {"frames": 0, "note": "raw answer"}


# --- decisions ------------------------------------------------------------------------------


def test_approve_then_the_next_item_opens(client, alice, pending_photo):
    _p1, first = pending_photo("one")
    photo2, second = pending_photo("two")
    client.force_login(alice)
    client.get(review_url(first))
    response = client.post(reverse("admin:moderation_job_decide", args=[first.pk]),
                           {"decision": "approve", "reason": "harmless"})
    assert response.status_code == 302 and response["Location"] == review_url(second)
    first.refresh_from_db()
    assert (first.decision, first.claimed_by) == ("approved", None)
    assert first.events.get(action="approved").reason == "harmless"
    second.refresh_from_db()
    assert second.claimed_by == alice  # claimed by "next"
    response = client.post(reverse("admin:moderation_job_decide", args=[second.pk]),
                           {"decision": "reject"})
    assert response["Location"] == reverse(QUEUE)  # the queue is empty
    assert Photo.objects.get(pk=photo2.pk).hidden


def test_reversal_from_the_job_page(client, alice, pending_photo):
    photo, job = pending_photo()
    client.force_login(alice)
    client.post(reverse("admin:moderation_job_decide", args=[job.pk]), {"decision": "reject"})
    body = client.get(review_url(job)).content.decode()
    assert "Reverse the decision" in body
    client.post(reverse("admin:moderation_job_decide", args=[job.pk]), {"decision": "approve"})
    job.refresh_from_db()
    assert job.decision == "approved" and not Photo.objects.get(pk=photo.pk).hidden
    assert job.events.get(action="approved").data == {"previous_decision": "rejected"}


def test_skip_releases_and_opens_the_next(client, alice):
    first, second = make_job("high"), make_job("medium")
    client.force_login(alice)
    client.get(review_url(first))
    response = client.post(reverse("admin:moderation_job_skip", args=[first.pk]))
    assert response["Location"] == review_url(second)
    first.refresh_from_db()
    assert first.claimed_by is None


def test_bulk_actions_need_review_permission_and_skip_claimed_items(client, alice, bob):
    mine, held = make_job(), make_job()
    claims.claim(held, bob)
    url = reverse("admin:moderation_job_changelist")
    client.force_login(moderator("viewer", "view_job"))
    client.post(url, {"action": "approve_jobs", "_selected_action": [mine.pk, held.pk]})
    mine.refresh_from_db()
    assert mine.review_state == "pending"  # the action is not offered to a viewer

    client.force_login(alice)
    response = client.post(url, {"action": "reject_jobs", "_from_queue": "1",
                                 "_selected_action": [mine.pk, held.pk], "reason": "bulk"},
                           follow=True)
    assert response.redirect_chain[0][0] == reverse(QUEUE)
    body = response.content.decode()
    assert "1 job(s) rejected" in body and "1 job(s) skipped" in body
    mine.refresh_from_db()
    held.refresh_from_db()
    assert mine.decision == "rejected" and mine.events.get(action="rejected").reason == "bulk"
    assert held.review_state == "pending" and held.claimed_by == bob


def test_changelist_links_to_the_queue_and_the_console(client, alice):
    job = make_job()
    client.force_login(alice)
    body = client.get(reverse("admin:moderation_job_changelist")).content.decode()
    assert reverse(QUEUE) in body and review_url(job) in body
    assert "approve_jobs" in body and "reject_jobs" in body


# --- feedback -------------------------------------------------------------------------------


def test_feedback_form_and_request(client):
    job = make_job(frames=4, flagged_every=2)
    frames = list(job.frames.order_by("offset"))
    sender = moderator("sender", "view_job", "send_feedback")
    client.force_login(sender)
    body = client.get(review_url(job)).content.decode()
    assert 'id="mod-feedback"' in body and 'form="mod-feedback"' in body
    response = client.post(reverse("admin:moderation_job_feedback", args=[job.pk]),
                           {"decision": "approved", "frame_ids": [frames[0].pk, frames[2].pk],
                            "note": "a menu, not an ad"})
    assert response.status_code == 302
    row = FeedbackRequest.objects.get(job=job)
    assert (row.decision, row.frame_ids, row.note, row.created_by) == (
        "approved", [frames[0].pk, frames[2].pk], "a menu, not an ad", sender)
    body = client.get(review_url(job)).content.decode()
    assert 'class="mod-feedback-row"' in body and "pending" in body
    # a whole-job rejection; foreign frame ids are dropped
    other = make_job(frames=1, flagged_every=1).frames.get()
    client.post(reverse("admin:moderation_job_feedback", args=[job.pk]),
                {"decision": "rejected", "frame_ids": [other.pk]})
    assert FeedbackRequest.objects.filter(job=job, decision="rejected", frame_ids=[]).exists()


def test_feedback_default_decision_follows_the_decision_taken(client):
    job = make_job(pending=False)  # auto_pass
    client.force_login(moderator("sender", "view_job", "send_feedback"))
    body = client.get(review_url(job)).content.decode()
    assert '<option value="approved" selected>' in body


def test_feedback_refused_without_permission(client, alice):
    job = make_job(frames=1, flagged_every=1)
    client.force_login(alice)
    assert 'id="mod-feedback"' not in client.get(review_url(job)).content.decode()
    response = client.post(reverse("admin:moderation_job_feedback", args=[job.pk]),
                           {"decision": "approved"})
    assert response.status_code == 403 and not FeedbackRequest.objects.exists()


# --- the original media ---------------------------------------------------------------------


def test_job_media_is_permission_checked_and_seekable(client, register, scripted, alice):
    from tests.providers import result

    register(Photo, provider="scripted")
    data = bytes(range(256)) * 40
    scripted.script.append(result("medium", "pt_qrCode"))
    photo = Photo.objects.create(image=ContentFile(data, name="clip.mp4"))
    job = Job.objects.get(object_id=str(photo.pk))
    url = reverse("moderation:job-media", args=[job.pk])
    assert client.get(url).status_code == 302  # login first
    client.force_login(moderator("staff"))
    assert client.get(url).status_code == 403
    client.force_login(alice)
    whole = client.get(url)
    assert whole.status_code == 200 and b"".join(whole.streaming_content) == data
    assert whole["Cache-Control"] == "private, no-store" and whole["Accept-Ranges"] == "bytes"
    assert whole["Content-Type"] == "video/mp4"
    part = client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part["Content-Range"] == f"bytes 100-199/{len(data)}"
    tail = client.get(url, headers={"Range": "bytes=-10"})
    assert tail.content == data[-10:]
    assert client.get(url, headers={"Range": "bytes=999999-"}).status_code == 416
    frames_job = make_job(kind="frames")
    assert client.get(reverse("moderation:job-media", args=[frames_job.pk])).status_code == 404


# --- query counts ---------------------------------------------------------------------------


def _queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_queue_and_job_page_query_counts_do_not_grow_with_the_job(client, alice):
    photo_ct_obj = Photo.objects.create(title="small")
    small = make_job("medium", frames=10, flagged_every=2, slices=5, obj=photo_ct_obj)
    client.force_login(alice)
    client.get(reverse(QUEUE))  # warm caches (content types, session)
    queue_small = _queries(client, reverse(QUEUE))
    page_small = _queries(client, review_url(small))
    page_small_all = _queries(client, review_url(small), {"frames": "all"})

    big = make_job("medium", frames=3600, flagged_every=3, slices=500,
                   obj=Photo.objects.create(title="big"))
    for _ in range(20):  # a fuller queue too
        make_job("low", frames=30, flagged_every=2, slices=10)
    assert big.frames.count() == 3600 and big.slices.count() == 500
    queue_big = _queries(client, reverse(QUEUE))
    page_big = _queries(client, review_url(big))
    page_big_all = _queries(client, review_url(big), {"frames": "all", "fpage": 30,
                                                       "spage": 3})
    body = client.get(review_url(big), {"frames": "all"}).content.decode()
    assert body.count('class="mod-frame ') == 60 and "page 1 of 60" in body
    assert (queue_big, page_big, page_big_all) == (queue_small, page_small, page_small_all)
    print(f"queries: queue {queue_small}, job page {page_small}, all frames {page_small_all}")
    assert page_small <= 20 and queue_small <= 20


def test_queue_and_transcript_pagers_keep_their_filters(client, alice):
    for n in range(51):
        make_job("medium", age_minutes=n, labels=("pt_qrCode",))
    client.force_login(alice)
    body = client.get(reverse(QUEUE), {"label": "pt_qrCode"}).content.decode()
    assert "page 1 of 2" in body and "label=pt_qrCode&amp;page=2" in body
    second = client.get(reverse(QUEUE), {"label": "pt_qrCode", "page": 2}).content.decode()
    assert "page 2 of 2" in second and "label=pt_qrCode&amp;page=1" in second

    job = make_job("medium", slices=250)
    page = client.get(review_url(job)).content.decode()
    assert "spage=2#transcript" in page and "page 1 of 3" in page


def test_next_stays_within_the_queue_filters_last_used(client, alice):
    worse = make_job("high", age_minutes=60, labels=("porn",))
    wanted = make_job("medium", labels=("pt_qrCode",))
    also = make_job("medium", age_minutes=1, labels=("pt_qrCode",))
    client.force_login(alice)
    client.get(reverse(QUEUE), {"label": "pt_qrCode"})
    opened = client.get(reverse("admin:moderation_job_queue_next"))
    assert opened["Location"] == review_url(also)  # not the riskier porn item
    decided = client.post(reverse("admin:moderation_job_decide", args=[also.pk]),
                          {"decision": "approved"})
    assert decided["Location"] == review_url(wanted)
    client.get(reverse(QUEUE))  # filters cleared: everything again
    assert client.get(reverse("admin:moderation_job_queue_next"))["Location"] == \
        review_url(worse)


def test_claim_heartbeat_renews_only_ones_own_claim(client, alice, bob):
    job = make_job("medium")
    url = reverse("admin:moderation_job_claim", args=[job.pk])
    client.force_login(alice)
    assert client.get(url).status_code == 405  # POST only
    answer = client.post(url).json()
    assert answer["held"] is True and answer["until"]
    client.force_login(bob)
    assert client.post(url).json() == {"held": False, "until": None}
    job.refresh_from_db()
    assert job.claimed_by == alice
