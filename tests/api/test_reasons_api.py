"""Decisions with reasons over the REST API (issue 14, item 4): ``reason_code`` on a
decision (400 for an unknown one, or none on a rejection when REQUIRE_REJECT_REASON is on),
``POST jobs/{id}/undo/`` (the same moderator within UNDO_SECONDS; 403 for another one, 409
when there is nothing left to undo or the window has passed), permissions, and the schema."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from moderation.models import Job, ReviewEvent
from tests.pipeline.test_review import make_job, moderator, pending_photo_factory
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db
API = "/api/moderation"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def required() -> override_settings:
    return override_settings(MODERATION={**(getattr(settings, "MODERATION", None) or {}),
                                         "REQUIRE_REJECT_REASON": True})


@pytest.fixture
def alice():
    return moderator("alice", "view_job", "review_job")


@pytest.fixture
def pending_photo(register, scripted, image_file):
    return pending_photo_factory(register, scripted, image_file)


def decide(client, job, **body):
    return client.post(f"{API}/jobs/{job.pk}/decision/", body, format="json")


def undo(client, job):
    return client.post(f"{API}/jobs/{job.pk}/undo/", format="json")


def test_decision_with_a_reason_code(alice):
    job = make_job()
    answer = decide(client_for(alice), job, decision="rejected", reason_code="drugs",
                    reason="pills for sale")
    assert answer.status_code == 200 and answer.json()["decision"] == "rejected"
    event = ReviewEvent.objects.get(job=job, action="rejected")
    assert (event.reason_code, event.reason, event.actor) == ("drugs", "pills for sale", alice)


def test_an_unknown_or_missing_required_code_answers_400(alice):
    job = make_job()
    client = client_for(alice)
    answer = decide(client, job, decision="rejected", reason_code="drug")
    assert answer.status_code == 400
    assert "unknown reason code 'drug'" in answer.json()["reason_code"]
    assert decide(client, job, decision="rejected", reason_code="x" * 51).status_code == 400
    with required():
        answer = decide(client, job, decision="rejected", reason="a note")
        assert answer.status_code == 400
        assert "reason code is required to reject" in answer.json()["reason_code"]
        assert "spam" in answer.json()["reason_code"]  # the codes are listed
        assert Job.objects.get(pk=job.pk).review_state == "pending"
        assert decide(client, job, decision="approved").status_code == 200  # none needed
        assert decide(client, job, decision="rejected",
                      reason_code="spam").status_code == 200
    assert list(job.events.filter(action__in=("approved", "rejected"))
                .order_by("id").values_list("action", "reason_code")) == [
        ("approved", ""), ("rejected", "spam")]


def test_undo_within_the_window_restores_review_and_visibility(alice, pending_photo):
    photo, job = pending_photo()
    client = client_for(alice)
    assert decide(client, job, decision="rejected", reason_code="nudity").status_code == 200
    assert Photo.objects.get(pk=photo.pk).hidden
    answer = undo(client, job)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["review_state"], body["decision"]) == ("pending", "")
    assert not Photo.objects.get(pk=photo.pk).hidden
    assert job.events.get(action="undone").data["reason_code"] == "nudity"
    again = undo(client, job)
    assert again.status_code == 409 and "no decision to undo" in again.json()["detail"]


def test_undo_refused_to_others_and_after_the_window(alice, pending_photo):
    photo, job = pending_photo()
    decide(client_for(alice), job, decision="rejected")
    bob = client_for(moderator("bob", "view_job", "review_job"))
    assert undo(bob, job).status_code == 403
    viewer = client_for(moderator("viewer", "view_job"))
    assert undo(viewer, job).status_code == 403
    assert undo(APIClient(), job).status_code in (401, 403)
    ReviewEvent.objects.filter(job=job, action="rejected").update(
        created_at=timezone.now() - timedelta(seconds=301))
    late = undo(client_for(alice), job)
    assert late.status_code == 409 and "older than 300 s" in late.json()["detail"]
    assert Job.objects.get(pk=job.pk).decision == "rejected"
    assert Photo.objects.get(pk=photo.pk).hidden


def test_the_schema_documents_reason_code_and_undo():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    undo_path = next(p for p in schema["paths"] if p.endswith("/jobs/{id}/undo/"))
    responses = schema["paths"][undo_path]["post"]["responses"]
    assert {"200", "403", "409"} <= set(responses)
    decision = schema["components"]["schemas"]["DecisionRequest"]["properties"]
    assert decision["reason_code"]["maxLength"] == 50
