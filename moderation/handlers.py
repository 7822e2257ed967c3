"""Model signal receivers: new or changed media -> jobs, enqueued when the transaction commits.

Change detection, cheapest first:
1. a file just assigned (not yet committed to storage) is new;
2. a stored name different from the one loaded from the database is new;
3. the same name after a fresh assignment (an overwriting storage) is compared by sha256
   with the last job of that field.
A save that changes no registered field costs no query.
"""

from __future__ import annotations

from functools import partial

from django.core.files import File
from django.db import transaction
from django.db.models import signals
from django.db.models.fields.files import FieldFile

from . import pipeline
from .media import stored_name
from .registry import registry

_SNAPSHOT = "_moderation_names"
_FRESH = "_moderation_fresh"


def connect(model) -> None:
    uid = f"moderation:{model._meta.label}"
    signals.post_init.connect(remember_names, sender=model, dispatch_uid=uid)
    signals.pre_save.connect(mark_fresh_uploads, sender=model, dispatch_uid=uid)
    signals.post_save.connect(moderate_changed_fields, sender=model, dispatch_uid=uid)
    signals.post_delete.connect(cancel_jobs_of_deleted, sender=model, dispatch_uid=uid)


def disconnect(model) -> None:
    uid = f"moderation:{model._meta.label}"
    signals.post_init.disconnect(sender=model, dispatch_uid=uid)
    signals.pre_save.disconnect(sender=model, dispatch_uid=uid)
    signals.post_save.disconnect(sender=model, dispatch_uid=uid)
    signals.post_delete.disconnect(sender=model, dispatch_uid=uid)


def remember_names(sender, instance, **kwargs) -> None:
    registration = registry.get(sender)
    if registration is None:  # unregistered while a save was under way
        return
    names = {}
    for name in registration.fields:
        attname = sender._meta.get_field(name).attname
        if attname in instance.__dict__:  # never load a deferred field
            names[name] = stored_name(instance.__dict__[attname])
    instance.__dict__[_SNAPSHOT] = names


def mark_fresh_uploads(sender, instance, raw=False, **kwargs) -> None:
    if raw:
        return
    registration = registry.get(sender)
    if registration is None:
        return
    fresh = set()
    for name in registration.fields:
        attname = sender._meta.get_field(name).attname
        value = instance.__dict__.get(attname)
        # A File assigned but not yet read back through the descriptor is raw here.
        # (FieldFile sets _committed; django-stubs does not declare it)
        committed = isinstance(value, FieldFile) and getattr(value, "_committed", False)
        if isinstance(value, File) and not committed:
            fresh.add(name)
    instance.__dict__[_FRESH] = fresh


def moderate_changed_fields(sender, instance, created, raw=False, update_fields=None,
                            using=None, **kwargs) -> None:
    if raw:
        return
    registration = registry.get(sender)
    if registration is None:
        return
    fields = registration.fields
    if update_fields is not None:
        fields = [f for f in fields if f in update_fields]
    snapshot = instance.__dict__.get(_SNAPSHOT, {})
    fresh = instance.__dict__.pop(_FRESH, set())
    for name in fields:
        current = stored_name(getattr(instance, name))
        previous = None if created else snapshot.get(name)
        if not current:
            if previous:
                pipeline.cancel_field_jobs(instance, name, reason="the file was removed")
            snapshot[name] = current
            continue
        if not created and current == previous and name not in fresh:
            continue
        sha256 = ""
        if not created and (current == previous or previous is None):
            # Same name (or unknown, the field was deferred): look at the bytes.
            last = pipeline.last_job(instance, name)
            if last is not None and last.file_name == current:
                sha256 = pipeline.file_sha256(getattr(instance, name))
                if sha256 == last.sha256:
                    snapshot[name] = current
                    continue
        job = pipeline.create_job(instance, registration, name, sha256=sha256, created=created)
        transaction.on_commit(partial(pipeline.enqueue, job.pk), using=using)
        snapshot[name] = current
    instance.__dict__[_SNAPSHOT] = snapshot


def cancel_jobs_of_deleted(sender, instance, **kwargs) -> None:
    pipeline.cancel_object_jobs(instance, reason="the object was deleted")


# The registry calls these for every model registered (and unregistered) from now on, and
# for those registered before this module was imported (AppConfig.ready imports it).
registry.subscribe(connect, disconnect)
