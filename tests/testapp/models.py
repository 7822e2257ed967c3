import uuid

from django.db import models


class Photo(models.Model):
    """Integer pk, one image field; registered by the tests themselves."""

    title = models.CharField(max_length=100, blank=True)
    image = models.ImageField(upload_to="photos/", blank=True)
    hidden = models.BooleanField(default=False)


class UUIDPhoto(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    image = models.ImageField(upload_to="uuid/", blank=True)
    hidden = models.BooleanField(default=False)


class SlugPhoto(models.Model):
    slug = models.CharField(max_length=50, primary_key=True)
    image = models.ImageField(upload_to="slug/", blank=True)
    hidden = models.BooleanField(default=False)


class Unregistered(models.Model):
    """Same shape as Photo, never registered: the baseline of the save benchmark."""

    title = models.CharField(max_length=100, blank=True)
    image = models.ImageField(upload_to="plain/", blank=True)
    hidden = models.BooleanField(default=False)
