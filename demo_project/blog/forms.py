from django import forms

from .models import Post


class PostForm(forms.ModelForm):
    class Meta:
        model = Post
        fields = ["title", "image", "video"]

    def clean(self):
        data = super().clean()
        if not data.get("image") and not data.get("video"):
            raise forms.ValidationError("Attach an image or a video.")
        return data
