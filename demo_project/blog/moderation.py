"""Autodiscovered by the moderation app: which fields of this app are moderated."""

import moderation

from .models import Post

moderation.register(
    Post,
    fields=["image", "video", "stream_url"],
    on_block="hide",
    kinds={"video": "video", "stream_url": "live"},
)
