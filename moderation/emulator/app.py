"""The emulator as a plain WSGI application: read the request, verify it, route it, answer JSON.

Every request goes through the same gateway steps as on Alibaba Cloud (aliyun-protocol.md
§9): the body is read (``Content-Length`` or ``Transfer-Encoding: chunked``, bounded), the
signature is checked with :func:`.verify.verify_request` (ACS3 §5.1, RPC V1 §6, ROA §3.1),
then 2.0/IMM requests (``POST /``, or ``GET /`` as RPC clients such as ``@alicloud/pop-core``
send by default) are routed on the *signed* action and version, and ``/green/...`` (1.0, ROA,
POST only) on the path and signed version; 1.0 paths without a route answer "not
implemented yet". Gateway refusals use the §8.1 envelope and a non-2xx status; handlers
answer business results themselves (§8.2).

The app knows no operation: handlers arrive as a ``routes`` mapping (see :mod:`.guardrails`,
:mod:`.green` and :func:`.server.default_routes`, which registers them all).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from .config import EmulatorConfig
from .verify import (
    NonceCache,
    SignatureError,
    VerifiedRequest,
    form_decode,
    form_params,
    verify_request,
)

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json;charset=utf-8"  # §9 step 4
RPC_PATH = "/"  # 2.0 and IMM: every operation is POST / (§4.1); GET / for RPC clients too
RPC_METHODS = ("GET", "POST")
ROA_PREFIX = "/green/"  # 1.0: one path per operation (§2.2)
RECOMMEND_URL = "https://api.aliyun.com/troubleshoot?q={code}&requestId={request_id}"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class GatewayError(SignatureError):
    """A refusal by the API gateway itself (routing, limits): same §8.1 envelope as a
    signature error, so both are rendered by one function."""


@dataclass(frozen=True)
class EmulatorRequest:
    """One HTTP request as received: header names lower-cased, values verbatim (the V3
    verifier signs them as sent, §5.1 step 4), query decoded with form rules (§5.1 step 5).

    ``base_url`` is the emulator's own address as the client reached it
    (``http://127.0.0.1:8765``), for the URLs of temporary files: never the ``Host`` header,
    which a client may send without its port."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    base_url: str = ""

    @property
    def form(self) -> dict[str, str]:
        """Decoded form-body parameters (2.0 body operations, §4.1); empty for other bodies."""
        return form_params(self.headers, self.body)


@dataclass(frozen=True)
class Call:
    """What a handler gets: the verified request and its parameters (query + form body)."""

    request: EmulatorRequest
    verified: VerifiedRequest
    params: dict[str, str]
    config: EmulatorConfig

    @property
    def request_id(self) -> str:
        return self.request.request_id


@dataclass(frozen=True)
class Reply:
    """An HTTP status and the JSON body to send."""

    status: int
    body: dict[str, Any]


class LimitExceeded(Exception):
    """An account limit of the emulator was hit; answered in the caller's protocol by
    :func:`throttle_reply`."""


@dataclass
class Fault:
    """One kind of trouble to inject into the next ``count`` matching requests.

    ``kind``: ``"error"`` answers the gateway error ``code`` with HTTP ``status`` instead of
    handling the request; ``"throttle"`` answers the protocol's "slow down"; ``"delay"``
    sleeps ``seconds`` first (longer than the client's read timeout: a timeout), then handles
    the request anyway, as a slow server does. ``match`` is an action (2.0/IMM) or ROA path
    (1.0); empty matches every request.
    """

    kind: str
    count: int = 1
    match: str = ""
    status: int = 503
    code: str = "ServiceUnavailable"
    seconds: float = 0.0


class Faults:
    """Faults waiting to be injected, and how many of each were; thread-safe.

    Tests (and the storm benchmarks) script an outage with ``app.faults.add(Fault(...))``.
    """

    def __init__(self) -> None:
        self._pending: list[Fault] = []
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {}

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._pending.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def take(self, name: str) -> Fault | None:
        """The first pending fault for request ``name``, one use of it consumed."""
        with self._lock:
            for fault in self._pending:
                if fault.count > 0 and fault.match in ("", name):
                    fault.count -= 1
                    self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
                    if fault.count == 0:
                        self._pending.remove(fault)
                    return fault
        return None


class RequestRate:
    """Requests per whole wall-clock second, against ``limit`` (the account's QPS quota)."""

    def __init__(self, limit: int | None, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.clock = clock
        self._second = -1
        self._count = 0
        self._lock = threading.Lock()
        self.refused = 0

    def admit(self) -> bool:
        if not self.limit:
            return True
        with self._lock:
            second = int(self.clock())
            if second != self._second:
                self._second, self._count = second, 0
            if self._count >= self.limit:
                self.refused += 1
                return False
            self._count += 1
            return True


Handler = Callable[[Call], Reply]
# (action, version) -> handler for 2.0/IMM; (path, version) for 1.0 ROA paths (§2.2).
Routes = Mapping[tuple[str, str], Handler]


class EmulatorApp:
    """WSGI callable. One :class:`NonceCache` per app refuses replayed nonces (§5.1 step 7)."""

    def __init__(self, config: EmulatorConfig, routes: Routes) -> None:
        self.config = config
        self.routes = dict(routes)
        self.nonces = NonceCache()
        self.faults = Faults()
        self.rate = RequestRate(config.qps_limit)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            try:
                request = read_request(environ, self.config.max_request_bytes)
            except TimeoutError:  # the body stopped arriving (the server's read_timeout)
                raise GatewayError("RequestTimeout",
                                   "The request body was not received in time.", 408) from None
        except GatewayError as exc:
            reply = gateway_reply(exc, environ.get("HTTP_HOST", ""), str(uuid.uuid4()).upper())
            return respond(reply, reply.body["RequestId"], start_response)
        return respond(self.handle(request), request.request_id, start_response)

    def handle(self, request: EmulatorRequest) -> Reply:
        """The reply to one request; never raises (a bug becomes a §8.1 ``InternalError``)."""
        host = request.headers.get("host", "")
        try:
            return self._dispatch(request)
        except LimitExceeded as exc:
            return throttle_reply(request, str(exc))
        except SignatureError as exc:
            return gateway_reply(exc, host, request.request_id)
        except Exception:
            logger.exception("emulator failure on %s %s", request.method, request.path)
            error = GatewayError("InternalError", "The request processing has failed.", 500)
            return gateway_reply(error, host, request.request_id)

    def _dispatch(self, request: EmulatorRequest) -> Reply:
        rpc = request.path == RPC_PATH and request.method in RPC_METHODS
        roa = request.path.startswith(ROA_PREFIX) and request.method == "POST"
        if not (rpc or roa):
            raise _api_not_found(f"{request.method} {request.path}")
        verified = verify_request(
            request.method,
            request.path,
            request.query,
            request.headers,
            request.body,
            self.config.secret_for,
            max_skew=self.config.max_skew,
            nonces=self.nonces,
        )
        if self.config.token_refused(verified.access_key_id, verified.security_token):
            raise GatewayError("InvalidSecurityToken.MismatchWithAccessKey",
                               "Specified SecurityToken mismatch with the AccessKey.", 400)
        handler: Handler | None
        if request.path != RPC_PATH:
            handler = self._roa_handler(request.path, verified)
        else:
            handler = self.routes.get((verified.action or "", verified.version or ""))
        if handler is None:
            raise self._unknown_action(verified)
        fault = self.faults.take((verified.action or "") if request.path == RPC_PATH
                                 else request.path)
        if fault is not None and fault.kind == "error":
            raise GatewayError(fault.code, "injected fault", fault.status)
        if fault is not None and fault.kind == "throttle":
            raise LimitExceeded("injected throttling")
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if not self.rate.admit():
            raise LimitExceeded(f"more than {self.rate.limit} requests in one second")
        params = {**request.query, **request.form}
        return handler(Call(request, verified, params, self.config))

    def _roa_handler(self, path: str, verified: VerifiedRequest) -> Handler:
        """The 1.0 handler of ``path``; ``InvalidVersion`` for a known path at another version."""
        handler = self.routes.get((path, verified.version or ""))
        if handler is not None:
            return handler
        if any(route_path == path for route_path, _ in self.routes):
            raise GatewayError(
                "InvalidVersion",
                f"Specified parameter Version is not valid ({verified.version}).",
                400,
            )
        raise _api_not_found(
            f"POST {path}: this Content Moderation 1.0 operation is not implemented by the "
            "emulator yet"
        )

    def _unknown_action(self, verified: VerifiedRequest) -> GatewayError:
        """§8.1 ``InvalidAction.NotFound``; ``InvalidVersion`` when only the version is off."""
        if any(action == verified.action for action, _ in self.routes):
            return GatewayError(
                "InvalidVersion",
                f"Specified parameter Version is not valid ({verified.version}).",
                400,
            )
        return GatewayError(
            "InvalidAction.NotFound",
            f"Specified api is not found, please check your url and method ({verified.action}).",
            400,
        )


def _api_not_found(detail: str) -> GatewayError:
    """§8.1 ``InvalidApi.NotFound`` (HTTP 404) for a path or method the gateway does not serve."""
    return GatewayError(
        "InvalidApi.NotFound",
        f"Specified api is not found, please check your url and method. ({detail})",
        404,
    )


def read_request(environ: Mapping[str, Any], max_body: int) -> EmulatorRequest:
    """An :class:`EmulatorRequest` from a WSGI environ. The body is read by its
    ``Content-Length`` or, when sent ``Transfer-Encoding: chunked`` (as Node.js clients stream
    bodies; an HTTP/1.1 server must accept it), chunk by chunk; either way a body above
    ``max_body`` is refused without reading it all."""
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated") and not environ.get("CONTENT_LENGTH"):
        # A server that de-chunks itself (gunicorn, uWSGI) ends the input at the body's end.
        body = stream.read(max_body + 1)
        if len(body) > max_body:
            raise _too_large(max_body)
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = read_chunked(stream, max_body)  # chunked wins over any Content-Length (RFC 9112)
    else:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise GatewayError("InvalidParameter", "Content-Length is not a number.",
                               400) from None
        if length > max_body:
            raise _too_large(max_body)
        body = stream.read(length) if length > 0 else b""
    return EmulatorRequest(
        method=environ.get("REQUEST_METHOD", "GET").upper(),
        path=environ.get("PATH_INFO") or "/",
        query=form_decode(environ.get("QUERY_STRING", "")),
        headers=headers,
        body=body,
        base_url=server_url(environ),
    )


#: WSGI environ key under which :mod:`.server` puts the address the client connected to.
SERVER_URL_KEY = "moderation.emulator.server_url"


def server_url(environ: Mapping[str, Any]) -> str:
    """``http://host:port`` of this server: what :mod:`.server` recorded from the accepted
    socket, else the WSGI ``SERVER_NAME``/``SERVER_PORT`` (another WSGI server)."""
    recorded = environ.get(SERVER_URL_KEY)
    if recorded:
        return str(recorded)
    host = str(environ.get("SERVER_NAME") or "127.0.0.1")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{environ.get('SERVER_PORT') or 80}"


def _too_large(max_body: int) -> GatewayError:
    return GatewayError("InvalidParameter", f"The request body is larger than {max_body} bytes.",
                        400)


def _bad_chunking(detail: str) -> GatewayError:
    return GatewayError("InvalidParameter", f"The chunked request body is malformed ({detail}).",
                        400)


def read_chunked(stream: Any, max_body: int) -> bytes:
    """A ``Transfer-Encoding: chunked`` body (RFC 9112 §7.1): hex size lines (extensions
    ignored), data, CRLF, up to the zero chunk, then trailers (discarded) up to a blank line.
    Refused once the data passes ``max_body`` or a line is implausibly long."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(1024)
        if not line.endswith(b"\n"):
            raise _bad_chunking("size line")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _bad_chunking("size line") from None
        if size < 0:
            raise _bad_chunking("size line")
        if size == 0:
            break
        total += size
        if total > max_body:
            raise _too_large(max_body)
        data = stream.read(size)
        if len(data) != size or stream.readline(3) not in (b"\r\n", b"\n"):
            raise _bad_chunking("chunk data")
        parts.append(data)
    for _ in range(100):  # trailer fields, then the final blank line
        line = stream.readline(8192)
        if line in (b"\r\n", b"\n", b""):
            return b"".join(parts)
    raise _bad_chunking("too many trailer fields")


def throttle_reply(request: EmulatorRequest, reason: str) -> Reply:
    """Each protocol's documented "slow down": 1.0 business code 588 EXCEED_QUOTA (§2.6),
    2.0 business code 403 "QPS limit exceeded" (api-reference §3.5), IMM the gateway's
    ``Throttling.User`` (HTTP 429, §8.1)."""
    request_id = request.request_id
    if request.path.startswith(ROA_PREFIX):
        return Reply(200, {"code": 588, "msg": f"EXCEED_QUOTA: {reason}",
                           "requestId": request_id})
    if request.headers.get("x-acs-version") == "2022-03-02" or "2022-03-02" in request.query.get(
            "Version", ""):
        return Reply(200, {"Code": 403, "Message": f"QPS limit exceeded: {reason}",
                           "Msg": f"QPS limit exceeded: {reason}", "RequestId": request_id})
    error = GatewayError("Throttling.User", f"Request was denied due to user flow control: "
                         f"{reason}", 429)
    return gateway_reply(error, request.headers.get("host", ""), request_id)


def gateway_reply(error: SignatureError, host: str, request_id: str) -> Reply:
    """The §8.1 gateway envelope: Upper-camel keys, the error's own non-2xx status."""
    body = {
        "RequestId": request_id,
        "HostId": host,
        "Code": error.code,
        "Message": error.message,
        "Recommend": RECOMMEND_URL.format(code=error.code, request_id=request_id),
    }
    return Reply(error.http_status, body)


def respond(reply: Reply, request_id: str, start_response: StartResponse) -> list[bytes]:
    """Send ``reply`` as JSON; the 2.0 SDK fails on any non-JSON body (§9 step 4)."""
    payload = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
    status = HTTPStatus(reply.status)
    start_response(
        f"{status.value} {status.phrase}",
        [
            ("Content-Type", JSON_CONTENT_TYPE),
            ("Content-Length", str(len(payload))),
            ("x-acs-request-id", request_id),
        ],
    )
    return [payload]
