"""Admin for jobs, evidence and hash libraries (the first floor of the review console)."""

from .jobs import HashEntryAdmin, JobAdmin, ModeratedAdminMixin, ReviewEventAdmin

__all__ = ["HashEntryAdmin", "JobAdmin", "ModeratedAdminMixin", "ReviewEventAdmin"]
