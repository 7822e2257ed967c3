"""The browser harness itself: chromium starts, the admin login works."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_user_logs_in_to_the_admin(page, login, make_user, live_server):
    user = make_user("smoke", superuser=True)
    login(page, user)
    assert "Site administration" in page.content()
    page.goto(f"{live_server.url}/admin/moderation/job/")
    assert page.locator("#result_list, .paginator").count() >= 1
