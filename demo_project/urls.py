from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from moderation.views.media import visible_media

urlpatterns = [
    path("admin/", admin.site.urls),
    path("moderation/", include("moderation.urls")),
    path("api/moderation/", include("moderation.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Uploads only once moderation lets their post be shown (or to moderators), never
    # MEDIA_ROOT wholesale: pending and blocked files stay private, DEBUG or not.
    path(f"{settings.MEDIA_URL.strip('/')}/<path:name>", visible_media, name="media"),
    path("", include("demo_project.blog.urls")),
]
