"""pyproject.toml's lower bounds are the versions CI tests: .ci/matrix installs Python 3.11
with .ci/lower-bounds.txt as pip constraints, so each pin there must equal pyproject's bound.
"""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

#: The requirements the lower-bound run installs and pins (`.ci/matrix`:
#: `.[local,api,dev,redis,postgres,aliyun-credentials]`, on PostgreSQL and the Redis broker;
#: the dev tools are not part of what a site installs, so they are not pinned).
PINNED_GROUPS = ("dependencies", "local", "api", "redis", "postgres", "aliyun-credentials")


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def lower_bound_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / ".ci" / "lower-bounds.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version.strip(), f"not a name==version pin: {line!r}"
        key = canonicalize_name(name)
        assert key not in pins, f"{name} pinned twice"
        pins[key] = version.strip()
    return pins


def lower_bound(req: Requirement) -> str | None:
    """The version after ``>=`` or ``==`` (an exact pin is its own lower bound)."""
    found = [spec.version for spec in req.specifier if spec.operator in (">=", "==")]
    assert len(found) <= 1, f"{req} has more than one lower bound"
    return found[0] if found else None


def requirements(*groups: str) -> list[Requirement]:
    meta = project()
    reqs = []
    for group in groups:
        lines = meta["dependencies"] if group == "dependencies" else (
            meta["optional-dependencies"][group])
        reqs += [Requirement(line) for line in lines]
    return reqs


def test_every_pinned_group_requirement_has_its_lower_bound_in_the_file():
    pins = lower_bound_pins()
    for req in requirements(*PINNED_GROUPS):
        bound = lower_bound(req)
        assert bound, f"{req} in pyproject.toml has no lower bound"
        key = canonicalize_name(req.name)
        assert key in pins, f"{req.name} is not in .ci/lower-bounds.txt"
        assert pins[key] == bound, (
            f"{req.name}: pyproject.toml says >={bound}, .ci/lower-bounds.txt {pins[key]}")


def test_every_pin_is_a_lower_bound_of_every_extra_that_names_it():
    pins = lower_bound_pins()
    meta = project()
    names = {canonicalize_name(req.name) for req in requirements(*PINNED_GROUPS)}
    assert set(pins) <= names, f"pinned but not required: {sorted(set(pins) - names)}"
    for group in ("dependencies", *meta["optional-dependencies"]):
        for req in requirements(group):
            key = canonicalize_name(req.name)
            if key in pins:  # e.g. faster-whisper in the whisper extras too
                assert lower_bound(req) == pins[key], f"{req} in {group}"


def test_django_upper_bound_and_classifiers_name_the_same_series():
    """``Django<6.2`` goes with "Framework :: Django :: 6.1" as the newest classifier: CI
    tests the newest release below the upper bound (.ci/matrix django6)."""
    meta = project()
    django = next(r for r in requirements("dependencies") if r.name.lower() == "django")
    upper = [Version(s.version) for s in django.specifier if s.operator == "<"]
    assert len(upper) == 1, f"{django} needs one upper bound"
    series = sorted(Version(m.group(1)) for c in meta["classifiers"]
                    if (m := re.fullmatch(r"Framework :: Django :: (\d+\.\d+)", c)))
    assert series, "no Framework :: Django :: X.Y classifier"
    newest = series[-1]
    assert Version(f"{newest.major}.{newest.minor + 1}") == upper[0], (series, upper)
    assert Version(lower_bound(django)).release[:2] == series[0].release, (series, django)
