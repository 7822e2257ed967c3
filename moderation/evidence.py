"""Copy a provider's evidence (frame and clip URLs) into our own storage at ingest.

Provider URLs expire (Alibaba's TempUrl after 30 minutes), so a moderator opening the job
tomorrow needs our copy. Fetches are limited in size and time and every connection,
redirects included, goes only to vetted public addresses (``guarded_http``; unless
ALLOW_PRIVATE_ADDRESSES or ALLOWED_NETWORKS); a failed copy is logged and leaves the row
without evidence rather than losing the result.
"""

from __future__ import annotations

import logging

import requests

from .guarded_http import fetch
from .providers.errors import MediaError

logger = logging.getLogger(__name__)

MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
TIMEOUT = (5, 15)  # connect, read seconds


def download(url: str) -> bytes | None:
    """The bytes at ``url``, or None (logged) when they cannot be had within the limits."""
    try:
        return fetch(url, max_bytes=MAX_EVIDENCE_BYTES, timeout=TIMEOUT)
    except (requests.RequestException, MediaError) as exc:
        logger.warning("could not copy evidence from %s: %s", url.split("?", 1)[0], exc)
        return None
