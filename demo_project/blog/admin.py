from django.contrib import admin

from moderation.admin import ModeratedAdminMixin

from .models import Post


@admin.register(Post)
class PostAdmin(ModeratedAdminMixin, admin.ModelAdmin):
    list_display = ("title", "hidden", "moderation_status", "created_at")
    list_filter = ("hidden",)
