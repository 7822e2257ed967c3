"""A database outage answers 503 with a JSON message and ``Retry-After``, not a 500 page.

Wired into the API's views (:class:`OutageAware`) rather than ``REST_FRAMEWORK
["EXCEPTION_HANDLER"]``, so a site gets it without changing its settings; every other
exception still goes to the site's own handler.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)

#: seconds a client is asked to wait before trying again
RETRY_AFTER = 30
#: what the database driver raises when the server is unreachable, locked or gone away
OUTAGE_ERRORS = (OperationalError, InterfaceError)


def unavailable(exc: Exception) -> Response:
    logger.error("database unavailable, API answered 503: %s", exc)
    set_rollback()
    return Response(
        {"detail": "The database is unavailable; try again later.",
         "code": "database_unavailable"},
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER)},
    )


class OutageAware:
    """APIView mixin: database outages become 503, the rest goes to the site's handler."""

    def get_exception_handler(self):
        site_handler = super().get_exception_handler()  # type: ignore[misc]

        def handler(exc: Exception, context: dict[str, Any]):
            if isinstance(exc, OUTAGE_ERRORS):
                return unavailable(exc)
            return site_handler(exc, context)

        return handler
