"""The API docs page renders with no internet (issue 14, item 7): Chromium may reach only
the live server on loopback; every other request is aborted (and recorded). Swagger UI must
still draw the API's operations, from drf-spectacular-sidecar's static files."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from moderation.remote import is_loopback_host

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_renders_the_operations_offline(page, live_server, screenshot):
    blocked: list[str] = []
    served: list[str] = []

    def only_loopback(route, request) -> None:
        host = urlsplit(request.url).hostname or ""
        if request.url.startswith(("data:", "blob:")) or is_loopback_host(host):
            served.append(request.url)
            route.continue_()
        else:
            blocked.append(request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_loopback)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=20_000)
    operations = page.locator(".opblock")
    assert operations.count() >= 10
    paths = " ".join(page.locator(".opblock-summary-path").all_inner_texts())
    assert "/api/moderation/jobs/" in paths and "/api/moderation/moderate/" in paths
    assert page.locator(".swagger-ui .info .title").inner_text().startswith(
        "Media moderation API")
    # Expand one operation: the UI is live, not a static picture.
    operations.first.locator(".opblock-summary").click()
    page.wait_for_selector(".opblock.is-open .opblock-body")
    screenshot(page, "api-docs-offline", full_page=False)
    assert blocked == [], blocked
    assert errors == [], errors
    assert any("/static/drf_spectacular_sidecar/" in url for url in served)
    assert any(urlsplit(url).path == "/api/schema/" for url in served)
