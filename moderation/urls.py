"""Include with ``path("moderation/", include("moderation.urls"))``."""

from django.urls import path

from .views import callbacks, evidence, media

app_name = "moderation"

urlpatterns = [
    path("evidence/frame/<int:pk>/", evidence.frame_thumbnail, name="frame-thumbnail"),
    path("evidence/slice/<int:pk>/", evidence.slice_clip, name="slice-clip"),
    # The original file of a job, for the review console's player (view_job, ranges).
    path("evidence/job/<int:pk>/media/", evidence.job_media, name="job-media"),
    # Signed, expiring download of a site's media file for a remote provider.
    path("media/<str:token>/", media.signed_media, name="signed-media"),
    # Results pushed by a provider (Alibaba callbacks, checksum-verified).
    path("callbacks/<str:provider_alias>/", callbacks.receive, name="callback"),
]
