from django.db import models
from django.urls import reverse

from moderation.fields import StreamURLField


class Post(models.Model):
    title = models.CharField(max_length=200)
    image = models.ImageField(upload_to="posts/images/%Y/%m/", blank=True)
    video = models.FileField(upload_to="posts/videos/%Y/%m/", blank=True, max_length=500)
    # Or a live stream (HLS, RTMP, RTSP, SRT, HTTP-FLV ...), moderated while it plays.
    stream_url = StreamURLField("or a stream URL", blank=True, max_length=500)
    # Set by moderation when a post is blocked (on_block="hide").
    hidden = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("blog:list")
