"""moderation.visible(): only objects whose registered fields all passed or were approved."""

from __future__ import annotations

import pytest

import moderation
from moderation.models import Decision, Job, Status
from tests.testapp.models import Photo, SlugPhoto, UUIDPhoto

pytestmark = pytest.mark.django_db


def finish(obj, decision):
    Job.objects.for_object(obj).filter(is_current=True).update(
        status=Status.DONE, decision=decision)


@pytest.mark.parametrize("model,kwargs", [
    (Photo, {}), (UUIDPhoto, {}), (SlugPhoto, {"slug": "a-b"}),
])
def test_visible_follows_decisions(model, kwargs, register, image_file):
    register(model)
    pending = model.objects.create(image=image_file(), **{k: v + "1" for k, v in kwargs.items()})
    passed = model.objects.create(image=image_file(), **{k: v + "2" for k, v in kwargs.items()})
    blocked = model.objects.create(image=image_file(), **{k: v + "3" for k, v in kwargs.items()})
    approved = model.objects.create(image=image_file(), **{k: v + "4" for k, v in kwargs.items()})
    empty = model.objects.create(**{k: v + "5" for k, v in kwargs.items()})
    finish(passed, Decision.AUTO_PASS)
    finish(blocked, Decision.AUTO_BLOCK)
    finish(approved, Decision.APPROVED)
    shown = set(moderation.visible(model.objects.all()).values_list("pk", flat=True))
    assert shown == {passed.pk, approved.pk, empty.pk}
    assert pending.pk not in shown


def test_a_new_file_hides_until_its_job_passes(register, image_file):
    register(Photo)
    photo = Photo.objects.create(image=image_file())
    finish(photo, Decision.AUTO_PASS)
    assert moderation.visible(Photo.objects.all()).count() == 1
    photo.image = image_file("new.png", color=(0, 0, 0))
    photo.save()
    assert moderation.visible(Photo.objects.all()).count() == 0
    finish(photo, Decision.AUTO_PASS)
    assert moderation.visible(Photo.objects.all()).count() == 1


def test_unregistered_queryset_is_unchanged():
    assert moderation.visible(Photo.objects.all()).query is not None
    assert str(moderation.visible(Photo.objects.all()).query) == str(Photo.objects.all().query)
