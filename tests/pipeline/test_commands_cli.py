"""Exit status 2 from the command line (argparse errors and our bad inputs alike), with a
one-line message and no traceback. These inputs fail before any database access."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import load_command_class

ROOT = Path(__file__).resolve().parents[2]


def exit_status(capsys, name: str, *args: str) -> tuple[int, str]:
    command = load_command_class("moderation", name)
    with pytest.raises(SystemExit) as info:
        command.run_from_argv(["manage.py", name, *args])
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("name,args,needle", [
    ("moderation_scan", ["blog.Post", "--batch", "many"], "invalid int value"),
    ("moderation_scan", ["blog.Post", "--rate", "fast"], "invalid float value"),
    ("moderation_scan", ["blog.Post", "--rate", "0"], "--rate must be > 0"),
    ("moderation_scan", ["nope.Model"], "unknown model 'nope.Model'"),
    ("moderation_scan", ["blog.Post", "--field", "title"], "blog.Post.title is not moderated"),
    ("moderation_scan", ["blog.Post", "--since", "someday"], "is not a date"),
    ("moderation_poll", ["--limit", "x"], "invalid int value"),
    ("moderation_retry", ["--job", "seven"], "invalid int value"),
    ("moderation_cancel", ["--job"], "expected at least one argument"),
    ("moderation_purge", [], "--older-than"),
    ("moderation_purge", ["--older-than", "-3"], "--older-than must be >= 0"),
    ("moderation_stats", ["--since", "2024-13-01"], "is not a date"),
    ("moderation_libraries", [], "import"),
])
def test_bad_inputs_exit_with_status_2(capsys, name, args, needle):
    code, err = exit_status(capsys, name, *args)
    assert code == 2
    assert needle in err and "Traceback" not in err


@pytest.mark.slow  # 0.9 s
def test_real_process_exit_status():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    proc = subprocess.run([sys.executable, "manage.py", "moderation_scan", "testapp.Photo"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("CommandError: tests.testapp.Photo is not registered "
                                   "for moderation; registered: blog.Post").replace(
                                       "tests.testapp", "testapp")
