"""Include with ``path("moderation/", include("moderation.urls"))``."""

from django.urls import path

from . import views

app_name = "moderation"

urlpatterns = [
    path("evidence/frame/<int:pk>/", views.frame_thumbnail, name="frame-thumbnail"),
    path("evidence/slice/<int:pk>/", views.slice_clip, name="slice-clip"),
]
