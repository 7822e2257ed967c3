"""The queue adapter is a setting (MODERATION["TASK_QUEUE"], check E015), and the inline
adapter (moderation/taskqueue/inline.py) behaves as a queue: after commit, in order, one
task at a time, never raising into the code that queued it, schedules kept and run."""

from __future__ import annotations

import ast
import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from moderation import taskqueue
from moderation.checks import check_settings
from moderation.taskqueue import django_q2, inline

INLINE = "moderation.taskqueue.inline"


def queue(path, **extra):
    return override_settings(MODERATION={**settings.MODERATION, "TASK_QUEUE": path, **extra})


class Recorder:
    """A site's adapter as an object (the setting may name an attribute, not a module)."""

    def __init__(self):
        self.calls = []

    def enqueue(self, func_path, *args, name):
        self.calls.append(("enqueue", func_path, args, name))

    def ensure_schedule(self, name, func_path, *, minutes, first_run_in=0):
        self.calls.append(("ensure_schedule", name, func_path, minutes, first_run_in))

    def remove_schedules(self, names):
        self.calls.append(("remove_schedules", names))


RECORDER = Recorder()
RAN: list[str] = []


def record(label: str, *follow: str) -> str:
    """A task: note ``label``, queue a task per ``follow``, note the end."""
    RAN.append(f"{label} start")
    for other in follow:
        taskqueue.enqueue(f"{__name__}.record", other, name=f"test-{other}")
    RAN.append(f"{label} end")
    return label


def tick() -> None:
    RAN.append("tick")


def explode() -> None:
    RAN.append("explode")
    raise RuntimeError("a task that crashes")


@pytest.fixture(autouse=True)
def _clean():
    RAN.clear()
    RECORDER.calls.clear()
    yield
    inline.remove_schedules(list(inline.schedules()))


# --- the setting ----------------------------------------------------------------------------


def test_the_adapter_follows_the_setting_and_comes_back_with_it():
    assert taskqueue.adapter() is django_q2
    with queue(INLINE):
        assert taskqueue.adapter() is inline
        with queue(f"{__name__}.RECORDER"):
            taskqueue.enqueue("moderation.tasks.process_job", 7, name="moderation-job-7")
            taskqueue.ensure_schedule("s", "moderation.tasks.sweep", minutes=2, first_run_in=5)
            taskqueue.remove_schedules(["s"])
        assert taskqueue.adapter() is inline
    assert taskqueue.adapter() is django_q2
    assert RECORDER.calls == [
        ("enqueue", "moderation.tasks.process_job", (7,), "moderation-job-7"),
        ("ensure_schedule", "s", "moderation.tasks.sweep", 2, 5),
        ("remove_schedules", ["s"]),
    ]


def errors(path, **overrides):
    with queue(path), override_settings(**overrides):
        return [(e.id, e.msg) for e in check_settings()]


@pytest.mark.parametrize(("path", "says"), [
    ("no_such_package.queue", "cannot be imported (No module named 'no_such_package')"),
    ("moderation.taskqueue.no_such_adapter", "cannot be imported"),
    ("moderation.tasks", "has no enqueue, ensure_schedule, remove_schedules"),
    ("moderation.taskqueue", "is the facade, not an adapter"),
    ("", "is not a dotted path"),
])
def test_a_bad_adapter_is_error_e015(path, says):
    [(check_id, message)] = errors(path)
    assert check_id == "moderation.E015" and says in message
    with queue(path), pytest.raises(Exception, match="TASK_QUEUE"):
        taskqueue.enqueue("moderation.tasks.sweep", name="never")


def test_an_adapter_whose_own_import_fails_is_reported_with_the_missing_module(tmp_path,
                                                                             monkeypatch):
    (tmp_path / "site_celery_queue.py").write_text("import celery_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    [(check_id, message)] = errors("site_celery_queue")
    assert check_id == "moderation.E015" and "celery_not_installed" in message


def test_django_q2_is_required_by_its_own_adapter_only():
    assert [i for i, _ in errors("moderation.taskqueue.django_q2", Q_CLUSTER=None)] == [
        "moderation.E005"]
    assert errors(INLINE, Q_CLUSTER=None) == []
    assert errors(f"{__name__}.RECORDER", Q_CLUSTER=None) == []


# --- the inline adapter ---------------------------------------------------------------------


@pytest.mark.django_db
def test_inline_runs_a_task_when_the_transaction_commits_and_never_after_a_rollback(
        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            inline.enqueue(f"{__name__}.record", "kept", name="test-kept")
            assert RAN == []  # not before the commit
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            inline.enqueue(f"{__name__}.record", "rolled back", name="test-rolled-back")
            1 / 0  # noqa: B018
    assert RAN == ["kept start", "kept end"]


@pytest.mark.django_db(transaction=True)
def test_inline_runs_tasks_queued_by_a_task_after_it_in_order_and_logs_a_crash(caplog):
    with queue(INLINE), caplog.at_level(logging.ERROR, logger="moderation.taskqueue.inline"):
        inline.enqueue(f"{__name__}.record", "a", "b", "c", name="test-a")  # autocommit: now
        inline.enqueue(f"{__name__}.explode", name="test-explode")  # does not raise here
        inline.enqueue(f"{__name__}.record", "d", name="test-d")
    assert RAN == ["a start", "a end", "b start", "b end", "c start", "c end",
                   "explode", "d start", "d end"]
    [crash] = caplog.records
    assert "test-explode" in crash.getMessage() and crash.exc_info[0] is RuntimeError


@pytest.mark.django_db(transaction=True)
def test_inline_keeps_schedules_and_runs_the_due_ones():
    now = timezone.now()
    inline.ensure_schedule("first", f"{__name__}.tick", minutes=1)
    inline.ensure_schedule("later", f"{__name__}.tick", minutes=1, first_run_in=30)
    kept = inline.schedules()["later"]
    inline.ensure_schedule("later", f"{__name__}.tick", minutes=5)  # keeps its next run
    assert inline.schedules()["later"] == inline.Schedule(
        "later", f"{__name__}.tick", 5, kept.next_run)
    assert 25 <= (kept.next_run - now).total_seconds() <= 31

    assert inline.run_schedules(now + timedelta(seconds=1)) == ["first"]
    assert RAN == ["tick"]
    assert inline.run_schedules(now + timedelta(seconds=2)) == []  # next run a minute on
    assert inline.run_schedules(now + timedelta(minutes=2)) == ["later", "first"]
    assert RAN == ["tick"] * 3

    inline.remove_schedules(["first", "never made"])
    assert list(inline.schedules()) == ["later"]


# --- the Celery sketch in docs/architecture.md ------------------------------------------------


def _parameters(function: ast.FunctionDef) -> list[tuple[str, str]]:
    args = function.args
    return ([("positional", a.arg) for a in args.posonlyargs + args.args]
            + ([("*", args.vararg.arg)] if args.vararg else [])
            + [("keyword", a.arg) for a in args.kwonlyargs])


def test_the_celery_sketch_in_the_docs_has_the_adapters_three_functions_as_shipped():
    """Not run (Celery is not installed): parsed, so it cannot drift from the interface."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    [sketch] = [code for code in re.findall(r"```python\n(.*?)```", text, re.S)
                if code.startswith("# mysite/moderation_celery.py")]
    documented = {node.name: _parameters(node) for node in ast.parse(sketch).body
                  if isinstance(node, ast.FunctionDef)}
    shipped = {node.name: _parameters(node)
               for node in ast.parse(Path(inline.__file__).read_text()).body
               if isinstance(node, ast.FunctionDef) and node.name in taskqueue.ADAPTER_FUNCTIONS}
    assert set(shipped) == set(taskqueue.ADAPTER_FUNCTIONS)
    assert {name: documented.get(name) for name in shipped} == shipped
