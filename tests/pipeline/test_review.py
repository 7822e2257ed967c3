"""The review console's domain (moderation.review): queue order, claims, next item,
decisions and their reversal, the review_resolved signal."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from moderation import claims, pipeline, review, signals
from moderation.models import (
    AudioSlice,
    Frame,
    FrameLabel,
    Job,
    ModeratorPreference,
    ReviewEvent,
)
from tests.providers import result
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db


# --- helpers shared with test_console*.py ---------------------------------------------------


def moderator(name: str, *perms: str, staff: bool = True) -> User:
    """A user with the given moderation permission codenames (e.g. "review_job")."""
    user = User.objects.create_user(name, password="pw", is_staff=staff)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="moderation",
                                                         codename=codename))
    return User.objects.get(pk=user.pk)  # fresh permission cache


def make_job(risk: str = "medium", *, age_minutes: float = 0, frames: int = 0,
             flagged_every: int = 0, slices: int = 0, provider: str = "local",
             kind: str = "video", labels=("pt_qrCode",), pending: bool = True,
             obj=None) -> Job:
    """A finished job written straight as rows (bulk_create; no evidence files): frames at
    one per second, every ``flagged_every``-th one flagged, ``slices`` transcript slices
    of which every tenth is flagged."""
    job = Job.objects.create(
        media_kind=kind, provider=provider, status="done", risk_level=risk,
        suggestion="review" if pending else "pass", labels=list(labels),
        review_state="pending" if pending else "none", decision="" if pending else "auto_pass",
        created_at=timezone.now() - timedelta(minutes=age_minutes),
        file_name=f"videos/{risk}-{age_minutes}.mp4", field_name="image" if obj else "",
        **({"content_object": obj} if obj is not None else {}),
        raw_result={"frames": frames, "note": "raw answer"},
        audio_summary={"profanity": slices // 10} if slices else {},
    )
    if frames:
        rows = Frame.objects.bulk_create([
            Frame(job=job, offset=float(i),
                  risk_level=risk if flagged_every and i % flagged_every == 0 else "none",
                  thumbnail=f"frames/job{job.pk}-{i}.jpg"
                  if flagged_every and i % flagged_every == 0 else "")
            for i in range(frames)
        ])
        FrameLabel.objects.bulk_create([
            FrameLabel(frame=row, label=labels[0] if row.risk_level != "none" else "nonLabel",
                       confidence=80.0 + (i % 20), risk_level=row.risk_level)
            for i, row in enumerate(rows)
        ])
    if slices:
        AudioSlice.objects.bulk_create([
            AudioSlice(job=job, start=i * 5.0, end=i * 5.0 + 5, text=f"words {i} you idiot"
                       if i % 10 == 0 else f"words {i}",
                       risk_words=["idiot"] if i % 10 == 0 else [],
                       labels=[{"label": "profanity", "confidence": 90.0, "risk_level": "medium",
                                "service": "asr"}] if i % 10 == 0 else [],
                       risk_level="medium" if i % 10 == 0 else "none")
            for i in range(slices)
        ])
    return job


@pytest.fixture
def pending_photo(register, scripted, image_file):
    return pending_photo_factory(register, scripted, image_file)


def pending_photo_factory(register, scripted, image_file):
    """``make(title)``: a Photo whose image got a medium-risk result, so that its job
    waits for review. The registration hides blocked photos."""
    register(Photo, provider="scripted", on_block="hide")

    def make(title="p"):
        photo = Photo.objects.create(title=title, image=image_file(f"{title}.png"))
        scripted.script.append(result("medium", "pt_qrCode"))
        job = Job.objects.get(object_id=str(photo.pk))
        pipeline.process(job.pk)
        job.refresh_from_db()
        assert job.review_state == "pending"
        return photo, job

    return make


# --- the queue ------------------------------------------------------------------------------


def test_queue_is_pending_done_jobs_worst_risk_then_oldest():
    low_old = make_job("low", age_minutes=50)
    medium_new = make_job("medium", age_minutes=1)
    medium_old = make_job("medium", age_minutes=30)
    high_new = make_job("high", age_minutes=2)
    make_job("high", pending=False)  # auto-passed: not in the queue
    Job.objects.create(media_kind="image", provider="local", status="in_progress",
                       review_state="pending")  # unfinished: not in the queue
    assert list(review.queue()) == [high_new, medium_old, medium_new, low_old]


# --- claims ---------------------------------------------------------------------------------


def test_claim_is_exclusive_until_it_expires(settings):
    alice, bob = moderator("alice", "review_job"), moderator("bob", "review_job")
    job = make_job()
    assert claims.claim(job, alice)
    job.refresh_from_db()
    assert job.claimed_by == alice
    assert (job.claimed_until - timezone.now()).total_seconds() == pytest.approx(600, abs=5)
    assert not claims.claim(job, bob)
    assert claims.claim(job, alice)  # renewing one's own claim is fine
    later = timezone.now() + timedelta(seconds=601)
    assert claims.claim(job, bob, now=later)  # alice's claim expired by itself
    job.refresh_from_db()
    assert job.claimed_by == bob


def test_claim_seconds_come_from_the_setting(settings):
    alice = moderator("alice", "review_job")
    job = make_job()
    with override_settings(MODERATION={**settings.MODERATION, "REVIEW_CLAIM_SECONDS": 60}):
        assert claims.claim(job, alice)
    job.refresh_from_db()
    assert (job.claimed_until - timezone.now()).total_seconds() == pytest.approx(60, abs=5)


def test_release_only_lets_go_of_ones_own_claim():
    alice, bob = moderator("alice", "review_job"), moderator("bob", "review_job")
    job = make_job()
    claims.claim(job, alice)
    assert not claims.release(job, bob)
    assert claims.release(job, alice)
    job.refresh_from_db()
    assert job.claimed_by is None and job.claimed_until is None


def test_resolved_jobs_cannot_be_claimed():
    alice = moderator("alice", "review_job")
    assert not claims.claim(make_job(pending=False), alice)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_claims_one_winner():
    """Two moderators open the same item at the same moment: one UPDATE wins."""
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith(
            "file:memorydb"):
        pytest.skip("needs a shared database")
    users = [moderator(f"m{i}", "review_job") for i in range(2)]
    job = make_job()
    barrier = threading.Barrier(2)
    wins = []

    def open_item(user):
        from django.db import connections

        try:
            barrier.wait()
            wins.append(claims.claim(job.pk, user))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=open_item, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False, True]


# --- next item ------------------------------------------------------------------------------


def test_next_item_skips_items_others_hold_and_claims_the_one_it_returns():
    alice, bob = moderator("alice", "review_job"), moderator("bob", "review_job")
    first = make_job("high", age_minutes=10)
    second = make_job("medium", age_minutes=10)
    third = make_job("low", age_minutes=10)
    claims.claim(first, bob)
    got = review.next_item(alice)
    assert got == second and got.claimed_by == alice
    assert review.next_item(alice, after=second) == third
    # wraps around, skipping bob's item and the current one
    assert review.next_item(alice, after=third) == second
    claims.release(second, alice)
    claims.release(third, alice)
    assert review.next_item(bob) == first  # his own claim is his


def test_next_item_after_the_last_wraps_and_none_when_empty():
    alice = moderator("alice", "review_job")
    only = make_job()
    assert review.next_item(alice, after=only) is None
    assert review.next_item(alice) == only
    pipeline.resolve(only, "approved", actor=alice)
    assert review.next_item(alice) is None


# --- decisions ------------------------------------------------------------------------------


def test_decide_resolves_hides_logs_releases_and_signals(pending_photo,
                                                          django_capture_on_commit_callbacks):
    photo, job = pending_photo()
    alice = moderator("alice", "review_job")
    received = []

    def on_resolved(sender, job, decision, actor, **kwargs):
        received.append((job.pk, decision, actor))

    signals.review_resolved.connect(on_resolved)
    try:
        assert claims.claim(job, alice)
        with django_capture_on_commit_callbacks(execute=True):
            review.decide(job, "reject", alice, "spam QR code")
        job.refresh_from_db()
        assert (job.decision, job.review_state) == ("rejected", "resolved")
        assert job.claimed_by is None and job.claimed_until is None
        assert Photo.objects.get(pk=photo.pk).hidden
        event = job.events.get(action=ReviewEvent.Action.REJECTED)
        assert (event.actor, event.reason, event.data) == (alice, "spam QR code", {})
        assert received == [(job.pk, "rejected", alice)]

        # reversal: approve after reject, audited with the previous decision
        bob = moderator("bob", "review_job")
        with django_capture_on_commit_callbacks(execute=True):
            review.decide(job, "approve", bob, "it is a menu")
        job.refresh_from_db()
        assert job.decision == "approved" and not Photo.objects.get(pk=photo.pk).hidden
        event = job.events.get(action=ReviewEvent.Action.APPROVED)
        assert event.actor == bob and event.data == {"previous_decision": "rejected"}
        assert received[-1] == (job.pk, "approved", bob)
    finally:
        signals.review_resolved.disconnect(on_resolved)


def test_review_resolved_is_not_sent_when_the_transaction_rolls_back(
        pending_photo, django_capture_on_commit_callbacks):
    from django.db import transaction

    _photo, job = pending_photo()
    alice = moderator("alice", "review_job")
    received = []

    def on_resolved(sender, **kwargs):
        received.append(kwargs)

    signals.review_resolved.connect(on_resolved)
    try:
        with (django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError),
              transaction.atomic()):
            review.decide(job, "approve", alice)
            raise RuntimeError("boom")
        assert received == []
        job.refresh_from_db()
        assert job.review_state == "pending"
    finally:
        signals.review_resolved.disconnect(on_resolved)


def test_decide_refuses_an_item_another_moderator_holds(pending_photo):
    _photo, job = pending_photo()
    alice, bob = moderator("alice", "review_job"), moderator("bob", "review_job")
    claims.claim(job, bob)
    with pytest.raises(claims.ClaimedByOther):
        review.decide(job, "approve", alice)
    job.refresh_from_db()
    assert job.review_state == "pending" and job.claimed_by == bob


def test_decide_needs_the_review_permission_and_a_known_decision(pending_photo):
    _photo, job = pending_photo()
    with pytest.raises(PermissionDenied):
        review.decide(job, "approve", moderator("viewer", "view_job"))
    with pytest.raises(ValueError):
        review.decide(job, "maybe", moderator("alice", "review_job"))


def test_auto_decisions_can_be_overruled_with_the_previous_decision_noted():
    alice = moderator("alice", "review_job")
    job = make_job("low", pending=False)  # auto_pass
    review.decide(job, "reject", alice)
    assert job.events.get(action="rejected").data == {"previous_decision": "auto_pass"}


def test_reveal_preference():
    alice = moderator("alice", "view_job")
    assert not review.reveals_flagged(alice)
    review.set_reveal_flagged(alice, True)
    assert review.reveals_flagged(alice)
    review.set_reveal_flagged(alice, False)
    assert ModeratorPreference.objects.get(user=alice).reveal_flagged is False
