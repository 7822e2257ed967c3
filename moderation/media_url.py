"""A URL from which Alibaba Cloud can download a stored file.

Alibaba's services fetch media themselves (API reference §3.2 ``imageUrl``; §3.3 ``url``);
they never receive bytes. A storage that already hands out absolute URLs (S3/OSS presigned
URLs, a CDN) is used as is. Otherwise the app serves the file itself for a short while:
``<PUBLIC_BASE_URL>/moderation/media/<token>/``, where the token is the storage name signed
with a timestamp (``moderation.views.media.signed_media`` checks it).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from django.core.files.storage import Storage, default_storage, storages
from django.core.signing import TimestampSigner

from .conf import moderation_settings

SALT = "moderation.media"
#: Seconds a signed media URL stays valid: long enough for a provider to fetch it after a
#: queued submit and a few retries of its own, short enough to be useless when leaked.
MAX_AGE = 1800
URL_PREFIX = "moderation/media"


def signer() -> TimestampSigner:
    return TimestampSigner(salt=SALT)


def sign_name(name: str) -> str:
    """A URL-path-safe token (no ``/``) carrying the storage name and the signing time."""
    return signer().sign_object(name)


def unsign_name(token: str, max_age: float = MAX_AGE) -> str:
    """The storage name in ``token``; ``BadSignature``/``SignatureExpired`` when forged/old."""
    name = signer().unsign_object(token, max_age=max_age)
    if not isinstance(name, str):
        raise TypeError("token does not carry a storage name")
    return name


def _is_default(storage: Storage) -> bool:
    """The signed view serves the default storage only (the site's media, never evidence)."""
    wrapped = getattr(default_storage, "_wrapped", None)
    return storage is default_storage or storage is wrapped or storage is storages["default"]


def _absolute_url(storage: Storage, name: str) -> str | None:
    try:
        url = storage.url(name)
    except (NotImplementedError, ValueError):  # e.g. the evidence storage refuses on purpose
        return None
    if url and urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc:
        return url
    return None


def public_url_for(storage: Storage, name: str) -> str | None:
    """An http(s) URL for ``name`` in ``storage`` that a remote service can fetch, or None.

    The storage's own URL when it is absolute; else a signed, expiring URL of this site when
    ``PUBLIC_BASE_URL`` is set and ``storage`` is the default storage (the only one the view
    serves). None means: the provider cannot be given this file.
    """
    url = _absolute_url(storage, name)
    if url:
        return url
    base = str(moderation_settings.PUBLIC_BASE_URL or "").rstrip("/")
    if not base or not _is_default(storage):
        return None
    return f"{base}/{URL_PREFIX}/{quote(sign_name(name), safe=':')}/"
