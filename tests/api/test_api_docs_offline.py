"""The API docs page works without internet (issue 14, item 7): Swagger UI and ReDoc come
from drf-spectacular-sidecar's static files, never from a CDN. Before, the page loaded its
JavaScript from jsDelivr and stayed blank on a network without internet.

The HTML is read through the test client; the files it references are fetched over real
HTTP from the live server (which serves static files as ``runserver`` does)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import RequestFactory
from drf_spectacular.views import SpectacularRedocView

pytestmark = pytest.mark.usefixtures("no_proxy")

REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
ABSOLUTE = re.compile(r"""(?:https?:)?//[\w.-]+""")
CDN_WORDS = ("cdn", "jsdelivr", "unpkg", "cdnjs", "googleapis")


def _references(html: str) -> list[str]:
    return REFERENCE.findall(html)


def _assert_local(html: str) -> list[str]:
    """Every src/href is a path on this site, and no CDN is named anywhere in the page."""
    lowered = html.lower()
    for word in CDN_WORDS:
        assert word not in lowered, f"the page names {word!r}"
    refs = _references(html)
    assert refs, "the page references no script or stylesheet"
    for ref in refs:
        assert not ABSOLUTE.match(ref), f"{ref} is on another host"
        assert ref.startswith(settings.STATIC_URL if settings.STATIC_URL.startswith("/")
                              else "/" + settings.STATIC_URL), ref
    return refs


def test_settings_use_the_sidecar():
    conf = settings.SPECTACULAR_SETTINGS
    assert conf["SWAGGER_UI_DIST"] == conf["REDOC_DIST"] == "SIDECAR"
    assert conf["SWAGGER_UI_FAVICON_HREF"] == "SIDECAR"
    assert "drf_spectacular_sidecar" in settings.INSTALLED_APPS


def test_swagger_page_references_only_local_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    refs = _assert_local(response.content.decode())
    scripts = [ref for ref in refs if ref.endswith(".js")]
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in scripts), refs
    assert any(ref.endswith("swagger-ui.css") for ref in refs), refs
    # Each is a file the staticfiles finders know, i.e. ``collectstatic`` ships it.
    for ref in refs:
        name = ref.removeprefix("/" + settings.STATIC_URL.strip("/") + "/")
        assert finders.find(name), f"{name} is not a static file"


def test_redoc_script_is_local():
    """ReDoc is not in the demo's URLconf; a site that adds it gets the local bundle too.
    drf-spectacular's ReDoc template also links Google Fonts (not a script: offline, ReDoc
    renders in the system fonts; docs/api.md), so only its scripts are held to this."""
    request = RequestFactory().get("/api/redoc/")
    response = SpectacularRedocView.as_view(url="/api/schema/")(request)
    response.render()
    scripts = re.findall(r"""<script[^>]*\ssrc=["']([^"']+)""", response.content.decode())
    assert scripts, "no script"
    for ref in scripts:
        assert not ABSOLUTE.match(ref) and ref.startswith("/static/"), ref
        assert finders.find(ref.removeprefix("/static/")), ref
    assert any(ref.endswith("redoc.standalone.js") for ref in scripts), scripts


def test_the_referenced_files_are_served(client, live_server):
    """The live server answers 200 with the right type for every file the page names."""
    html = client.get("/api/docs/").content.decode()
    refs = _assert_local(html)
    types = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for ref in refs:
        response = requests.get(f"{live_server.url}{ref}", timeout=10)
        assert response.status_code == 200, ref
        assert urlsplit(response.url).netloc == urlsplit(live_server.url).netloc
        suffix = ref[ref.rfind("."):]
        assert types[suffix] in response.headers["Content-Type"], (ref, response.headers)
        assert len(response.content) > (100_000 if ref.endswith("bundle.js") else 100), ref
