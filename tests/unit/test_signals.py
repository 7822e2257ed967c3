"""post_save / post_delete -> jobs: changed, unchanged, rolled back, deleted."""

from __future__ import annotations

import pytest
from django.core import serializers
from django.core.files.base import ContentFile
from django.db import transaction
from django_q.brokers import get_broker

from moderation.models import Job, ReviewEvent, Status
from tests.conftest import png_bytes
from tests.testapp.models import Photo, SlugPhoto, Unregistered, UUIDPhoto

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _registered(register):
    for model in (Photo, UUIDPhoto, SlugPhoto):
        register(model, on_block="hide")


def queue_size() -> int:
    return get_broker().queue_size()


def test_new_file_creates_one_job_enqueued_on_commit(image_file,
                                                     django_capture_on_commit_callbacks):
    before = queue_size()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        photo = Photo.objects.create(title="a", image=image_file())
        assert queue_size() == before  # nothing leaves before the commit
    assert len(callbacks) == 1
    job = Job.objects.get()
    assert job.content_object == photo
    assert (job.field_name, job.media_kind, job.status) == ("image", "image", Status.PENDING)
    assert job.file_name == photo.image.name
    assert job.provider == "local" and job.seed and job.data_id
    assert job.enqueued_at is not None
    assert queue_size() == before + 1
    assert list(job.events.values_list("action", flat=True)) == ["created"]


def test_save_without_media_change_creates_nothing(image_file, django_assert_num_queries):
    photo = Photo.objects.create(image=image_file())
    photo.title = "new title"
    with django_assert_num_queries(1):  # the UPDATE only: no job lookups
        photo.save()
    again = Photo.objects.get(pk=photo.pk)
    again.title = "reloaded"
    again.save()
    assert Job.objects.count() == 1


def test_empty_field_creates_nothing():
    Photo.objects.create(title="no image")
    assert not Job.objects.exists()


def test_update_fields_without_media_is_skipped(image_file):
    photo = Photo.objects.create(image=image_file())
    photo.image = image_file("other.png", color=(1, 2, 3))
    photo.save(update_fields=["title"])
    assert Job.objects.count() == 1


def test_changed_file_supersedes_the_unfinished_job(image_file):
    photo = Photo.objects.create(image=image_file())
    first = Job.objects.get()
    photo.image = image_file("second.png", color=(0, 0, 255))
    photo.save()
    first.refresh_from_db()
    second = Job.objects.exclude(pk=first.pk).get()
    assert first.status == Status.CANCELLED and "superseded" in first.error_message
    assert not first.is_current and second.is_current
    assert second.file_name == photo.image.name != first.file_name


@pytest.fixture
def overwriting_storage(settings):
    """Photo.image on a storage that overwrites (like S3 with file_overwrite=True)."""
    from django.core.files.storage import FileSystemStorage

    field = Photo._meta.get_field("image")
    original = field.storage
    field.storage = FileSystemStorage(location=settings.MEDIA_ROOT, allow_overwrite=True)
    yield field.storage
    field.storage = original


def test_same_name_replaced_bytes_are_detected_by_sha256(overwriting_storage):
    """An overwriting storage keeps the name; the bytes decide."""
    photo = Photo.objects.create(image=ContentFile(png_bytes(), name="same.png"))
    job = Job.objects.get()
    name = photo.image.name
    job.sha256 = _sha(overwriting_storage, name)
    job.save()

    # Same bytes uploaded again under the same name: nothing new.
    photo.image = ContentFile(png_bytes(), name="same.png")
    photo.save()
    assert photo.image.name == name
    assert Job.objects.count() == 1

    # Different bytes under the same name: a new job, with the new hash.
    photo.image = ContentFile(png_bytes((9, 9, 9)), name="same.png")
    photo.save()
    assert photo.image.name == name
    assert Job.objects.count() == 2
    assert Job.objects.filter(is_current=True).get().sha256 == _sha(overwriting_storage, name)


def _sha(storage, name):
    import hashlib

    with storage.open(name, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def test_rolled_back_transaction_submits_nothing(image_file, django_capture_on_commit_callbacks):
    before = queue_size()
    with (django_capture_on_commit_callbacks(execute=True) as callbacks,
          pytest.raises(RuntimeError), transaction.atomic()):
        Photo.objects.create(image=image_file())
        raise RuntimeError("rollback")
    assert callbacks == []
    assert not Job.objects.exists()
    assert queue_size() == before


def test_delete_cancels_unfinished_jobs_and_keeps_finished(image_file):
    photo = Photo.objects.create(image=image_file())
    done = Job.objects.get()
    Job.objects.filter(pk=done.pk).update(status=Status.DONE, is_current=False)
    photo.image = image_file("b.png", color=(5, 5, 5))
    photo.save()
    open_job = Job.objects.get(status=Status.PENDING)
    photo.delete()
    open_job.refresh_from_db()
    assert open_job.status == Status.CANCELLED
    assert "deleted" in open_job.error_message
    assert Job.objects.get(pk=done.pk).status == Status.DONE
    assert ReviewEvent.objects.filter(job=open_job, action="cancelled").count() == 1


def test_clearing_the_file_cancels_its_job(image_file):
    photo = Photo.objects.create(image=image_file())
    photo.image = None
    photo.save()
    assert Job.objects.get().status == Status.CANCELLED


@pytest.mark.parametrize("model,kwargs", [(UUIDPhoto, {}), (SlugPhoto, {"slug": "héllo-1"})])
def test_uuid_and_string_primary_keys(model, kwargs, image_file):
    obj = model.objects.create(image=image_file(), **kwargs)
    job = Job.objects.get()
    assert job.object_id == str(obj.pk)
    assert job.content_object == obj
    obj.delete()
    assert Job.objects.get().status == Status.CANCELLED


def test_unregistered_model_is_ignored(image_file):
    Unregistered.objects.create(image=image_file())
    assert not Job.objects.exists()


def test_fixture_loading_creates_no_job(image_file):
    photo = Photo.objects.create(image=image_file())
    Job.objects.all().delete()
    data = serializers.serialize("json", [photo])
    photo.delete()
    for obj in serializers.deserialize("json", data):
        obj.save()
    assert not Job.objects.exists()


def test_deferred_field_falls_back_to_the_last_job(image_file):
    photo = Photo.objects.create(image=image_file())
    Job.objects.update(sha256=_sha(photo.image.storage, photo.image.name))
    partial = Photo.objects.defer("image").get(pk=photo.pk)
    partial.title = "edited"
    partial.save()
    assert Job.objects.count() == 1


def test_a_reused_string_pk_starts_fresh(image_file):
    first = SlugPhoto.objects.create(slug="same", image=image_file())
    first.delete()
    again = SlugPhoto.objects.create(slug="same", image=image_file("x.png", color=(1, 1, 1)))
    current = Job.objects.for_object(again).filter(is_current=True)
    assert [j.file_name for j in current] == [again.image.name]
