"""The host admin mixin on the test app's Photo: status column without a query per row,
the current jobs inline, and approve / reject / retry on the host's own objects."""

from __future__ import annotations

import warnings

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from moderation import pipeline
from moderation.admin.mixins import ModeratedAdminMixin
from moderation.models import Job, ReviewEvent
from moderation.providers import MediaError
from tests.providers import result
from tests.testapp.models import Photo

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls_admin_mixin")]

CHANGELIST = "admin:testapp_photo_changelist"


@pytest.fixture
def photos(register, scripted, image_file):
    """``make(n, answer)``: n photos whose jobs finished with ``answer`` (a Result or an
    exception from the scripted provider)."""
    register(Photo, provider="scripted", on_block="hide")

    def make(n, answer=None):
        for i in range(n):
            Photo.objects.create(title=f"p{i}", image=image_file(f"p{i}.png", color=(i, 9, 9)))
            scripted.script.append(answer if answer is not None else result("medium", "pt_qrCode"))
        for job in Job.objects.filter(status="pending"):
            pipeline.process(job.pk)
        return list(Photo.objects.order_by("pk"))

    return make


def user_with(*perms):
    user = User.objects.create_user(f"u{User.objects.count()}", password="pw", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user




def test_status_column_costs_the_same_for_1_or_20_objects(client, admin_user, photos,
                                                          django_assert_num_queries):
    photos(1)
    client.force_login(admin_user)
    client.get(reverse(CHANGELIST))  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as one:
        page = client.get(reverse(CHANGELIST))
    waiting = 'image: <span title="pending">waiting for review</span>'  # medium risk
    assert waiting in page.content.decode()
    photos(19)
    with django_assert_num_queries(len(one.captured_queries)):
        page = client.get(reverse(CHANGELIST))
    assert page.content.decode().count(waiting) == 20


def test_status_column_shows_decision_and_unfinished_status(client, admin_user, photos,
                                                            register, image_file):
    [photo] = photos(1, result("none"))
    Photo.objects.create(title="waiting", image=image_file("w.png"))  # job not processed
    client.force_login(admin_user)
    body = client.get(reverse(CHANGELIST)).content.decode()
    job = Job.objects.get(object_id=str(photo.pk))
    assert job.decision == "auto_pass"
    assert 'image: <span title="auto_pass">passed automatically</span>' in body
    # the unprocessed one's status, not to be read as "waiting for review"
    assert 'image: <span title="pending">pending</span>' in body
    assert "waiting for review" not in body


def test_status_column_in_chinese_and_without_the_annotation(client, admin_user, photos):
    """The column follows the user's language; an object that did not come through the
    admin's queryset (no annotation) is described the same way."""
    [photo] = photos(1)
    client.force_login(admin_user)
    body = client.get(reverse(CHANGELIST), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'image: <span title="pending">等待人工审核</span>' in body
    with translation.override("en"):
        assert ModeratedAdminMixin.moderation_status(None, photo) == (  # type: ignore[arg-type]
            'image: <span title="pending">waiting for review</span>')


def test_inline_lists_current_jobs_with_console_links(client, admin_user, photos, scripted,
                                                      image_file):
    [photo] = photos(1)
    old = Job.objects.get(object_id=str(photo.pk))
    photo.image = image_file("new.png", color=(1, 2, 3))
    photo.save()
    new = Job.objects.get(object_id=str(photo.pk), is_current=True)
    client.force_login(admin_user)
    body = client.get(reverse("admin:testapp_photo_change", args=[photo.pk])).content.decode()
    assert "moderation jobs (current)" in body.lower()
    assert reverse("admin:moderation_job_change", args=[new.pk]) in body
    assert reverse("admin:moderation_job_change", args=[old.pk]) not in body
    assert 'name="moderation-job-content_type-object_id-0-field_name"' not in body  # read-only


def post_action(client, action, photos_):
    return client.post(reverse(CHANGELIST), {
        "action": action, "_selected_action": [p.pk for p in photos_]}, follow=True)


def test_approve_and_reject_actions_decide_through_review(client, photos):
    items = photos(2)
    client.force_login(user_with("view_photo", "view_job", "review_job"))
    post_action(client, "moderation_reject", items[:1])
    rejected = Job.objects.get(object_id=str(items[0].pk))
    assert rejected.decision == "rejected" and rejected.review_state == "resolved"
    assert Photo.objects.get(pk=items[0].pk).hidden  # the block action ran (on_block=hide)
    assert ReviewEvent.objects.filter(job=rejected, action="rejected").exists()
    post_action(client, "moderation_approve", items)
    assert set(Job.objects.values_list("decision", flat=True)) == {"approved"}
    assert not Photo.objects.get(pk=items[0].pk).hidden


def test_retry_action_needs_change_job(client, photos):
    [photo] = photos(1, MediaError("bad", code="corrupt_image"))
    job = Job.objects.get()
    assert job.status == "failed"
    client.force_login(user_with("view_photo", "review_job"))
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "moderation_approve" in page and "moderation_retry" not in page
    post_action(client, "moderation_retry", [photo])
    assert Job.objects.get().status == "failed"
    client.force_login(user_with("view_photo", "change_job"))
    post_action(client, "moderation_retry", [photo])
    job.refresh_from_db()
    assert job.status == "pending" and job.attempts == 0


def test_the_mixin_raises_no_deprecation_warning(client, photos):
    """Django 6.1 warns about a ``get_actions`` override without ``action_location``
    (.ci/matrix runs this on 6.x); 5.2 never passes it."""
    items = photos(1)
    client.force_login(user_with("view_photo", "change_photo", "view_job", "review_job"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert "moderation_approve" in client.get(reverse(CHANGELIST)).content.decode()
        change = reverse("admin:testapp_photo_change", args=[items[0].pk])
        assert client.get(change).status_code == 200
    ours = [w for w in caught if "/moderation/" in w.filename.replace("\\", "/")]
    assert ours == [], [str(w.message) for w in ours]


def test_view_only_user_gets_no_actions_and_cannot_post_them(client, photos):
    items = photos(1)
    client.force_login(user_with("view_photo", "view_job"))
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "moderation_approve" not in page and "moderation_reject" not in page
    for action in ("moderation_approve", "moderation_reject", "moderation_retry"):
        post_action(client, action, items)
    job = Job.objects.get()
    assert job.decision == "" and job.review_state == "pending"
    assert not ReviewEvent.objects.filter(action__in=("approved", "rejected")).exists()
