"""The overview page in Chromium (issue 14, item 1): the charts are drawn with nothing but
the live server on loopback (every other request aborted), no script error, a tooltip on
each bar, the period links; the screenshot is docs/img/admin-overview.png."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from moderation.remote import is_loopback_host
from tests.admin.test_overview import history

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_overview_draws_its_charts_offline(page, live_server, login, make_user, screenshot):
    moderators = [make_user(name, perms=("moderation.review_job",))
                  for name in ("alice", "bob", "chen")]
    history(240, moderators)
    login(page, make_user("lead", perms=("moderation.view_job", "moderation.review_job")))
    blocked: list[str] = []

    def only_loopback(route, request) -> None:
        host = urlsplit(request.url).hostname or ""
        if request.url.startswith(("data:", "blob:")) or is_loopback_host(host):
            route.continue_()
        else:
            blocked.append(request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_loopback)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/admin/moderation/job/")
    page.click("text=Overview")
    page.wait_for_selector(".mod-overview")
    page.click("a[href='?days=30']")
    page.wait_for_url("**/overview/?days=30")
    page.wait_for_selector("figure.mod-chart svg[role=img]")
    charts = page.locator("figure.mod-chart svg[role=img]")
    assert charts.count() == 6
    assert all(box["width"] > 300 and box["height"] > 40
               for box in (charts.nth(i).bounding_box() for i in range(6)))
    bars = page.locator("figure.mod-chart rect title")
    assert bars.count() > 30
    assert page.locator("#mod-jobs-total").inner_text() == "240"
    assert "alice · approved" in " ".join(bars.all_text_contents())
    screenshot(page, "admin-overview")
    page.locator("details summary").first.click()
    assert page.locator("#mod-volume-table tbody tr").count() == 30
    assert blocked == [] and errors == []
