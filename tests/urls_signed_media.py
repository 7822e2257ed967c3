"""Test-only URLconf: the signed media view alone (the app's urls.py wires it for real)."""

from django.urls import path

from moderation.views.media import signed_media

urlpatterns = [path("moderation/media/<str:token>/", signed_media)]
