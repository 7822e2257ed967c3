"""The uploader's e-mail after a review (moderation/alerts.py, NOTIFY_UPLOADER): a real
decision through ``review.decide`` sends ``review_resolved`` after commit, whose receiver
renders moderation/email/decision_*.txt to the address UPLOADER_EMAIL gives."""

from __future__ import annotations

import pytest

from moderation import review
from moderation.signals import review_resolved
from tests.pipeline.test_review import moderator, pending_photo_factory

pytestmark = pytest.mark.django_db


def uploader_email(instance, job) -> str | None:
    """The site's function (UPLOADER_EMAIL): here the photo's title names its uploader."""
    return f"{instance.title}@example.com" if instance.title != "anonymous" else None


@pytest.fixture
def pending_photo(register, scripted, image_file):
    return pending_photo_factory(register, scripted, image_file)


@pytest.fixture
def notify(settings):
    settings.MODERATION = {**settings.MODERATION, "NOTIFY_UPLOADER": True,
                           "UPLOADER_EMAIL": f"{__name__}.uploader_email"}


def decide(job, decision, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        review.decide(job, decision, moderator(f"mod-{job.pk}-{decision}", "review_job"))


def test_blocked_after_review_emails_the_uploader(notify, pending_photo, mailoutbox,
                                                  django_capture_on_commit_callbacks):
    photo, job = pending_photo("alice")
    decide(job, "reject", django_capture_on_commit_callbacks)
    photo.refresh_from_db()
    assert photo.hidden  # the block action ran
    [mail] = mailoutbox
    assert mail.to == ["alice@example.com"]
    assert mail.subject == "Your content was not approved"
    assert "blocked it: it is not shown to others" in mail.body
    assert "Photo object" in mail.body  # str(instance)


def test_approved_after_review_emails_the_uploader(notify, pending_photo, mailoutbox,
                                                   django_capture_on_commit_callbacks):
    _photo, job = pending_photo("bob")
    decide(job, "approve", django_capture_on_commit_callbacks)
    [mail] = mailoutbox
    assert mail.to == ["bob@example.com"] and mail.subject == "Your content was approved"
    assert "approved it: it is shown" in mail.body


def test_a_reversal_tells_the_uploader_again(notify, pending_photo, mailoutbox,
                                             django_capture_on_commit_callbacks):
    _photo, job = pending_photo("carol")
    decide(job, "approve", django_capture_on_commit_callbacks)
    decide(job, "reject", django_capture_on_commit_callbacks)
    assert [m.subject for m in mailoutbox] == ["Your content was approved",
                                               "Your content was not approved"]


def test_off_by_default_and_nothing_without_an_address(settings, pending_photo, mailoutbox,
                                                       django_capture_on_commit_callbacks):
    _photo, job = pending_photo("dave")
    decide(job, "reject", django_capture_on_commit_callbacks)
    assert mailoutbox == []  # NOTIFY_UPLOADER is off by default
    settings.MODERATION = {**settings.MODERATION, "NOTIFY_UPLOADER": True,
                           "UPLOADER_EMAIL": f"{__name__}.uploader_email"}
    _photo, job = pending_photo("anonymous")
    decide(job, "reject", django_capture_on_commit_callbacks)
    assert mailoutbox == []


def test_the_signal_is_the_hook_for_other_channels(pending_photo,
                                                   django_capture_on_commit_callbacks):
    """What a site connects for its own notifications (or appeals): job, decision, actor."""
    seen = []

    def receiver(sender, job, decision, actor, **kwargs):
        seen.append((job.pk, decision, actor.username, job.content_object.title))

    review_resolved.connect(receiver)
    try:
        _photo, job = pending_photo("erin")
        decide(job, "reject", django_capture_on_commit_callbacks)
    finally:
        review_resolved.disconnect(receiver)
    assert seen == [(job.pk, "rejected", f"mod-{job.pk}-reject", "erin")]
