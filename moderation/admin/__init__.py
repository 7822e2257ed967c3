"""Admin: jobs and the review console (jobs.py, console.py), hash libraries (libraries.py)."""

from .jobs import JobAdmin, ModeratedAdminMixin, ReviewEventAdmin
from .libraries import HashLibraryAdmin

__all__ = ["HashLibraryAdmin", "JobAdmin", "ModeratedAdminMixin", "ReviewEventAdmin"]
