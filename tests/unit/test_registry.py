from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import models

import moderation
from moderation.media import guess_kind
from moderation.registry import AlreadyRegistered, NotRegistered
from tests.testapp.models import Photo


def test_register_validates_fields(register):
    with pytest.raises(ImproperlyConfigured, match="no field 'nope'"):
        register(Photo, fields=["nope"])
    with pytest.raises(ImproperlyConfigured, match="BooleanField"):
        register(Photo, fields=["image"], on_block="hide", hide_field="title")
    with pytest.raises(ImproperlyConfigured, match="expected a FileField"):
        register(Photo, fields=["hidden"])
    with pytest.raises(ImproperlyConfigured, match="policy"):
        register(Photo, fields=["image"], policy={"high": "explode"})
    with pytest.raises(ImproperlyConfigured, match="kind"):
        register(Photo, fields=["image"], kinds={"image": "hologram"})
    with pytest.raises(ImproperlyConfigured, match="on_block"):
        register(Photo, fields=["image"], on_block="vanish")
    with pytest.raises(ImproperlyConfigured, match="interval"):
        register(Photo, fields=["image"], interval=0.5)
    with pytest.raises(ImproperlyConfigured, match="max_frames"):
        register(Photo, fields=["image"], max_frames=3601)


def test_register_twice_and_unregister(register):
    register(Photo)
    with pytest.raises(AlreadyRegistered):
        moderation.register(Photo, ["image"])
    moderation.unregister(Photo)
    with pytest.raises(NotRegistered):
        moderation.unregister(Photo)


def test_demo_post_is_registered_by_autodiscovery():
    from demo_project.blog.models import Post
    from moderation.registry import registry

    reg = registry.get(Post)
    assert reg is not None and reg.fields == ["image", "video", "stream_url"]
    assert reg.on_block == "hide" and reg.kinds == {"video": "video", "stream_url": "live"}


@pytest.mark.parametrize("field,name,kind", [
    (models.ImageField(), "a.bin", "image"),
    (models.FileField(), "clip.MP4", "video"),
    (models.FileField(), "talk.mp3", "audio"),
    (models.FileField(), "pic.jpeg", "image"),
    (models.FileField(), "movie.rmvb", "video"),
    (models.URLField(), "https://cdn.example.com/live/index.m3u8?token=1", "live"),
    (models.URLField(), "rtmp://live.example.com/app/stream", "live"),
    (models.URLField(), "https://cdn.example.com/v.mp4", "video"),
])
def test_guess_kind(field, name, kind):
    assert guess_kind(field, name) == kind
