"""HTTP(S) downloads whose every connection goes to a vetted address (evidence copies).

requests resolves a host when it connects; checking the URL first leaves a window in
which a DNS answer can change (rebinding), and a redirect names a new host. Here the
connection itself resolves, vets every address (``remote.vetted_addresses``) and connects
to a vetted one, while TLS still checks the certificate against the host name. Redirects
are followed by :func:`fetch` itself, a bounded number of times, each hop through the same
connections. Environment proxies are ignored: the guard must see the real destination.
"""

from __future__ import annotations

from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from .providers.errors import MediaError
from .remote import check_remote_url, vetted_addresses

MAX_REDIRECTS = 3
REDIRECTS = (301, 302, 303, 307, 308)


class _VettedConnect:
    """Mixin for urllib3 connections: connect only to an address the guard accepted."""

    def _new_conn(self):  # type: ignore[no-untyped-def]
        host = self._dns_host  # type: ignore[attr-defined]
        error: Exception | None = None
        try:
            for address in vetted_addresses(host, self.port):  # type: ignore[attr-defined]
                self._dns_host = address
                try:
                    return super()._new_conn()  # type: ignore[misc]
                except NewConnectionError as exc:
                    error = exc
        finally:
            self._dns_host = host
        raise error or NewConnectionError(self, f"no address for {host}")  # type: ignore[arg-type]


class VettedHTTPConnection(_VettedConnect, HTTPConnection):
    pass


class VettedHTTPSConnection(_VettedConnect, HTTPSConnection):
    pass


class _VettedHTTPPool(HTTPConnectionPool):
    ConnectionCls = VettedHTTPConnection


class _VettedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = VettedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _VettedHTTPPool,
                                                   "https": _VettedHTTPSPool}


def guarded_session() -> requests.Session:
    """A session whose connections are vetted; environment proxies are not used."""
    session = requests.Session()
    session.trust_env = False
    adapter = GuardedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def fetch(url: str, *, max_bytes: int, timeout: tuple[float, float],
          max_redirects: int = MAX_REDIRECTS) -> bytes:
    """The body at ``url`` (a 200 answer), following at most ``max_redirects`` redirects.

    Raises ``MediaError`` (``forbidden_address``, ``unsupported_url``, ``too_large``,
    ``fetch_failed``) or ``requests.RequestException``.
    """
    with guarded_session() as session:
        for _ in range(max_redirects + 1):
            check_remote_url(url, schemes=("http", "https"))
            with session.get(url, timeout=timeout, stream=True, allow_redirects=False) as answer:
                if answer.status_code in REDIRECTS and answer.headers.get("Location"):
                    url = urljoin(url, answer.headers["Location"])
                    continue
                if answer.status_code != 200:
                    raise MediaError(f"the server answered {answer.status_code}",
                                     code="fetch_failed")
                return _read(answer, max_bytes)
    raise MediaError(f"more than {max_redirects} redirects", code="fetch_failed")


def _read(answer: requests.Response, max_bytes: int) -> bytes:
    data = bytearray()
    for chunk in answer.iter_content(64 * 1024):
        data += chunk
        if len(data) > max_bytes:
            raise MediaError(f"over {max_bytes} bytes", code="too_large")
    return bytes(data)
