"""The README's quickstart settings pass django-q2's own configuration check and ours."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import warnings

from django.test import override_settings

from moderation.checks import check_settings
from tests.conftest import ROOT


def readme_q_cluster() -> dict:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^Q_CLUSTER = (\{.*?\})", text, re.S | re.M)
    assert match, "README.md shows no Q_CLUSTER"
    source = re.sub(r"#[^\n]*", "", match.group(1))
    return ast.literal_eval(source)


DJANGO_Q_CONF = """
import sys, warnings
from django.conf import settings
# SECRET_KEY as every site has one: django-q2 before 1.11 reads it at import
settings.configure(Q_CLUSTER={cluster!r}, INSTALLED_APPS=["django_q"], SECRET_KEY="x" * 50)
warnings.simplefilter("error")
import django_q.conf  # django-q2 checks its configuration at import, with warnings
print("conf-ok")
"""


def test_readme_q_cluster_passes_django_q2_and_our_checks():
    cluster = readme_q_cluster()
    # django-q2 warns "Retry and timeout are misconfigured" unless a timeout below retry
    # is set (a task redelivered before it finishes would run twice).
    done = subprocess.run([sys.executable, "-c", DJANGO_Q_CONF.format(cluster=cluster)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "conf-ok" in done.stdout, done.stderr[-2000:]
    with warnings.catch_warnings(), override_settings(Q_CLUSTER=cluster):
        warnings.simplefilter("error")
        assert [m.id for m in check_settings()] == []
