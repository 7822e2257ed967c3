"""Decisions with reasons in a real browser (issue 14, item 4): with REQUIRE_REJECT_REASON on,
"r" without a reason moves to the picker instead of sending; a digit picks a reason; "r"
then rejects with it and the next item opens, offering Undo; "u" undoes it and reopens the
item, back in review."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PERMS = ("moderation.view_job", "moderation.review_job")


def test_reason_keys_and_undo(page, login, make_user, live_server, screenshot, settings):
    from moderation.models import Job
    from tests.pipeline.test_review import make_job

    first, second = make_job("high", age_minutes=5), make_job("medium")
    user = make_user("moderator", perms=PERMS)
    with override_settings(MODERATION={**settings.MODERATION, "REQUIRE_REJECT_REASON": True}):
        login(page, user)
        page.goto(f"{live_server.url}/admin/moderation/job/{first.pk}/review/")
        picker = page.locator("#mod-reason-code")
        assert picker.get_attribute("data-mod-required-by") == "r"

        # "r" with no reason: the picker takes the focus, nothing is sent
        page.keyboard.press("r")
        page.wait_for_function("document.activeElement.id === 'mod-reason-code'")
        assert Job.objects.get(pk=first.pk).review_state == "pending"

        # Esc leaves the picker; "5" picks the fifth reason; "r" rejects with it
        page.keyboard.press("Escape")
        page.keyboard.press("5")
        assert picker.input_value() == "spam"
        page.keyboard.press("r")
        page.wait_for_url(re.compile(rf"/admin/moderation/job/{second.pk}/review/$"))
        first.refresh_from_db()
        assert (first.decision, first.events.get(action="rejected").reason_code) == (
            "rejected", "spam")

        # the next item offers to undo the last decision; "u" does
        undo = page.locator("#mod-undo")
        assert f"Job {first.pk}" in undo.inner_text()
        screenshot(page, "console-undo", full_page=False)
        page.keyboard.press("u")
        page.wait_for_url(re.compile(rf"/admin/moderation/job/{first.pk}/review/$"))
        assert "decision undone" in page.content()
        first.refresh_from_db()
        assert (first.review_state, first.decision) == ("pending", "")
        assert first.events.get(action="undone").actor_id == user.pk
        assert page.locator("#mod-undo").count() == 0
