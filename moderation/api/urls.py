"""Include with ``path("api/moderation/", include("moderation.api.urls"))``."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views

app_name = "moderation-api"

router = DefaultRouter()
router.register("jobs", views.JobViewSet, basename="job")
router.register("library", views.HashEntryViewSet, basename="hashentry")

urlpatterns = [
    path("moderate/", views.ModerateView.as_view(), name="moderate"),
    path("stats/labels/", views.LabelCountsView.as_view(), name="stats-labels"),
    path("stats/timeline/", views.TimelineView.as_view(), name="stats-timeline"),
    path("", include(router.urls)),
]
