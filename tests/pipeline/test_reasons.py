"""Decisions with reasons (issue 14, item 4), in the domain: reason codes stored beside the
note, an unknown code refused, a rejection without one refused when REQUIRE_REJECT_REASON
is on (for one job and in bulk, before anything changes), the undo of one's last decision
within UNDO_SECONDS (the job back in review, visibility restored, audited), and check E023."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.test import override_settings
from django.utils import timezone, translation

import moderation
from moderation import reasons, review, signals
from moderation.checks import check_settings
from moderation.models import Job, ReviewEvent
from tests.pipeline.test_review import make_job, moderator, pending_photo_factory
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db



def moderation_settings(**extra) -> override_settings:
    """The current MODERATION (with the scripted provider when its fixture is on) and
    ``extra`` over it: use it inside a test that uses that fixture, not as a decorator."""
    return override_settings(MODERATION={**(getattr(settings, "MODERATION", None) or {}),
                                         **extra})


@pytest.fixture
def pending_photo(register, scripted, image_file):
    return pending_photo_factory(register, scripted, image_file)


@pytest.fixture
def alice():
    return moderator("alice", "review_job")


@pytest.fixture
def bob():
    return moderator("bob", "review_job")


def hidden(photo) -> bool:
    return Photo.objects.get(pk=photo.pk).hidden


def decisions(job) -> list[tuple[str, str, str]]:
    return list(job.events.filter(action__in=("approved", "rejected", "undone"))
                .order_by("id").values_list("action", "reason_code", "reason"))


# --- reason codes ---------------------------------------------------------------------------


def test_the_default_reasons_are_policy_categories_with_labels():
    codes = reasons.reasons()
    assert {"nudity", "sexual", "violence", "hate", "spam", "contact", "drugs",
            "other"} <= set(codes)
    assert reasons.label("spam") == "spam or advertising"
    assert reasons.label("retired_code") == "retired_code"  # old events keep their code
    assert reasons.required_for("rejected") is False


def test_reason_labels_follow_the_language():
    with translation.override("zh-hans"):
        labels = dict(reasons.choices())
    assert labels["spam"] != "spam or advertising"
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in text) for text in labels.values())


def test_decide_stores_the_code_beside_the_note(pending_photo, alice):
    photo, job = pending_photo()
    review.decide(job, "reject", alice, "QR code to a shop", reason_code="spam")
    event = job.events.get(action="rejected")
    assert (event.reason_code, event.reason, event.actor) == ("spam", "QR code to a shop", alice)
    assert hidden(photo)


def test_an_unknown_code_is_refused_before_anything_changes(pending_photo, alice):
    photo, job = pending_photo()
    with pytest.raises(reasons.UnknownReason, match="unknown reason code 'spa'"):
        review.decide(job, "reject", alice, reason_code="spa")
    job.refresh_from_db()
    assert (job.review_state, job.decision) == ("pending", "")
    assert decisions(job) == [] and not hidden(photo)


def test_a_required_reason_is_enforced_on_reject_only(pending_photo, alice):
    photo, job = pending_photo()
    with moderation_settings(REQUIRE_REJECT_REASON=True):
        with pytest.raises(review.ReasonRequired, match="reason code is required to reject"):
            review.decide(job, "reject", alice, "a note is not a reason")
        with pytest.raises(ValueError):  # what the console and scripts catch
            moderation.decide(job, "reject", alice)
        job.refresh_from_db()
        assert job.review_state == "pending" and not hidden(photo)
        review.decide(job, "approve", alice)  # approving needs none
        review.decide(job, "reject", alice, reason_code="contact")
    assert decisions(job) == [("approved", "", ""), ("rejected", "contact", "")]


@moderation_settings(REQUIRE_REJECT_REASON=True,
                     REASONS={"csam": "child abuse", "spam": "spam"})
def test_configured_reasons_replace_the_defaults(alice):
    job = make_job()
    with pytest.raises(reasons.UnknownReason):
        review.decide(job, "reject", alice, reason_code="nudity")
    review.decide(job, "reject", alice, reason_code="csam")
    assert job.events.get(action="rejected").reason_code == "csam"


@moderation_settings(REQUIRE_REJECT_REASON=True)
def test_bulk_reject_without_a_required_reason_decides_nothing(alice):
    jobs = [make_job(), make_job()]
    queryset = Job.objects.filter(pk__in=[j.pk for j in jobs])
    with pytest.raises(review.ReasonRequired):
        review.decide_many(queryset, "reject", alice)
    with pytest.raises(review.UnknownReason):
        review.decide_many(queryset, "reject", alice, reason_code="nope")
    assert ReviewEvent.objects.filter(action="rejected").count() == 0
    outcome = review.decide_many(queryset, "reject", alice, "batch", reason_code="spam")
    assert outcome.decided == 2
    assert set(ReviewEvent.objects.filter(action="rejected")
               .values_list("reason_code", "reason")) == {("spam", "batch")}


# --- undo -----------------------------------------------------------------------------------


def test_undo_within_the_window_returns_the_job_to_review_and_shows_the_content(
        pending_photo, alice, django_capture_on_commit_callbacks):
    photo, job = pending_photo()
    review.decide(job, "reject", alice, "oops", reason_code="nudity")
    assert hidden(photo)
    required = []

    def on_required(sender, job, **kwargs):
        required.append(job.pk)

    signals.review_required.connect(on_required)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            job = review.undo_decision(job, alice)
    finally:
        signals.review_required.disconnect(on_required)
    job.refresh_from_db()
    assert (job.review_state, job.decision, job.claimed_by) == ("pending", "", None)
    assert not hidden(photo)
    assert required == [job.pk]  # pending again: whoever listens is told
    undone = job.events.get(action="undone")
    rejected = job.events.get(action="rejected")
    assert undone.actor == alice
    assert undone.data == {"undone_event": rejected.pk, "decision": "rejected",
                           "reason_code": "nudity"}
    assert job in review.queue()  # back in the queue
    with pytest.raises(review.CannotUndo, match="no decision to undo"):
        review.undo_decision(job, alice)  # once


def test_undo_after_the_window_is_refused(pending_photo, alice):
    photo, job = pending_photo()
    review.decide(job, "reject", alice)
    later = timezone.now() + timedelta(seconds=301)
    with pytest.raises(review.CannotUndo, match="older than 300 s"):
        review.undo_decision(job, alice, now=later)
    review.undo_decision(job, alice, now=timezone.now() + timedelta(seconds=290))
    job.refresh_from_db()
    assert job.review_state == "pending" and not hidden(photo)


@moderation_settings(UNDO_SECONDS=0)
def test_undo_seconds_zero_turns_undo_off(alice):
    job = make_job()
    review.decide(job, "approve", alice)
    with pytest.raises(review.CannotUndo):
        moderation.undo_decision(job, alice)


def test_another_moderator_cannot_undo_a_superuser_can(pending_photo, alice, bob):
    photo, job = pending_photo()
    review.decide(job, "reject", alice)
    with pytest.raises(PermissionDenied, match="only the moderator who decided"):
        review.undo_decision(job, bob)
    with pytest.raises(PermissionDenied):
        review.undo_decision(job, moderator("viewer", "view_job"))
    assert Job.objects.get(pk=job.pk).decision == "rejected" and hidden(photo)
    root = User.objects.create_superuser("root", password="pw")
    moderation.undo_decision(job, root)
    assert Job.objects.get(pk=job.pk).review_state == "pending" and not hidden(photo)


def test_only_the_last_decision_is_undone_and_a_blocked_item_is_hidden_again(
        pending_photo, alice, bob):
    photo, job = pending_photo()
    review.decide(job, "reject", alice, reason_code="spam")
    review.decide(job, "approve", bob, "it is a menu")  # a reversal
    assert not hidden(photo)
    with pytest.raises(PermissionDenied):  # alice's decision is no longer the last one
        review.undo_decision(job, alice)
    review.undo_decision(job, bob)
    job.refresh_from_db()
    # Blocked before bob's approval: hidden again while it waits for a new decision.
    assert (job.review_state, job.decision) == ("pending", "") and hidden(photo)
    assert job.events.get(action="undone").data["previous_decision"] == "rejected"


def test_undo_is_refused_when_the_job_changed_since(alice):
    job = make_job()
    review.decide(job, "approve", alice)
    Job.objects.filter(pk=job.pk).update(review_state="pending", decision="")  # re-run
    with pytest.raises(review.CannotUndo, match="changed since"):
        review.undo_decision(job, alice)


def test_last_decision_skips_other_events_and_stops_at_an_undo(alice):
    job = make_job()
    assert review.last_decision(job) is None
    review.decide(job, "approve", alice)
    assert review.last_decision(job).action == "approved"
    review.undo_decision(job, alice)
    assert review.last_decision(job) is None


# --- check E023 -----------------------------------------------------------------------------


def e023() -> list[str]:
    return [e.msg for e in check_settings() if e.id == "moderation.E023"]


@pytest.mark.parametrize("conf, fragment", [
    ({"REASONS": ["spam"]}, "is not a dict"),
    ({"REASONS": {"bad code!": "x"}}, "'bad code!' is not 1..50 letters"),
    ({"REASONS": {"x" * 51: "x"}}, "is not 1..50 letters"),
    ({"REASONS": {"spam": ""}}, "REASONS['spam'] has no label"),
    ({"REASONS": {}, "REQUIRE_REJECT_REASON": True}, "nobody could reject"),
    ({"REQUIRE_REJECT_REASON": "yes"}, "is not True or False"),
    ({"UNDO_SECONDS": -1}, "UNDO_SECONDS = -1"),
    ({"UNDO_SECONDS": 1.5}, "UNDO_SECONDS = 1.5"),
])
def test_e023_reports_bad_values(conf, fragment):
    with moderation_settings(**conf):
        messages = e023()
    assert any(fragment in m for m in messages), messages


def test_e023_is_silent_on_the_defaults_and_a_sites_own_reasons():
    assert e023() == []
    with moderation_settings(REASONS={"csam": "child abuse", "tos.4-2": "x"},
                             REQUIRE_REJECT_REASON=True, UNDO_SECONDS=0):
        assert e023() == []
