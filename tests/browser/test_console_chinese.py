"""The review console in Chinese, as a browser set to Chinese (``zh-CN``, which Django maps
to ``zh-hans``) shows it: the queue and a real video job's page (issue 14, item 6). The
screenshot of the job page is docs/img/console-job-zh.png."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import PASSWORD
from tests.browser.test_console import PERMS, review_items  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def chinese_page(browser, no_proxy):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_console_follows_a_chinese_browser(chinese_page, make_user, live_server, screenshot,
                                           review_items):  # noqa: F811 - the fixture
    page = chinese_page
    first, _second = review_items
    user = make_user("moderator", perms=PERMS)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert "内容审核" in page.content()

    page.goto(f"{live_server.url}/admin/moderation/job/queue/")
    assert page.locator(".mod-next").inner_text().startswith("审核下一项")
    assert page.locator(".mod-count").inner_text() == "2 项待审"
    assert page.locator("#mod-queue-table thead").inner_text().count("有风险的帧") == 1

    page.keyboard.press("n")  # the keyboard works the same in any language
    page.wait_for_url(re.compile(rf"/admin/moderation/job/{first.pk}/review/$"))
    content = page.content()
    for text in ("此项由你认领至", "通过 —— 放行", "拒绝 —— 拦截", "转写文本", "审计记录"):
        assert text in content, text
    names = page.locator(".mod-labels .mod-label-name").all_inner_texts()
    assert "二维码" in names, names
    page.wait_for_function("document.getElementById('mod-player').readyState >= 1")
    screenshot(page, "console-job-zh", full_page=False)
