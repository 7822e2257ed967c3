"""Headless Chromium (Debian's ``chromium``, driven by Playwright) against the live server.

Playwright's sync API runs an event loop in the test thread, where Django then refuses
database access as "async unsafe"; the tests themselves are ordinary synchronous code, so
that guard is switched off for them. Screenshots go to ``test-output/`` (CI artefacts).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
OUTPUT = Path(__file__).resolve().parent.parent.parent / "test-output"
PASSWORD = "browser-test-password"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: run .ci/setup (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, no_proxy):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshot():
    """``screenshot(page, "queue")`` saves test-output/<name>.png and returns the path."""
    OUTPUT.mkdir(exist_ok=True)

    def take(page, name: str, full_page: bool = True) -> Path:
        path = OUTPUT / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


@pytest.fixture
def login(live_server):
    """``login(page, user)``: sign in through the admin's login form."""

    def sign_in(page, user) -> None:
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", user.get_username())
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")

    return sign_in


@pytest.fixture
def make_user(django_user_model):
    """``make_user("name", perms=["moderation.review_job", ...], superuser=False)``."""
    from django.contrib.auth.models import Permission

    def make(username: str, perms: tuple[str, ...] = (), superuser: bool = False):
        user = django_user_model.objects.create_user(username, password=PASSWORD,
                                                     is_staff=True, is_superuser=superuser)
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(Permission.objects.get(
                content_type__app_label=app_label, codename=codename))
        return user

    return make
