"""The demo site: upload page and a public list of posts that may be shown."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_q.models import Schedule

from demo_project.blog.models import Post
from moderation import pipeline
from moderation.models import Job
from tests.conftest import SAMPLES

pytestmark = pytest.mark.django_db


def test_upload_creates_a_post_and_a_job(client, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("ad.png", (SAMPLES / "ad_text.png").read_bytes(), "image/png")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("blog:upload"), {"title": "hi", "image": upload})
    assert response.status_code == 302
    post = Post.objects.get()
    job = Job.objects.get()
    assert job.content_object == post and job.field_name == "image"
    # not shown until moderated
    page = client.get(reverse("blog:list")).content.decode()
    assert "1 post waiting" in page and "<h2>hi</h2>" not in page


def test_upload_form_requires_media(client):
    response = client.post(reverse("blog:upload"), {"title": "empty"})
    assert response.status_code == 200 and "Attach an image or a video" in response.content.decode()
    assert not Post.objects.exists()


def test_upload_of_a_stream_url(client):
    response = client.post(reverse("blog:upload"), {"title": "live",
                                                   "stream_url": "https://example.com/a.m3u8"})
    assert response.status_code == 302
    job = Job.objects.get()
    assert (job.media_kind, job.field_name) == ("live", "stream_url")


def test_list_shows_passed_posts_and_hides_blocked_ones(client, image_file):
    shown = Post.objects.create(title="fine", image=image_file())
    blocked = Post.objects.create(title="bad", image=image_file("b.png", color=(0, 0, 0)))
    for post, risk in ((shown, "none"), (blocked, "high")):
        job = Job.objects.get(object_id=str(post.pk))
        from tests.providers import result
        Job.objects.filter(pk=job.pk).update(status="in_progress")
        pipeline.ingest(job, result(risk, "nonLabel" if risk == "none" else "x_lib"))
    blocked.refresh_from_db()
    assert blocked.hidden  # on_block="hide"
    page = client.get(reverse("blog:list")).content.decode()
    assert "<h2>fine</h2>" in page and "<h2>bad</h2>" not in page


def test_sweeper_schedule_is_created_on_migrate():
    schedule = Schedule.objects.get(name="moderation sweeper")
    assert schedule.func == "moderation.tasks.sweep" and schedule.minutes == 1
    assert schedule.repeats == -1


# --- the demo is safe as documented (settings, .ci/demo) ------------------------------------

DEMO_ENV_KEYS = ("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_ALLOWED_HOSTS", "DEMO_VAR_DIR",
                 "DJANGO_SETTINGS_MODULE", "MODERATION_CALLBACK_BASE_URL",
                 "MODERATION_PUBLIC_BASE_URL")
PRINT_SETTINGS = (
    "import json, demo_project.settings as s; print(json.dumps({'key': s.SECRET_KEY, "
    "'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, 'callback': s.MODERATION['CALLBACK_BASE_URL'],"
    " 'public': s.MODERATION['PUBLIC_BASE_URL']}))"
)


def _demo_env(var_dir, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in DEMO_ENV_KEYS}
    return {**env, "DEMO_VAR_DIR": str(var_dir), **extra}


def _demo_settings(var_dir, **extra: str) -> dict:
    """The demo's settings as a fresh process started with ``extra`` in its environment."""
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    done = subprocess.run([sys.executable, "-c", PRINT_SETTINGS], cwd=ROOT, check=True,
                          capture_output=True, text=True, env=_demo_env(var_dir, **extra))
    return json.loads(done.stdout)


def test_demo_secret_key_is_random_private_and_kept(tmp_path):
    first = _demo_settings(tmp_path / "a")
    key_file = tmp_path / "a" / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text().strip() == first["key"] and len(first["key"]) >= 50
    assert _demo_settings(tmp_path / "a")["key"] == first["key"]  # reused after
    assert _demo_settings(tmp_path / "b")["key"] != first["key"]  # never a fixed string
    assert "demo-only" not in first["key"]


def test_demo_secret_key_from_the_environment_wins(tmp_path):
    assert _demo_settings(tmp_path, DJANGO_SECRET_KEY="k" * 60)["key"] == "k" * 60
    assert not (tmp_path / "secret_key").exists()


def test_concurrent_first_starts_share_one_key(tmp_path):
    """The web process and its workers starting together on a fresh var directory."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    procs = [subprocess.Popen([sys.executable, "-c", PRINT_SETTINGS], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, env=_demo_env(tmp_path))
             for _ in range(4)]
    keys = {proc.communicate(timeout=60)[0] for proc in procs}
    assert len(keys) == 1 and all(proc.returncode == 0 for proc in procs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]  # no temp files left


def test_demo_debug_and_hosts_have_safe_defaults(tmp_path):
    default = _demo_settings(tmp_path)
    assert default["debug"] is False
    assert default["hosts"] == ["127.0.0.1", "localhost", "[::1]"]
    # loopback: only the emulator on this machine fetches from it (passes E004 without DEBUG)
    assert default["public"] == "http://127.0.0.1:8000" and default["callback"] == ""
    assert _demo_settings(tmp_path, DJANGO_DEBUG="0")["debug"] is False
    assert _demo_settings(tmp_path, DJANGO_DEBUG="true")["debug"] is False  # only "1"
    debug = _demo_settings(tmp_path, DJANGO_DEBUG="1")
    assert debug["debug"] is True and debug["hosts"] == default["hosts"]  # never "*"
    assert debug["public"] == "http://127.0.0.1:8000"
    hosts = _demo_settings(tmp_path, DJANGO_ALLOWED_HOSTS="demo.example, .example.org")
    assert hosts["hosts"] == ["demo.example", ".example.org"]


def test_demo_reads_the_callback_base_url_from_the_environment(tmp_path):
    url = "https://demo.example"
    read = _demo_settings(tmp_path, MODERATION_CALLBACK_BASE_URL=url)
    assert read["callback"] == url


def test_demo_script_binds_to_loopback_unless_told(tmp_path):
    """.ci/demo's own address logic, run as bash: 127.0.0.1 by default, DEMO_BIND wins."""
    import re
    import subprocess

    from tests.conftest import ROOT

    script = (ROOT / ".ci" / "demo").read_text()
    assert "0.0.0.0" not in script.split("DEMO_BIND=0.0.0.0")[-1]
    lines = [line for line in script.splitlines()
             if re.match(r"^(PORT|BIND|if \[\[ \$BIND)", line)]
    assert len(lines) == 3 and "--insecure" in script
    probe = "\n".join([*lines, 'echo "$ADDR"'])

    def address(**env: str) -> str:
        return subprocess.run(["bash", "-c", probe], env={"PATH": "/usr/bin:/bin", **env},
                              capture_output=True, text=True, check=True).stdout.strip()

    assert address() == "127.0.0.1:8000"
    assert address(DEMO_BIND="0.0.0.0", PORT="8001") == "0.0.0.0:8001"
    assert address(DEMO_BIND="::1") == "[::1]:8000"


@pytest.mark.slow  # 2.5 s
def test_demo_server_with_debug_off(tmp_path):
    """runserver as .ci/demo starts it, system checks included (E004 would stop it): the
    admin's static files are served (--insecure), a foreign Host header is refused, uploads
    are not served from MEDIA_ROOT."""
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from tests.conftest import ROOT

    env = _demo_env(tmp_path, DJANGO_SETTINGS_MODULE="demo_project.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env,
                   check=True)
    upload = tmp_path / "media" / "posts" / "images" / "x.png"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"an upload no post holds")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload",
         "--insecure"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(path: str, host: str = f"127.0.0.1:{port}") -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
        try:
            with opener.open(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status = get("/static/admin/css/base.css")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and server.poll() is None, "no server"
                time.sleep(0.3)
        assert status == 200
        assert get("/admin/login/") == 200
        assert get("/admin/login/", host="evil.example") == 400
        assert get("/media/posts/images/x.png") == 404
    finally:
        server.terminate()
        server.wait(timeout=20)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow  # about 10-30 s: the demo starts, moderates its samples, serves
@pytest.mark.parametrize("how", ["SIGTERM to the script", "Ctrl-C to the terminal's group"])
def test_demo_stops_its_worker_and_server(tmp_path, how):
    """``.ci/demo`` stopped by a SIGTERM to the script alone (a process manager, ``kill``)
    or by Ctrl-C (SIGINT to the whole group) ends at once and leaves no qcluster or
    runserver behind (bash ran its trap only after a foreground runserver returned, so a
    SIGTERM left the script, the worker and the server running)."""
    import contextlib
    import os
    import signal
    import subprocess
    import time
    import urllib.request

    from tests.conftest import ROOT

    port = _free_port()
    # the demo as a user runs it: SQLite in its var directory and the ORM broker, whatever
    # database the suite itself is on
    env = {key: value for key, value in _demo_env(tmp_path, PORT=str(port)).items()
           if key not in ("DEMO_DB", "DEMO_BROKER", "DEMO_DB_NAME")}
    demo = subprocess.Popen(
        ["bash", ".ci/demo"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
        # as a terminal starts it (a background test runner may have SIGINT ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + 300
        while True:
            assert demo.poll() is None, f"the demo ended with {demo.returncode} before serving"
            try:
                if opener.open(f"http://127.0.0.1:{port}/", timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the demo did not answer within 300 s"
            time.sleep(0.5)
        # the script, its worker (with its processes) and its server are found
        assert len(demo_processes(tmp_path)) >= 3
        if how.startswith("SIGTERM"):
            demo.send_signal(signal.SIGTERM)
        else:
            os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(timeout=30) in (130, 143)
        for _ in range(50):  # children reaped by now or within a few seconds
            if not demo_processes(tmp_path):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the demo's processes outlived it: {demo_processes(tmp_path)}")
    finally:
        for pid in [demo.pid, *demo_processes(tmp_path)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        demo.wait(timeout=10)


def demo_processes(var_dir) -> list[int]:
    """The processes started with ``DEMO_VAR_DIR=var_dir`` (the worker runs in a session of
    its own, so the script's process group does not hold it)."""
    from pathlib import Path

    marker = f"DEMO_VAR_DIR={var_dir}\0".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return found
