"""Recovery after ``kill -9`` of a real qcluster worker in the middle of a video job.

    .venv/bin/python bench/recovery.py [--runs 3] [--seconds 200]

One cluster (one worker, the default LEASE_SECONDS and sweeper schedules) on a throw-away
SQLite database; each run uploads a video, waits until the worker took the job with its
engine pool up, kills the worker with SIGKILL 0.5 to 2 s later (a 200 s video is 200
frames: seconds of work even with warm models) and measures how long until nothing of its
process tree is left, until another worker took the job (attempt 2), and until the job is
``done``. The kills fall at different moments of the 30 s sweeper cycle from run to run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _setup import ROOT, machine, setup_django


def wait(condition, limit: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def main(runs: int, seconds: int) -> None:
    setup_django()
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.db import connection

    from demo_project.blog.models import Post
    from moderation.conf import moderation_settings
    from moderation.models import Job, ReviewEvent, Status
    from tests.security.test_recovery import _busy_worker, _make_video, _running

    videos = Path(tempfile.mkdtemp(prefix="moderation-bench-"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
           "DEMO_DB_NAME": str(connection.settings_dict["NAME"]),
           "MODERATION_TEST_ROOT": settings.TEST_ROOT, "DEMO_Q_WORKERS": "1",
           "MODERATION_TEST_SETTINGS": json.dumps({})}
    log = open(Path(settings.TEST_ROOT) / "qcluster.log", "w+b")  # noqa: SIM115
    cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    print(f"kill -9 of a qcluster worker mid-video ({seconds} s video, LEASE_SECONDS "
          f"{moderation_settings.LEASE_SECONDS}); {machine()}")
    print(f"{'run':>3} {'tree gone s':>11} {'taken again s':>13} {'done s':>7} "
          f"{'completed events':>16}")
    figures = []
    try:
        for run in range(1, runs + 1):
            video = videos / f"run{run}.mp4"
            _make_video(video, seconds + run)  # other bytes each run: no reused result
            post = Post.objects.create(title=f"run {run}", video=ContentFile(
                video.read_bytes(), name=video.name))
            job = Job.objects.get(object_id=str(post.pk))
            leased = Job.objects.filter(pk=job.pk, lease_until__isnull=False)
            if not wait(lambda leased=leased: leased.exists() and _busy_worker(cluster.pid),
                        180):
                raise SystemExit("no worker took the job with its engine pool up")
            time.sleep(random.uniform(0.5, 2.0))
            worker, tree = _busy_worker(cluster.pid)
            os.kill(worker, signal.SIGKILL)
            killed = time.monotonic()
            if Job.objects.get(pk=job.pk).status == Status.DONE:
                raise SystemExit("the job finished before the kill: use a longer video")
            marks = []
            this = Job.objects.filter(pk=job.pk)
            for condition in (
                    lambda tree=tree: not any(_running(pid) for pid in tree),
                    lambda this=this: this.filter(attempts__gte=2).exists(),
                    lambda this=this: this.filter(status=Status.DONE).exists()):
                if not wait(condition, 300):
                    raise SystemExit(f"run {run}: not within 300 s: {job.pk}")
                marks.append(time.monotonic() - killed)
            completed = ReviewEvent.objects.filter(job=job, action="completed").count()
            figures.append(marks)
            gone_at, taken_at, done_at = marks
            print(f"{run:>3} {gone_at:>11.1f} {taken_at:>13.1f} {done_at:>7.1f} {completed:>16}")
    finally:
        cluster.send_signal(signal.SIGTERM)
        cluster.wait(timeout=60)
        log.close()
    print(f"median: tree gone {statistics.median(f[0] for f in figures):.1f} s, taken again "
          f"{statistics.median(f[1] for f in figures):.1f} s, done "
          f"{statistics.median(f[2] for f in figures):.1f} s after the kill")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=200)
    args = parser.parse_args()
    main(args.runs, args.seconds)
