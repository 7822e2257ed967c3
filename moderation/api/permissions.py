"""Who may do what through the API: the same permissions as in the admin."""

from __future__ import annotations

from rest_framework.permissions import BasePermission, DjangoModelPermissions


class CanViewJobs(BasePermission):
    """Reading jobs, frames, slices and statistics needs ``moderation.view_job``."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm("moderation.view_job"))


class CanReview(BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm("moderation.view_job")
                    and request.user.has_perm("moderation.review_job"))


class CanSendFeedback(BasePermission):
    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm("moderation.view_job")
                    and request.user.has_perm("moderation.send_feedback"))


class CanModerate(BasePermission):
    """Moderating a file on demand creates a job: ``moderation.add_job``."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm("moderation.add_job"))


class LibraryPermissions(DjangoModelPermissions):
    """HashEntry model permissions, reading included (libraries reveal what is blocked)."""

    perms_map = {**DjangoModelPermissions.perms_map,
                 "GET": ["%(app_label)s.view_%(model_name)s"],
                 "HEAD": ["%(app_label)s.view_%(model_name)s"]}
