"""The OpenAPI schema of the demo project, checked by schemathesis against a live server:
generated requests to every operation must cause no server error, and every documented
answer must match the schema. Authenticated as a superuser (token), with a few jobs, frames
and library entries to find."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.files.base import ContentFile
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from moderation import pipeline
from moderation.models import HashEntry, Job
from tests.conftest import SAMPLES
from tests.testapp.models import Photo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_proxy")]

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def token(django_user_model, register):
    register(Photo)
    photo = Photo.objects.create(image=ContentFile((SAMPLES / "qrcode.jpg").read_bytes(),
                                                   name="qr.jpg"))
    pipeline.process(Job.objects.get(object_id=str(photo.pk)).pk)
    HashEntry.objects.create(list_type="block", label="spam", pdq="a" * 64)
    user = django_user_model.objects.create_superuser("schema", password="pw")
    return Token.objects.create(user=user).key


@pytest.mark.slow  # 7.8 s
def test_api_matches_its_schema(token, live_server):
    """Every operation, up to 25 generated requests each. (The schemathesis pytest plugin's
    ``from_fixture`` does not run under this pytest, so operations are driven here.)"""
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    headers = {"Authorization": f"Token {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    tried = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)

        run()
        tried.append(operation.label)
    assert "POST /api/moderation/jobs/{id}/decision/" in tried
