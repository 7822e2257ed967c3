"""Admin: jobs and the review console (jobs.py, console.py; the console's queue page and
job page data in queue_page.py and review_page.py), hash libraries (libraries.py), and
what a host ModelAdmin reuses (mixins.py)."""

from .jobs import JobAdmin, ReviewEventAdmin
from .libraries import HashLibraryAdmin
from .mixins import CurrentJobsInline, ModeratedAdminMixin

__all__ = ["CurrentJobsInline", "HashLibraryAdmin", "JobAdmin", "ModeratedAdminMixin",
           "ReviewEventAdmin"]
