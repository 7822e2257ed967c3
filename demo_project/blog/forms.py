from django import forms

from moderation.fields import StreamURLFormField

from .models import Post


class PostForm(forms.ModelForm):
    class Meta:
        model = Post
        fields = ["title", "image", "video", "stream_url"]
        widgets = {"stream_url": forms.URLInput(attrs={"placeholder": "https://…/index.m3u8"})}
        field_classes = {"stream_url": StreamURLFormField}  # rtmp, rtsp, srt, http(s)
        help_texts = {"video": "A video file (MP4, MOV, AVI, FLV, TS ...).",
                      "stream_url": "Instead of a file: a live stream "
                                    "(HLS .m3u8, RTMP, RTSP, SRT, FLV)."}

    def clean(self):
        data = super().clean()
        if not (data.get("image") or data.get("video") or data.get("stream_url")):
            raise forms.ValidationError("Attach an image or a video, or give a stream URL.")
        if data.get("video") and data.get("stream_url"):
            raise forms.ValidationError("Give a video file or a stream URL, not both.")
        return data
