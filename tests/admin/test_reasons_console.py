"""Decisions with reasons in the console (issue 14, item 4): the reason picker on the job page
(numbered for the keyboard), a required reason enforced on one item and in bulk (the queue,
the job list, a host's own objects: a page asks for it), the undo button after deciding,
undo refused to another moderator and after the window, the audit trail filterable by
moderator, and no query added to the job page."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from moderation import review
from moderation.admin.console import LAST_DECISION_KEY
from moderation.models import Job, ReviewEvent
from tests.pipeline.test_review import make_job, moderator, pending_photo_factory
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db

QUEUE = "admin:moderation_job_queue"
CHANGELIST = "admin:moderation_job_changelist"


def review_url(job) -> str:
    return reverse("admin:moderation_job_review", args=[job.pk])


def decide_url(job) -> str:
    return reverse("admin:moderation_job_decide", args=[job.pk])


def undo_url(job) -> str:
    return reverse("admin:moderation_job_undo", args=[job.pk])


def required(**extra) -> override_settings:
    """REQUIRE_REJECT_REASON over the current MODERATION (keeps the scripted provider)."""
    return override_settings(MODERATION={**(getattr(settings, "MODERATION", None) or {}),
                                         "REQUIRE_REJECT_REASON": True, **extra})


def shown_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture
def pending_photo(register, scripted, image_file):
    return pending_photo_factory(register, scripted, image_file)


@pytest.fixture
def alice():
    return moderator("alice", "view_job", "review_job")


@pytest.fixture
def bob():
    return moderator("bob", "view_job", "review_job")


# --- the picker and a required reason -------------------------------------------------------


def test_job_page_offers_the_reasons_numbered_for_the_keyboard(client, alice):
    job = make_job()
    client.force_login(alice)
    body = client.get(review_url(job)).content.decode()
    picker = re.search(r'<select name="reason_code" id="mod-reason-code"([^>]*)>(.*?)</select>',
                       body, re.S)
    assert picker and "data-mod-required-by" not in picker.group(1)
    options = re.findall(r'<option value="(\w*)"(?: data-mod-digit="(\d)")?>([^<]*)</option>',
                         picker.group(2))
    assert options[0] == ("", "", "—")
    assert options[1] == ("nudity", "1", "1 · nudity")
    assert ("spam", "5", "5 · spam or advertising") in options
    assert "(required to reject)" not in body
    # the keys, as listed on the page; a and r keep their buttons
    assert "<kbd>u</kbd>" in body and "<kbd>1 … 9</kbd>" in body
    assert 'data-mod-key="a"' in body and 'data-mod-key="r"' in body
    with required():
        body = client.get(review_url(job)).content.decode()
    assert 'data-mod-required-by="r"' in body and "(required to reject)" in body


def test_reject_with_a_reason_code_is_stored_and_shown_in_the_audit_trail(client, alice,
                                                                          pending_photo):
    photo, job = pending_photo()
    client.force_login(alice)
    client.post(decide_url(job), {"decision": "reject", "reason_code": "contact",
                                  "reason": "phone number in the picture"})
    event = job.events.get(action="rejected")
    assert (event.reason_code, event.reason) == ("contact", "phone number in the picture")
    body = client.get(review_url(job)).content.decode()
    assert ('<span class="mod-reason-code" title="contact">contact details (phone, QR code, '
            'link)</span> phone number in the picture') in body


def test_a_required_reason_is_enforced_with_a_message(client, alice, pending_photo):
    photo, job = pending_photo()
    client.force_login(alice)
    with required():
        response = client.post(decide_url(job), {"decision": "reject", "reason": "note only"},
                               follow=True)
        assert response.redirect_chain[-1][0] == review_url(job)
        assert f"Choose a reason to reject job {job.pk}." in shown_messages(response)
        response = client.post(decide_url(job), {"decision": "reject", "reason_code": "nope"},
                               follow=True)
        assert (f"Unknown reason code nope: job {job.pk} not decided."
                in shown_messages(response))
        job.refresh_from_db()
        assert job.review_state == "pending" and not Photo.objects.get(pk=photo.pk).hidden
        client.post(decide_url(job), {"decision": "reject", "reason_code": "spam"})
    job.refresh_from_db()
    assert job.decision == "rejected" and Photo.objects.get(pk=photo.pk).hidden


# --- bulk -----------------------------------------------------------------------------------


def test_bulk_reject_from_the_queue_asks_for_a_required_reason(client, alice):
    jobs = [make_job(), make_job()]
    client.force_login(alice)
    form = {"action": "reject_jobs", "_from_queue": "1", "reason": "batch",
            "_selected_action": [j.pk for j in jobs]}
    queue_page = client.get(reverse(QUEUE)).content.decode()
    assert '<select name="reason_code" aria-label="Policy reason">' in queue_page
    with required():
        asked = client.post(reverse(CHANGELIST), form)
        assert asked.status_code == 200
        page = asked.content.decode()
        assert "A reason is required to reject" in page
        assert 'name="reason_code" id="mod-bulk-reason-code" required' in page
        for job in jobs:
            assert f'<input type="hidden" name="_selected_action" value="{job.pk}">' in page
        assert 'value="batch"' in page and 'name="_from_queue"' in page
        assert not ReviewEvent.objects.filter(action="rejected").exists()
        # the page posts back with the code chosen
        done = client.post(reverse(CHANGELIST), {**form, "reason_code": "violence",
                                                 "reason_code_asked": "1"}, follow=True)
    assert done.redirect_chain[0][0] == reverse(QUEUE)
    assert "2 job(s) rejected." in shown_messages(done)
    assert set(ReviewEvent.objects.filter(action="rejected")
               .values_list("job_id", "reason_code", "reason")) == {
        (jobs[0].pk, "violence", "batch"), (jobs[1].pk, "violence", "batch")}


def test_bulk_from_the_job_list_unknown_code_and_approve_without_a_reason(client, alice):
    first, second = make_job(), make_job()
    client.force_login(alice)
    with required():
        response = client.post(reverse(CHANGELIST), {"action": "reject_jobs",
                                                     "reason_code": "bogus",
                                                     "_selected_action": [first.pk]},
                               follow=True)
        assert "Unknown reason code bogus: nothing decided." in shown_messages(response)
        asked = client.post(reverse(CHANGELIST), {"action": "reject_jobs",
                                                  "_selected_action": [first.pk]})
        assert "A reason is required to reject" in asked.content.decode()
        again = client.post(reverse(CHANGELIST), {"action": "reject_jobs",
                                                  "reason_code_asked": "1",
                                                  "_selected_action": [first.pk]})
        assert "Choose a reason to reject." in again.content.decode()  # asked again
        client.post(reverse(CHANGELIST), {"action": "approve_jobs",
                                          "_selected_action": [second.pk]})
    assert Job.objects.get(pk=first.pk).review_state == "pending"
    assert Job.objects.get(pk=second.pk).decision == "approved"


@pytest.mark.urls("tests.urls_admin_mixin")
def test_host_admin_bulk_reject_asks_for_a_required_reason(client, register, scripted,
                                                          image_file):
    photo, job = pending_photo_factory(register, scripted, image_file)("host")
    user = User.objects.create_user("host-mod", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        codename__in=("view_photo", "view_job", "review_job")))
    client.force_login(user)
    url = reverse("admin:testapp_photo_changelist")
    with required():
        asked = client.post(url, {"action": "moderation_reject",
                                  "_selected_action": [photo.pk]})
        assert asked.status_code == 200 and "A reason is required" in asked.content.decode()
        assert Job.objects.get(pk=job.pk).review_state == "pending"
        client.post(url, {"action": "moderation_reject", "reason_code": "nudity",
                          "_selected_action": [photo.pk]})
    assert job.events.get(action="rejected").reason_code == "nudity"
    assert Photo.objects.get(pk=photo.pk).hidden


# --- undo -----------------------------------------------------------------------------------


def test_undo_button_after_deciding_puts_the_item_back(client, alice, pending_photo):
    photo, job = pending_photo("one")
    _other, nxt = pending_photo("two")
    client.force_login(alice)
    response = client.post(decide_url(job), {"decision": "reject", "reason_code": "sexual"},
                           follow=True)
    assert response.redirect_chain[-1][0] == review_url(nxt)  # the next item opened
    body = response.content.decode()
    form = re.search(r'<form method="post" action="([^"]+)" class="mod-undo".*?</form>', body,
                     re.S)
    assert form and form.group(1) == undo_url(job)
    assert f"Job {job.pk}: rejected by a moderator." in form.group(0)
    assert 'data-mod-key="u"' in form.group(0)
    assert Photo.objects.get(pk=photo.pk).hidden
    undone = client.post(undo_url(job), follow=True)
    assert undone.redirect_chain[-1][0] == review_url(job)  # reopened (and claimed)
    assert (f"Job {job.pk}: decision undone, the item is back in review."
            in shown_messages(undone))
    job.refresh_from_db()
    assert (job.review_state, job.decision, job.claimed_by) == ("pending", "", alice)
    assert not Photo.objects.get(pk=photo.pk).hidden
    assert job.events.get(action="undone").actor == alice
    assert 'class="mod-undo"' not in undone.content.decode()  # offered once
    assert "decision undone" in undone.content.decode()  # in the audit trail


def test_undo_refused_to_another_moderator_and_after_the_window(client, alice, bob,
                                                                pending_photo):
    photo, job = pending_photo()
    client.force_login(alice)
    client.post(decide_url(job), {"decision": "reject"})
    client.force_login(bob)
    refused = client.post(undo_url(job), follow=True)
    assert (f"Only the moderator who decided job {job.pk} may undo the decision."
            in shown_messages(refused))
    assert Job.objects.get(pk=job.pk).decision == "rejected"

    client.force_login(alice)
    ReviewEvent.objects.filter(job=job, action="rejected").update(
        created_at=timezone.now() - timedelta(seconds=301))
    late = client.post(undo_url(job), follow=True)
    assert (f"Job {job.pk}: there is no decision you can still undo."
            in shown_messages(late))
    assert Job.objects.get(pk=job.pk).decision == "rejected"
    assert Photo.objects.get(pk=photo.pk).hidden
    assert client.post(undo_url(job)).status_code == 302
    client.force_login(moderator("viewer", "view_job"))
    assert client.post(undo_url(job)).status_code == 403


def test_the_undo_offer_ends_with_the_window_and_costs_no_query(client, alice):
    job, other = make_job(), make_job()
    client.force_login(alice)
    client.get(review_url(other))  # warm caches
    with CaptureQueriesContext(connection) as before:
        client.get(review_url(other))
    client.post(decide_url(job), {"decision": "approve"})
    with CaptureQueriesContext(connection) as offered:
        body = client.get(review_url(other)).content.decode()
    assert undo_url(job) in body
    assert len(offered.captured_queries) == len(before.captured_queries)
    session = client.session
    session[LAST_DECISION_KEY] = {**session[LAST_DECISION_KEY], "at": time.time() - 301}
    session.save()
    assert undo_url(job) not in client.get(review_url(other)).content.decode()
    assert undo_url(job) not in client.get(reverse(QUEUE)).content.decode()


# --- the audit trail by moderator -----------------------------------------------------------


def test_review_events_filter_and_search_by_moderator(client, alice, bob):
    first, second, third = make_job(), make_job(), make_job()
    review.decide(first, "approve", alice)
    review.decide(second, "reject", bob, reason_code="hate")
    review.decide(third, "approve", bob)
    moderator("carol", "view_job", "review_job")  # decided nothing
    root = User.objects.create_superuser("root", password="pw")
    client.force_login(root)
    url = reverse("admin:moderation_reviewevent_changelist")
    page = client.get(url).content.decode()
    sidebar = page[page.index('id="changelist-filter"'):]
    assert f"?actor__id__exact={bob.pk}" in sidebar and f"?actor__id__exact={alice.pk}" in sidebar
    assert "carol" not in sidebar  # only moderators in the trail
    assert '<a href="?reason_code=hate">hate</a>' in sidebar

    def jobs_listed(query) -> set[int]:
        response = client.get(url, query)
        return {event.job_id for event in response.context["cl"].result_list}

    assert jobs_listed({"actor__id__exact": bob.pk}) == {second.pk, third.pk}
    assert jobs_listed({"actor__id__exact": alice.pk}) == {first.pk}
    assert jobs_listed({"q": "alice"}) == {first.pk}
    assert jobs_listed({"reason_code": "hate"}) == {second.pk}
