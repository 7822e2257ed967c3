"""Live progress in Chromium (issue 14, item 2): the job page and the jobs list follow a
running job's progress without a reload, and the job page reloads once when it is done;
the screenshots are docs/img/admin-job-progress.png and admin-jobs-progress.png."""

from __future__ import annotations

import pytest

from moderation.models import Job, Status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def set_progress(job: Job, done: float, total: float = 90.0) -> None:
    Job.objects.filter(pk=job.pk).update(progress={"done": done, "total": total, "unit": "s"})


def test_the_job_page_and_list_follow_a_running_job(page, live_server, login, make_user,
                                                    screenshot):
    job = Job.objects.create(media_kind="video", provider="local", status=Status.IN_PROGRESS,
                             file_name="videos/long.mp4")
    set_progress(job, 12.0)
    login(page, make_user("viewer", perms=("moderation.view_job",)))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{live_server.url}/admin/moderation/job/{job.pk}/change/")
    text = page.locator(".mod-progress-box .mod-progress-text")
    assert text.inner_text() == "analysing: 12 s of 90 s (13\u00a0%)"
    assert page.locator(".mod-progress-box progress").get_attribute("value") == "13"
    page.evaluate("window.modNotReloaded = true")
    set_progress(job, 37.2)
    page.wait_for_function("document.querySelector('.mod-progress-box .mod-progress-text')"
                           ".textContent.includes('37 s of 90 s')", timeout=10_000)
    assert page.evaluate("window.modNotReloaded") is True  # updated in place
    assert page.locator(".mod-progress-box progress").evaluate("bar => bar.value") == 41
    assert page.locator(".mod-risk-pending").count() >= 1
    screenshot(page, "admin-job-progress", full_page=False)

    # the list: the same job's bar follows too, without a reload
    page.goto(f"{live_server.url}/admin/moderation/job/")
    cell = page.locator(f"[data-mod-progress][data-job='{job.pk}'] .mod-progress-text")
    assert cell.inner_text() == "analysing: 37 s of 90 s (41\u00a0%)"
    page.evaluate("window.modNotReloaded = true")
    set_progress(job, 81.0)
    page.wait_for_function(
        f"document.querySelector(\"[data-job='{job.pk}'] .mod-progress-text\")"
        ".textContent.includes('81 s of 90 s (90\u00a0%)')", timeout=10_000)
    assert page.evaluate("window.modNotReloaded") is True
    screenshot(page, "admin-jobs-progress", full_page=False)

    # done: the job page reloads once and shows the result instead of the bar
    page.goto(f"{live_server.url}/admin/moderation/job/{job.pk}/change/")
    page.evaluate("window.modNotReloaded = true")
    Job.objects.filter(pk=job.pk).update(status=Status.DONE, risk_level="none")
    page.wait_for_function("window.modNotReloaded === undefined", timeout=10_000)
    page.wait_for_load_state()
    assert page.locator(".mod-progress-box").count() == 0
    assert page.locator(".mod-risk-pending").count() == 0
    assert errors == []
