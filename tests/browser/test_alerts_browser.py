"""Review-queue alerts in a real browser (issue 14, item 5): the queue passes ALERTS'
QUEUE_SIZE, the sweeper's check sends one e-mail and the console's queue page shows the
alert; a moderator rejects an item in Chromium and its uploader gets the decision by
e-mail (NOTIFY_UPLOADER); once the queue is back under the threshold the next check ends
the episode and the banner goes. The screenshot is docs/img/console-queue-alert.png."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PERMS = ("moderation.view_job", "moderation.review_job")


def uploader_email(instance, job) -> str | None:
    """The site's UPLOADER_EMAIL: here the photo's title names its uploader."""
    return f"{instance.title}@example.com"


def test_queue_alert_banner_and_the_uploaders_email(page, login, make_user, live_server,
                                                    screenshot, settings, mailoutbox):
    from moderation import alerts, tasks
    from moderation.models import AlertState, Job
    from tests.pipeline.test_review import make_job
    from tests.testapp.models import Photo

    moderation = {**settings.MODERATION,
                  "ALERTS": {"QUEUE_SIZE": 3, "EMAILS": ["ops@example.com"]},
                  "NOTIFY_UPLOADER": True,
                  "UPLOADER_EMAIL": f"{__name__}.uploader_email"}
    with override_settings(MODERATION=moderation):
        jobs = [make_job(risk, age_minutes=age, obj=Photo.objects.create(title=name))
                for risk, age, name in (("high", 30, "alice"), ("medium", 20, "bob"),
                                        ("medium", 10, "carol"))]
        user = make_user("moderator", perms=PERMS)

        # the sweeper's check: 3 items waiting = the threshold, one alert e-mail
        tasks.sweep()
        tasks.sweep()  # same episode: nothing more
        assert AlertState.objects.get(key="queue_size").active
        [alert_mail] = mailoutbox
        assert alert_mail.to == ["ops@example.com"]
        assert alert_mail.subject == "Review queue: 3 items waiting"

        # the queue page shows it, as an admin warning message
        login(page, user)
        page.goto(f"{live_server.url}/admin/moderation/job/queue/")
        banner = page.locator("#mod-queue-alerts li.warning")
        assert banner.count() == 1
        text = banner.inner_text()
        assert re.fullmatch(r"Queue alert since \d\d:\d\d: 3 items waiting \(threshold 3\)\.",
                            text), text
        assert banner.evaluate("e => getComputedStyle(e).backgroundImage").find(
            "icon-alert") > 0  # the admin's warning styling
        page.set_viewport_size({"width": 1400, "height": 520})  # the banner and the rows
        screenshot(page, "console-queue-alert", full_page=False)
        page.set_viewport_size({"width": 1400, "height": 1000})

        # the overview shows it too
        page.goto(f"{live_server.url}/admin/moderation/job/overview/")
        assert page.locator("#mod-queue-alerts li.warning").inner_text() == text

        # the moderator rejects the first item through the console, with a policy reason
        first = jobs[0]
        page.goto(f"{live_server.url}/admin/moderation/job/queue/")
        page.locator(f'#mod-queue-table tr[data-job="{first.pk}"] a.mod-open').click()
        page.wait_for_url(re.compile(rf"/admin/moderation/job/{first.pk}/review/$"))
        page.select_option("#mod-reason-code", "spam")
        page.click("button.mod-reject")
        page.wait_for_url(re.compile(rf"/admin/moderation/job/{jobs[1].pk}/review/$"))
        first.refresh_from_db()
        assert (first.review_state, first.decision) == ("resolved", "rejected")

        # the uploader's e-mail, after commit, in the live server's thread
        assert len(mailoutbox) == 2
        decision_mail = mailoutbox[1]
        assert decision_mail.to == ["alice@example.com"]
        assert decision_mail.subject == "Your content was not approved"
        assert "blocked it: it is not shown to others" in decision_mail.body

        # 2 < 3: the next check ends the episode, sends nothing; the banner is gone
        assert Job.objects.filter(review_state="pending").count() == 2
        assert alerts.check() == []
        assert not AlertState.objects.get(key="queue_size").active
        page.goto(f"{live_server.url}/admin/moderation/job/queue/")
        assert page.locator("#mod-queue-table tbody tr").count() == 2
        assert page.locator("#mod-queue-alerts").count() == 0
        page.goto(f"{live_server.url}/admin/moderation/job/overview/")
        assert page.locator("#mod-queue-alerts").count() == 0
        assert len(mailoutbox) == 2
