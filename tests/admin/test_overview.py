"""The overview page (admin) and its figures (moderation/overview.py): what each chart
counts, the period filter, permissions, server-drawn SVG without scripts or CDNs, and a
query count that stays flat as the data grows."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from moderation import overview
from moderation.admin.overview import period_from_query
from moderation.models import Frame, FrameLabel, Job, ReviewEvent
from tests.pipeline.test_review import moderator

pytestmark = pytest.mark.django_db

URL = "admin:moderation_job_overview"
A = ReviewEvent.Action


def at(days_ago: int, hour: int = 10) -> datetime:
    """``hour`` o'clock, ``days_ago`` calendar days before today (current time zone)."""
    day = timezone.localdate() - timedelta(days=days_ago)
    return timezone.make_aware(datetime(day.year, day.month, day.day, hour))


def job(days_ago: int, *, status="done", decision="auto_pass", review_state="none",
        labels=(), provider="local", error_code="") -> Job:
    return Job(media_kind="image", provider=provider, status=status, decision=decision,
               review_state=review_state, labels=list(labels), error_code=error_code,
               created_at=min(at(days_ago, 1), timezone.now() - timedelta(seconds=1)))


def history(n: int, moderators) -> None:
    """``n`` jobs over the 10 days before today, in bulk: every verdict, review stints (some still
    waiting), decisions by each moderator, provider retries and failures, frames with
    labels."""
    kinds = [
        dict(decision="auto_pass"),
        dict(decision="auto_block", labels=["porn"]),
        dict(decision="", review_state="pending", labels=["pt_qrCode"]),
        dict(decision="approved", review_state="resolved", labels=["pt_qrCode"]),
        dict(decision="rejected", review_state="resolved", labels=["porn", "ad"]),
        dict(status="failed", decision="", error_code="throttled", provider="scripted"),
    ]
    jobs = Job.objects.bulk_create([job(1 + i % 10, **kinds[i % len(kinds)])
                                    for i in range(n)])
    events, frames = [], []
    for i, row in enumerate(jobs):
        when = row.created_at
        if row.review_state in ("pending", "resolved"):
            events.append(ReviewEvent(job=row, action=A.REVIEW_REQUIRED,
                                      created_at=when + timedelta(hours=1)))
        if row.decision in ("approved", "rejected"):
            events.append(ReviewEvent(job=row, action=row.decision,
                                      actor=moderators[i % len(moderators)],
                                      created_at=when + timedelta(hours=5)))
        if row.status == "failed":
            events += [ReviewEvent(job=row, action=A.RETRY_SCHEDULED, created_at=when),
                       ReviewEvent(job=row, action=A.FAILED, created_at=when)]
        frames.append(Frame(job=row, offset=0.0, risk_level="medium" if row.labels else "none"))
    ReviewEvent.objects.bulk_create(events)
    Frame.objects.bulk_create(frames)
    FrameLabel.objects.bulk_create([FrameLabel(frame=f, label="porn", confidence=90.0)
                                    for f in frames])


# --- the figures ----------------------------------------------------------------------------


def test_volume_per_day_by_verdict():
    Job.objects.bulk_create([
        job(0), job(0), job(0, decision="auto_block"),
        job(1, decision="", review_state="pending"),
        job(1, decision="rejected", review_state="resolved"),
        job(1, status="in_progress", decision=""), job(1, status="expired", decision=""),
        job(2, status="cancelled", decision=""),  # not counted
        job(9),  # outside a 7-day period
    ])
    rows = dict(overview.volume_by_day(overview.period(days=7)))
    assert len(rows) == 7
    today, yesterday = timezone.localdate(), timezone.localdate() - timedelta(days=1)
    assert rows[today]["auto_pass"] == 2 and rows[today]["auto_block"] == 1
    assert {k: v for k, v in rows[yesterday].items() if v} == {
        "review_pending": 1, "rejected": 1, "unfinished": 1, "failed": 1}
    assert sum(sum(v.values()) for v in rows.values()) == 7


def test_queue_history_size_and_oldest_age_at_each_days_end():
    first, second, third = Job.objects.bulk_create([
        job(5, decision="approved", review_state="resolved"),
        job(3, decision="", review_state="pending"),
        job(2, decision="", review_state="pending"),
    ])
    ReviewEvent.objects.bulk_create([
        ReviewEvent(job=first, action=A.REVIEW_REQUIRED, created_at=at(5, 2)),
        ReviewEvent(job=first, action=A.APPROVED, created_at=at(1, 12)),
        ReviewEvent(job=first, action=A.REJECTED, created_at=at(0, 3)),  # a reversal
        ReviewEvent(job=second, action=A.REVIEW_REQUIRED, created_at=at(3, 2)),
        ReviewEvent(job=third, action=A.REVIEW_REQUIRED, created_at=at(2, 2)),
    ])
    p = overview.period(days=7)
    rows = {day: (size, age) for day, size, age in overview.queue_history(p)}
    day = timezone.localdate()

    def end(days_ago):
        return p.day_end(day - timedelta(days=days_ago))

    assert rows[day - timedelta(days=6)] == (0, None)
    assert rows[day - timedelta(days=5)] == (1, (end(5) - first.created_at).total_seconds())
    assert rows[day - timedelta(days=2)] == (3, (end(2) - first.created_at).total_seconds())
    # the first item left yesterday at noon: the second is now the oldest
    assert rows[day - timedelta(days=1)] == (2, (end(1) - second.created_at).total_seconds())
    assert rows[day][0] == 2
    now = overview.queue_now()
    assert now.size == 2 and now.oldest_seconds == pytest.approx(
        (timezone.now() - second.created_at).total_seconds(), abs=5)


def test_label_trends_decisions_per_moderator_and_provider_errors():
    alice, bob = moderator("alice", "review_job"), moderator("bob", "review_job")
    history(60, [alice, bob])
    p = overview.period(days=30)
    trends = overview.label_trends(p)
    assert trends.labels == ["porn", "pt_qrCode", "ad"]
    assert trends.totals == {"porn": 20, "pt_qrCode": 20, "ad": 10}
    assert sum(row["ad"] for _d, row in trends.by_day) == 10
    figures = {m.name: (m.approved, m.rejected) for m in overview.decisions_by_moderator(p)}
    # every 6th job from the 4th is approved (odd index: bob), from the 5th rejected (alice)
    assert figures == {"alice": (0, 10), "bob": (10, 0)}
    errors = overview.provider_errors(p)
    assert sum(row["retry"] for _d, row in errors.by_day) == 10
    assert sum(row["failed"] for _d, row in errors.by_day) == 10
    assert errors.providers["scripted"]["failed"] == 10
    assert errors.providers["scripted"]["top_errors"] == {"throttled": 10}
    assert errors.providers["local"]["error_rate"] == 0


def test_period_filter():
    today = timezone.localdate()
    assert len(overview.period(days=90).days) == 90
    p, form = period_from_query({"days": "7"})
    assert len(p.days) == 7 and p.last == today and form["days"] == "7"
    p, _form = period_from_query({"days": "12"})  # not offered: the default
    assert len(p.days) == overview.DEFAULT_DAYS
    p, form = period_from_query({"from": "2026-01-05", "to": "2026-01-01"})
    assert (p.first, p.last) == (date(2026, 1, 1), date(2026, 1, 5)) and form["days"] == ""
    p, _form = period_from_query({"from": "garbage", "to": "2026-02-30"})
    assert len(p.days) == overview.DEFAULT_DAYS
    p, _form = period_from_query({"from": "2000-01-01"})
    assert len(p.days) == overview.MAX_DAYS and p.last == today


# --- the page -------------------------------------------------------------------------------


def test_page_needs_staff_with_view_job(client):
    response = client.get(reverse(URL))
    assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(moderator("reviewer", "review_job"))
    assert client.get(reverse(URL)).status_code == 403
    client.force_login(moderator("outsider", "view_job", staff=False))
    assert client.get(reverse(URL)).status_code == 302
    client.force_login(moderator("viewer", "view_job"))
    assert client.get(reverse(URL)).status_code == 200


def test_page_draws_svg_charts_without_scripts_or_remote_assets(client):
    history(30, [moderator("alice", "review_job")])
    client.force_login(moderator("viewer", "view_job"))
    body = client.get(reverse(URL), {"days": 7}).content.decode()
    assert body.count('<svg viewBox=') == 6
    assert "<script" not in body.split('id="content-main"')[1]
    assert not re.search(r'(src|href)="(https?:)?//', body)
    # the tooltips and the figures tables say the same numbers
    yesterday = (timezone.localdate() - timedelta(days=1)).strftime("%m/%d/%Y")
    assert f"<title>{yesterday} · passed automatically: 1</title>" in body
    assert re.search(r"<title>alice · approved: \d+</title>", body)
    assert 'id="mod-queue-size">5<' in body
    assert "throttled (3)" in body  # failures on days 2, 4 and 6 of days 1..10
    assert 'class="mod-current" aria-current="page">7 days' in body


def test_changelist_queue_and_app_index_link_the_overview(client):
    client.force_login(moderator("lead", "view_job", "review_job"))
    url = reverse(URL)
    assert url in client.get(reverse("admin:moderation_job_changelist")).content.decode()
    assert url in client.get(reverse("admin:moderation_job_queue")).content.decode()
    app_index = client.get(reverse("admin:app_list", args=["moderation"])).content.decode()
    assert url in app_index and reverse("admin:moderation_job_queue") in app_index
    client.force_login(moderator("viewer", "view_job"))
    app_index = client.get(reverse("admin:app_list", args=["moderation"])).content.decode()
    assert url in app_index and reverse("admin:moderation_job_queue") not in app_index


def test_query_count_stays_flat_as_data_grows(client, django_assert_max_num_queries):
    viewer = moderator("viewer", "view_job")
    moderators = [moderator(f"m{i}", "review_job") for i in range(3)]
    client.force_login(viewer)
    history(10, moderators)
    with CaptureQueriesContext(connection) as small:
        assert client.get(reverse(URL), {"days": 30}).status_code == 200
    # more moderators too (13: prime to history()'s 6 kinds of job, so that every one of
    # them decides something), so decisions per moderator are proven flat as well
    moderators += [moderator(f"m{i}", "review_job") for i in range(3, 13)]
    history(190, moderators)
    assert Job.objects.count() == 200 and FrameLabel.objects.count() == 200
    with django_assert_max_num_queries(len(small.captured_queries)):
        body = client.get(reverse(URL), {"days": 30}).content.decode()
    assert 'id="mod-jobs-total">200<' in body
    for i in range(13):
        assert re.search(rf"<title>m{i} · approved: \d+</title>", body), f"m{i}"
    assert len(small.captured_queries) <= 20
