"""Operator tasks as plain functions; the management commands (moderation_scan, _poll,
_retry, _cancel, _purge, _stats) only read arguments and print what these return.

Bad arguments raise :class:`BadInput` (a ValueError); the commands turn it into exit
status 2.
"""

from .common import BadInput, Progress, RateLimiter, parse_when, registered_model
from .jobs import cancel_jobs, poll_once, retry_jobs
from .purge import PurgeReport, purge, purgeable
from .scan import ScanReport, date_field_of, scan
from .stats import stats

__all__ = [
    "BadInput", "Progress", "PurgeReport", "RateLimiter", "ScanReport", "cancel_jobs",
    "date_field_of", "parse_when", "poll_once", "purge", "purgeable", "registered_model",
    "retry_jobs", "scan", "stats",
]
