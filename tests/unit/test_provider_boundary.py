"""The provider boundary: providers get settings and the rate limiter through their context.

Nothing under moderation/providers/ reads ``moderation_settings``, imports
``moderation.ratelimit`` or ``moderation.models`` (checked on the source, by AST); the one
exception is the lookup in ``moderation/providers/__init__.py``, where the site builds the
:class:`ProviderContext` it hands to each provider. The behaviour tests below show the
context is what providers actually use.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from moderation.conf import DEFAULTS
from moderation.providers import ModerationRequest, ProviderContext, get_provider
from moderation.providers.aliyun.green import GreenProvider
from moderation.providers.aliyun.guardrails import GuardrailsProvider
from moderation.providers.aliyun.imm import ImmProvider
from moderation.providers.local import LocalProvider

PACKAGE = Path(__file__).resolve().parents[2] / "moderation" / "providers"
#: where the site meets its providers: get_provider() builds their context from the settings
LOOKUP = PACKAGE / "__init__.py"
FORBIDDEN_MODULES = ("moderation.models", "moderation.ratelimit")
FORBIDDEN_NAMES = {"moderation.conf": {"moderation_settings", "ModerationSettings"}}
#: modules that may not be imported whole (their settings object would come with them)
WHOLE = ("moderation.conf",)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """``line: what`` for every forbidden import in ``source`` (module-level or not)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = absolute(node, module, is_package)
            targets = [(target, alias.name) for alias in node.names]
        else:
            continue
        for target, name in targets:
            full = f"{target}.{name}" if name else target
            forbidden_module = any(full == bad or full.startswith(bad + ".") or target == bad
                                   for bad in FORBIDDEN_MODULES)
            if forbidden_module or name in FORBIDDEN_NAMES.get(target, ()) or full in WHOLE:
                found.append((node.lineno, full))
    return [f"{line}: {what}" for line, what in sorted(found)]


def test_the_checker_finds_each_kind_of_forbidden_import():
    """The scan below would not pass vacuously: each spelling is caught, allowed ones not."""
    source = "\n".join([
        "from ...conf import moderation_settings",
        "from ... import ratelimit",
        "from ...models import Job",
        "import moderation.models",
        "def f():",
        "    from moderation.ratelimit import acquire",
        "from ...conf import DEFAULTS",  # the defaults are plain data: allowed
        "from ...labels import make_label",
        "from ... import conf",
        "import moderation.conf as settings_module",
    ])
    assert violations(source, "moderation.providers.aliyun.client") == [
        "1: moderation.conf.moderation_settings",
        "2: moderation.ratelimit",
        "3: moderation.models.Job",
        "4: moderation.models",
        "6: moderation.ratelimit.acquire",
        "9: moderation.conf",
        "10: moderation.conf",
    ]


def test_no_provider_reads_settings_or_the_database():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 40  # the whole package was scanned
    found = []
    for path in files:
        if path == LOOKUP:
            continue
        for problem in violations(path.read_text(), module_name(path),
                                  is_package=path.name == "__init__.py"):
            found.append(f"{path.relative_to(PACKAGE.parent.parent)}:{problem}")
    assert found == []
    # the lookup is the one module that reads them, and the scan would see it
    assert violations(LOOKUP.read_text(), "moderation.providers", is_package=True) == [
        next(f"{n}: moderation.conf.moderation_settings"
             for n, line in enumerate(LOOKUP.read_text().splitlines(), 1)
             if line.startswith("from ..conf import moderation_settings")),
    ]


# --- the context in use ---------------------------------------------------------------------

calls: list[tuple[str, float]] = []


def recording_acquire(key: str, rate: float) -> None:
    """A RATE_LIMITER for the tests: records each turn taken."""
    calls.append((key, rate))


def test_a_provider_built_by_hand_gets_the_defaults_and_no_limit():
    provider = LocalProvider("x", {"thumbnail_size": 99})
    assert dict(provider.context.settings) == DEFAULTS
    assert provider.context.setting("VIDEO_INTERVAL") == DEFAULTS["VIDEO_INTERVAL"]
    with pytest.raises(KeyError, match="NOPE"):
        provider.context.setting("NOPE")
    with pytest.raises(TypeError):
        provider.context.settings["THUMBNAIL_SIZE"] = 1  # read-only: shared by every provider
    assert provider.context.acquire("k", 0.001) is None  # no wait, no database
    merged = provider.settings_for(ModerationRequest(options={"interval": 7}))
    assert (merged["thumbnail_size"], merged["interval"]) == (99, 7)


@pytest.mark.django_db
def test_get_provider_gives_the_resolved_settings_and_the_configured_limiter():
    aliyun = {"BACKEND": "moderation.providers.aliyun.green.GreenProvider",
              "OPTIONS": {"ACCESS_KEY_ID": "AK", "ACCESS_KEY_SECRET": "S",
                          "RATE_LIMIT": 50, "FEEDBACK_RATE_LIMIT": 10}}
    conf = {"RATE_LIMITER": f"{__name__}.recording_acquire", "VIDEO_INTERVAL": 5,
            "KEYWORDS": {"ads": ["buy now"]}, "PROVIDERS": {"green": aliyun}}
    calls.clear()
    with override_settings(MODERATION=conf):
        local = get_provider("local")
        assert local.context.settings["VIDEO_INTERVAL"] == 5
        assert set(local.context.settings) == set(DEFAULTS)
        assert local.settings_for(ModerationRequest())["interval"] == 5
        assert local.keywords(ModerationRequest()) == {"ads": ["buy now"]}
        green = get_provider("green")
        green.take_turn()
        green.take_turn("feedback")
        assert calls == [("green:AK:request", 50 * 0.98), ("green:AK:feedback", 10 * 0.98)]
    # a changed setting empties the cache: the next lookup gets the new context
    fresh = get_provider("local")
    assert fresh is not local and fresh.context.settings["VIDEO_INTERVAL"] == 1
    assert fresh.context.acquire.__module__ == "moderation.ratelimit"


def test_imm_samples_video_at_the_context_interval():
    settings = {**DEFAULTS, "VIDEO_INTERVAL": 4, "VIDEO_MAX_FRAMES": 30}
    imm = ImmProvider("imm", {}, context=ProviderContext(settings=settings))
    assert imm._sampling(ModerationRequest()) == (4, 30)
    assert imm._sampling(ModerationRequest(options={"interval": 2})) == (2, 30)
    assert ImmProvider("imm", {})._sampling(ModerationRequest()) == (
        DEFAULTS["VIDEO_INTERVAL"], DEFAULTS["VIDEO_MAX_FRAMES"])


@pytest.mark.parametrize("provider", [GreenProvider, GuardrailsProvider])
def test_the_callback_check_reads_the_context(provider: Any):
    """E011 depends on CALLBACK_BASE_URL, which the check gets from its context."""
    with_callbacks = ProviderContext(settings={**DEFAULTS,
                                               "CALLBACK_BASE_URL": "https://example.com"})
    ids = [e.id for e in provider.check("a", {}, context=with_callbacks)]
    assert ids == ["moderation.E011"]
    assert provider.check("a", {"UID": "1"}, context=with_callbacks) == []
    assert provider.check("a", {}) == []  # default context: no CALLBACK_BASE_URL
