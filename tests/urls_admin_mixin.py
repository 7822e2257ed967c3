"""Test-only URLconf: an admin site where the test app's Photo has a host ModelAdmin
with the ModeratedAdminMixin, beside the moderation console."""

from django.contrib import admin
from django.urls import include, path

from moderation.admin import ModeratedAdminMixin

from .testapp.models import Photo


class PhotoAdmin(ModeratedAdminMixin, admin.ModelAdmin):
    list_display = ("title", "hidden", "moderation_status")


site = admin.AdminSite(name="admin")
for model, model_admin in admin.site._registry.items():  # the console, users, groups
    site.register(model, type(model_admin))
site.register(Photo, PhotoAdmin)

urlpatterns = [
    path("admin/", site.urls),
    path("moderation/", include("moderation.urls")),
]
