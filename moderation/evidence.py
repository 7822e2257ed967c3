"""Copy a provider's evidence (frame and clip URLs) into our own storage at ingest.

Provider URLs expire (Alibaba's TempUrl after 30 minutes), so a moderator opening the job
tomorrow needs our copy. Fetches are limited in size and time and go only to public
addresses (unless ALLOW_PRIVATE_ADDRESSES); a failed copy is logged and leaves the row
without evidence rather than losing the result.
"""

from __future__ import annotations

import logging

import requests

from .providers.errors import MediaError
from .remote import check_remote_url

logger = logging.getLogger(__name__)

MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
TIMEOUT = (5, 15)  # connect, read seconds


def download(url: str) -> bytes | None:
    """The bytes at ``url``, or None (logged) when they cannot be had within the limits."""
    try:
        check_remote_url(url, schemes=("http", "https"))
        with requests.get(url, timeout=TIMEOUT, stream=True, allow_redirects=False) as answer:
            answer.raise_for_status()
            data = bytearray()
            for chunk in answer.iter_content(64 * 1024):
                data += chunk
                if len(data) > MAX_EVIDENCE_BYTES:
                    raise MediaError(f"over {MAX_EVIDENCE_BYTES} bytes", code="too_large")
            return bytes(data)
    except (requests.RequestException, MediaError) as exc:
        logger.warning("could not copy evidence from %s: %s", url.split("?", 1)[0], exc)
        return None
