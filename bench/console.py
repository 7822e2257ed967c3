"""Server time of the review console: the queue and the job page, for a small job and a
3,600-frame / 500-slice one (rows only; thumbnails are not read to render a page).

    .venv/bin/python bench/console.py [--n 30]

Each figure is the median of ``n`` GETs through Django's test Client (the whole request:
middleware, session, permission checks, queries, template), with the query count.
"""

from __future__ import annotations

import argparse
import logging
import os

from _setup import machine, ms, setup_django, timed


def main(n: int) -> None:
    # As in production: DEBUG off (no query log slowing every query down).
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    setup_django()
    logging.getLogger("django-q").setLevel(logging.WARNING)
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from tests.pipeline.test_review import make_job, moderator
    from tests.testapp.models import Photo

    small = make_job("medium", frames=10, flagged_every=2, slices=5,
                     obj=Photo.objects.create(title="small"))
    big = make_job("high", frames=3600, flagged_every=3, slices=500,
                   obj=Photo.objects.create(title="big"))
    for i in range(48):  # a full first page of the queue
        make_job("low", age_minutes=i, frames=30, flagged_every=2, slices=10)
    client = Client()
    client.force_login(moderator("bench", "view_job", "review_job", "send_feedback"))

    def review(job, **params):
        return reverse("admin:moderation_job_review", args=[job.pk]), params

    cases = [
        ("queue, 50 items (first page)", (reverse("admin:moderation_job_queue"), {})),
        ("job page, 10 frames / 5 slices", review(small)),
        ("job page, 3,600 frames / 500 slices", review(big)),
        ("  same, all frames, page 30", review(big, frames="all", fpage=30, spage=3)),
    ]
    print(f"# review console server time ({machine()}, n={n}, median per request)")
    print(f"{'':40}{'wall ms':>9}{'CPU ms':>9}{'queries':>9}")
    for title, (url, params) in cases:
        assert client.get(url, params).status_code == 200
        reset_queries()
        with CaptureQueriesContext(connection) as queries:
            client.get(url, params)
        count = len(queries)  # now: later requests clear the query log
        walls, cpus = timed(lambda url=url, params=params: client.get(url, params), n)
        print(f"{title:40}{ms(walls):>9}{ms(cpus):>9}{count:>9}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30)
    main(parser.parse_args().n)
