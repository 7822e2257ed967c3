"""Errors a provider raises; the pipeline maps each onto a job state.

| error         | job becomes                                   |
|---------------|-----------------------------------------------|
| MediaError    | failed, not retried (the file itself is bad)   |
| Throttled     | retried later, attempt not counted as failure  |
| Expired       | expired (the provider no longer has the result)|
| AuthError     | failed, surfaced in the admin and checks       |
| ProviderError | retried with backoff, then failed              |
"""


class ModerationError(Exception):
    """Base class. ``code`` is a short stable string stored on the job."""

    code = "error"

    def __init__(self, message: str = "", code: str | None = None):
        super().__init__(message)
        if code:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class MediaError(ModerationError):
    code = "media_error"


class Throttled(ModerationError):
    """Slow down. ``retry_after`` (seconds), when known, is when to try again; otherwise the
    pipeline backs off exponentially."""

    code = "throttled"

    def __init__(self, message: str = "", code: str | None = None,
                 retry_after: float | None = None):
        super().__init__(message, code)
        self.retry_after = retry_after


class Expired(ModerationError):
    code = "expired"


class AuthError(ModerationError):
    code = "auth_error"


class ProviderError(ModerationError):
    code = "provider_error"


class NotSupported(ModerationError):
    """The provider cannot do this (e.g. video on a provider without video)."""

    code = "not_supported"


class MalformedCallback(ValueError):
    """A posted body is not a callback of this provider (the callback view answers 400).

    Raised by :meth:`Provider.read_callback`: a retry of the same body cannot succeed."""
