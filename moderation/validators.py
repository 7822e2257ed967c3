"""Validation of stream URLs typed by users (a post's live stream, an API call).

Django's ``URLValidator`` knows http(s) and ftp only; the local engine reads the schemes in
``remote.STREAM_SCHEMES`` (rtmp, rtmps, rtsp, srt, http, https). A literal private address
is refused at once; names are not resolved here (the answer may change by the time the
stream is read): the network guard vets every connection when the job runs.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.deconstruct import deconstructible

from .remote import STREAM_SCHEMES, is_allowed


@deconstructible
class StreamURLValidator(URLValidator):
    """A URL with a stream scheme and a host that is not a literal private address."""

    message = "Enter a stream URL (rtmp, rtmps, rtsp, srt, http or https)."

    def __init__(self, schemes: tuple[str, ...] | list[str] = STREAM_SCHEMES, **kwargs):
        super().__init__(schemes=list(schemes), **kwargs)

    def __call__(self, value: str) -> None:
        super().__call__(value)
        host = (urlsplit(value).hostname or "").strip("[]")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return  # a name: vetted when the stream is opened
        if not is_allowed(address):
            raise ValidationError("This address is private: it cannot be moderated.",
                                  code="forbidden_address", params={"value": value})
