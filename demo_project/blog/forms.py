from django import forms

from .models import Post


class HttpsFirstURLField(forms.URLField):
    """A URL typed without a scheme is taken as https (Django 6's default)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)


class PostForm(forms.ModelForm):
    class Meta:
        model = Post
        fields = ["title", "image", "video", "stream_url"]
        widgets = {"stream_url": forms.URLInput(attrs={"placeholder": "https://…/index.m3u8"})}
        field_classes = {"stream_url": HttpsFirstURLField}
        help_texts = {"video": "A video file (MP4, MOV, AVI, FLV, TS ...).",
                      "stream_url": "Instead of a file: a live stream (HLS .m3u8, RTMP, FLV)."}

    def clean(self):
        data = super().clean()
        if not (data.get("image") or data.get("video") or data.get("stream_url")):
            raise forms.ValidationError("Attach an image or a video, or give a stream URL.")
        if data.get("video") and data.get("stream_url"):
            raise forms.ValidationError("Give a video file or a stream URL, not both.")
        return data
