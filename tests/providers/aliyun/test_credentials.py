"""Credentials as deployments hold them (moderation/providers/aliyun/credentials.py): the
environment, profile files, the ECS RAM role from a metadata service stand-in, an OIDC role
from an STS stand-in (both real HTTP servers on loopback that count what they serve), refresh
before expiry, and Alibaba providers signing with chain credentials and an STS token against
the emulator, which checks the token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import override_settings

from moderation.checks import check_settings
from moderation.providers import AuthError, Media, ModerationRequest
from moderation.providers.aliyun import credentials as creds
from moderation.providers.aliyun.credentials import (
    ChainProvider,
    CliProfileProvider,
    Credentials,
    CredentialsError,
    CredentialsFetchError,
    CredentialsUnavailable,
    EcsRamRoleProvider,
    EnvironmentProvider,
    OidcRoleProvider,
    ProfileProvider,
    SdkProvider,
    default_chain,
    provider_for,
)
from moderation.providers.aliyun.green import GreenProvider
from moderation.providers.aliyun.guardrails import GuardrailsProvider
from tests.conftest import ROOT, SAMPLES, emulator_fixture

pytestmark = pytest.mark.usefixtures("no_proxy", "clean_env")

AK_ID, AK_SECRET = "LTAI5tCredsKeyId00000001", "CredsSecret0000000000000001"
STS_ID, STS_SECRET, STS_TOKEN = "STS.NCredsTempKey01", "StsSecret000000000001", "CAIS-token-01=="
ROLE = "moderation-role"


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No ALIBABA_CLOUD_* variable and an empty home: only what a test sets is found."""
    for name in list(os.environ):
        if name.startswith("ALIBABA_CLOUD_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    creds.forget_shared()
    yield home
    creds.forget_shared()


# --- stand-ins --------------------------------------------------------------------------------


@dataclass
class StandIn:
    """A loopback HTTP server whose answers a test changes and whose requests it counts."""

    url: str = ""
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, method: str, path_start: str = "") -> int:
        with self.lock:
            return sum(1 for m, p, _, _ in self.requests
                       if m == method and p.startswith(path_start))


@dataclass
class Metadata(StandIn):
    """The ECS metadata service: IMDSv2 tokens, the role name, the role's credentials."""

    role: str = ROLE
    credentials: dict[str, str] = field(default_factory=lambda: {
        "AccessKeyId": STS_ID, "AccessKeySecret": STS_SECRET, "SecurityToken": STS_TOKEN})
    expiration: float = field(default_factory=lambda: time.time() + 6 * 3600)
    tokens: bool = True  # IMDSv2 answered (else 404, an old instance)
    status: int = 200  # of the credential answers
    delay: float = 0.0  # seconds each credential answer takes (races)
    issued: list[str] = field(default_factory=list)

    def answer(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
        if method == "PUT" and path == "/latest/api/token":
            if not self.tokens or "x-aliyun-ecs-metadata-token-ttl-seconds" not in headers:
                return 404, ""
            token = f"imds-{len(self.issued)}"
            self.issued.append(token)
            return 200, token
        if self.tokens and headers.get("x-aliyun-ecs-metadata-token") not in self.issued:
            return 401, ""
        if path == "/latest/meta-data/ram/security-credentials/":
            return 200, self.role
        if path == f"/latest/meta-data/ram/security-credentials/{self.role}":
            time.sleep(self.delay)
            if self.status != 200:
                return self.status, "busy"
            return 200, json.dumps({"Code": "Success", "Expiration": iso(self.expiration),
                                    "LastUpdated": iso(time.time()), **self.credentials})
        return 404, ""


@dataclass
class Sts(StandIn):
    """STS AssumeRoleWithOIDC: checks the OIDC token and hands out role credentials."""

    oidc_token: str = "eyJ-oidc-token-1"
    expiration: float = field(default_factory=lambda: time.time() + 3600)
    served: int = 0

    def answer(self, method: str, path: str, headers: dict[str, str],
               form: dict[str, str]) -> tuple[int, str]:
        if form.get("Action") != "AssumeRoleWithOIDC" or form.get("Version") != "2015-04-01":
            return 400, json.dumps({"Code": "InvalidAction.NotFound"})
        if form.get("OIDCToken") != self.oidc_token:
            return 400, json.dumps({"Code": "AuthenticationFail.OIDCToken.Invalid",
                                    "Message": "the OIDC token is invalid"})
        self.served += 1
        return 200, json.dumps({"RequestId": "r", "Credentials": {
            "AccessKeyId": f"STS.oidc{self.served}", "AccessKeySecret": f"s{self.served}",
            "SecurityToken": f"oidc-token-{self.served}", "Expiration": iso(self.expiration)}})


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def running(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a loopback port from a thread, for the block; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve(stand_in: Metadata | Sts) -> Iterator[Metadata | Sts]:
    """Serve ``stand_in`` on a loopback port from a thread."""

    class Handler(QuietHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = urlsplit(self.path).path
            with stand_in.lock:  # the raw target: a query string is seen as sent
                stand_in.requests.append((self.command, self.path, headers, body))
            if isinstance(stand_in, Sts):
                form = dict(parse_qsl(urlsplit(self.path).query))
                form.update(parse_qsl(body.decode()))
                status, text = stand_in.answer(self.command, path, headers, form)
            else:
                status, text = stand_in.answer(self.command, path, headers)
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = _handle

    with running(Handler) as url:
        stand_in.url = url
        yield stand_in


@pytest.fixture
def metadata() -> Iterator[Metadata]:
    with serve(Metadata()) as stand_in:
        yield stand_in


@pytest.fixture
def sts() -> Iterator[Sts]:
    with serve(Sts()) as stand_in:
        yield stand_in


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- ECS RAM role -----------------------------------------------------------------------------


def test_ecs_role_through_imdsv2(metadata):
    provider = EcsRamRoleProvider(metadata_url=metadata.url)
    found = provider.get_credentials()
    assert (found.access_key_id, found.access_key_secret, found.security_token) == (
        STS_ID, STS_SECRET, STS_TOKEN)
    assert found.expiration == pytest.approx(metadata.expiration, abs=1)
    assert found.identity == f"ecs_ram_role:{ROLE}" and found.provider == "ecs_ram_role"
    # one token, the role name, the role's credentials; every GET carried the token
    assert metadata.count("PUT", "/latest/api/token") == 1
    gets = [(p, h) for m, p, h, _ in metadata.requests if m == "GET"]
    assert [p for p, _ in gets] == ["/latest/meta-data/ram/security-credentials/",
                                    f"/latest/meta-data/ram/security-credentials/{ROLE}"]
    assert all(h["x-aliyun-ecs-metadata-token"] == "imds-0" for _, h in gets)
    token_ttl = metadata.requests[0][2]["x-aliyun-ecs-metadata-token-ttl-seconds"]
    assert token_ttl == "21600"
    # cached: a second call asks nothing
    assert provider.get_credentials() is found and len(metadata.requests) == 3


def test_ecs_role_named_skips_the_lookup_and_falls_back_to_imdsv1(metadata, monkeypatch):
    metadata.tokens = False
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA", ROLE)
    found = EcsRamRoleProvider(metadata_url=metadata.url).get_credentials()
    assert found.security_token == STS_TOKEN
    assert [(m, p) for m, p, _, _ in metadata.requests] == [
        ("PUT", "/latest/api/token"), ("GET", f"/latest/meta-data/ram/security-credentials/{ROLE}")]
    monkeypatch.setenv("ALIBABA_CLOUD_IMDSV1_DISABLED", "true")
    with pytest.raises(CredentialsFetchError, match="IMDSv1 is disabled"):
        EcsRamRoleProvider(metadata_url=metadata.url).get_credentials()


def test_ecs_role_refreshes_before_expiry(metadata):
    clock = Clock(metadata.expiration - 3600)
    provider = EcsRamRoleProvider(metadata_url=metadata.url, clock=clock)
    first = provider.get_credentials()
    clock.now = metadata.expiration - 360  # six minutes left: still fresh enough
    assert provider.get_credentials() is first
    assert metadata.count("GET", f"/latest/meta-data/ram/security-credentials/{ROLE}") == 1
    # the service rotated; inside the margin the provider asks again
    metadata.credentials = {"AccessKeyId": "STS.rotated", "AccessKeySecret": "s2",
                            "SecurityToken": "t2"}
    metadata.expiration += 3600
    clock.now = first.expiration - 240  # four minutes left: renewed before they expire
    second = provider.get_credentials()
    assert (second.access_key_id, second.security_token) == ("STS.rotated", "t2")
    assert metadata.count("GET", f"/latest/meta-data/ram/security-credentials/{ROLE}") == 2
    assert second.identity == first.identity  # the rate-limit account does not churn


def test_failed_refresh_keeps_valid_credentials_then_gives_up(metadata):
    clock = Clock(metadata.expiration - 3600)
    provider = EcsRamRoleProvider(metadata_url=metadata.url, clock=clock)
    first = provider.get_credentials()
    metadata.status = 500
    clock.now = first.expiration - 60  # refresh due, fails: the old ones still work
    assert provider.get_credentials() is first
    clock.now = first.expiration + 1  # expired and no new ones: retryable error
    with pytest.raises(CredentialsFetchError, match="HTTP 500"):
        provider.get_credentials()
    metadata.status = 200
    assert provider.get_credentials().access_key_id == STS_ID


def test_failed_refreshes_back_off_while_the_cache_is_valid(metadata):
    """An outage of the metadata service is not asked once per signed request: after a
    failed refresh the next try waits 5 s, then 10, 20, ... at most 60; a success resets it."""
    role_path = f"/latest/meta-data/ram/security-credentials/{ROLE}"
    clock = Clock(metadata.expiration - 3600)
    provider = EcsRamRoleProvider(ROLE, metadata_url=metadata.url, clock=clock)
    first = provider.get_credentials()
    metadata.status = 500
    start = clock.now = first.expiration - 290  # inside the refresh margin
    tries = []
    for step in range(0, 200):  # 200 calls over 200 s of the clock
        clock.now = start + step
        assert provider.get_credentials() is first
        tries.append(metadata.count("GET", role_path) - 1)
    attempts = [step for step in range(1, 200) if tries[step] > tries[step - 1]]
    assert [0, *attempts] == [0, 5, 15, 35, 75, 135, 195]  # waits 5, 10, 20, 40, 60, 60
    metadata.status = 200
    clock.now = start + 255  # the next try (195 + 60) succeeds ...
    second = provider.get_credentials()
    assert second is not first and metadata.count("GET", role_path) == tries[-1] + 2
    metadata.status = 500
    clock.now = second.expiration - 290  # ... and the next outage starts again at 5 s
    provider.get_credentials()
    clock.now += 4
    provider.get_credentials()
    assert metadata.count("GET", role_path) == tries[-1] + 3
    clock.now += 1
    provider.get_credentials()
    assert metadata.count("GET", role_path) == tries[-1] + 4


def test_expired_credentials_are_fetched_at_once_whatever_the_backoff(metadata):
    clock = Clock(metadata.expiration - 3600)
    provider = EcsRamRoleProvider(ROLE, metadata_url=metadata.url, clock=clock)
    first = provider.get_credentials()
    metadata.status = 500
    clock.now = first.expiration - 2
    assert provider.get_credentials() is first  # a failure: next try in 5 s ...
    metadata.status, metadata.expiration = 200, metadata.expiration + 3600
    clock.now = first.expiration + 1  # ... but the cache is dead now: no waiting for it
    fresh = provider.get_credentials()
    assert fresh is not first and fresh.usable(clock.now)


def test_a_slow_refresh_holds_up_nobody_while_the_cache_is_valid(metadata):
    """One thread refreshes (its fetch held until the others are done); the others sign
    with the still-valid cached credentials at once instead of queueing behind it."""
    clock = Clock(metadata.expiration - 3600)
    provider = EcsRamRoleProvider(ROLE, metadata_url=metadata.url, clock=clock)
    first = provider.get_credentials()
    metadata.expiration += 3600
    clock.now = first.expiration - 60  # refresh due, cache still valid
    fetching, release = threading.Event(), threading.Event()
    real_fetch = provider.fetch

    def held_fetch() -> Credentials:
        fetching.set()
        assert release.wait(10)
        return real_fetch()

    provider.fetch = held_fetch  # type: ignore[method-assign]
    refreshed: list[Credentials] = []
    refresher = threading.Thread(target=lambda: refreshed.append(provider.get_credentials()))
    refresher.start()
    assert fetching.wait(5), "the refresh never started"
    others: list[Credentials] = []
    caller = threading.Thread(target=lambda: others.extend(
        provider.get_credentials() for _ in range(5)))
    caller.start()
    caller.join(5)
    finished_while_fetching = not caller.is_alive()
    release.set()
    refresher.join(10)
    caller.join(10)
    assert finished_while_fetching, "the other callers waited for the refresh"
    assert len(others) == 5 and all(other is first for other in others)
    assert refreshed[0] is not first and refreshed[0].expiration > first.expiration
    assert provider.get_credentials() is refreshed[0]


def test_one_fetch_for_many_threads(metadata):
    metadata.delay = 0.2
    provider = EcsRamRoleProvider(ROLE, metadata_url=metadata.url)
    results: list[Credentials] = []
    threads = [threading.Thread(target=lambda: results.append(provider.get_credentials()))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len({id(r) for r in results}) == 1
    assert metadata.count("GET", "/latest/meta-data/ram/security-credentials/") == 1


def test_no_metadata_service_is_not_ecs_unless_a_role_is_named():
    url = closed_port_url()
    with pytest.raises(CredentialsUnavailable, match="no ECS metadata service"):
        EcsRamRoleProvider(metadata_url=url).get_credentials()
    with pytest.raises(CredentialsFetchError, match="did not answer"):
        EcsRamRoleProvider(ROLE, metadata_url=url).get_credentials()


# --- OIDC role (ACK RRSA) ---------------------------------------------------------------------


def oidc_env(monkeypatch, tmp_path: Path, token: str) -> Path:
    token_file = tmp_path / "oidc-token"
    token_file.write_text(token + "\n")
    monkeypatch.setenv("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1000:role/moderation")
    monkeypatch.setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1000:oidc-provider/ack")
    monkeypatch.setenv("ALIBABA_CLOUD_OIDC_TOKEN_FILE", str(token_file))
    return token_file


def test_oidc_role_through_sts(sts, monkeypatch, tmp_path):
    token_file = oidc_env(monkeypatch, tmp_path, sts.oidc_token)
    clock = Clock(sts.expiration - 3000)
    provider = OidcRoleProvider(sts_endpoint=sts.url, role_session_name="pod-1", clock=clock)
    found = provider.get_credentials()
    assert (found.access_key_id, found.security_token) == ("STS.oidc1", "oidc-token-1")
    assert found.identity == "oidc_role_arn:acs:ram::1000:role/moderation"
    method, path, _, body = sts.requests[0]
    form = dict(parse_qsl(body.decode()))
    assert (method, path) == ("POST", "/")
    assert form["RoleArn"] == "acs:ram::1000:role/moderation"
    assert form["OIDCProviderArn"] == "acs:ram::1000:oidc-provider/ack"
    assert form["RoleSessionName"] == "pod-1" and form["DurationSeconds"] == "3600"
    assert "OIDCToken" not in path and token_file.read_text().strip() not in path  # no logs
    assert provider.get_credentials() is found and sts.served == 1
    # the kubelet rotates the token file; the next refresh sends the new token
    sts.oidc_token = "eyJ-oidc-token-2"
    token_file.write_text(sts.oidc_token)
    clock.now = found.expiration - 10
    assert provider.get_credentials().access_key_id == "STS.oidc2"


def test_oidc_refused_token_is_an_auth_error(sts, monkeypatch, tmp_path):
    oidc_env(monkeypatch, tmp_path, "stale-token")
    with pytest.raises(CredentialsError, match=r"AuthenticationFail\.OIDCToken\.Invalid") as caught:
        OidcRoleProvider(sts_endpoint=sts.url).get_credentials()
    assert isinstance(caught.value, AuthError)


def test_oidc_needs_its_three_variables():
    with pytest.raises(CredentialsUnavailable, match="ALIBABA_CLOUD_ROLE_ARN"):
        OidcRoleProvider()


# --- environment and profile files ------------------------------------------------------------


def test_environment(monkeypatch):
    with pytest.raises(CredentialsUnavailable):
        EnvironmentProvider().get_credentials()
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK_ID)
    with pytest.raises(CredentialsError, match="ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        EnvironmentProvider().get_credentials()
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", AK_SECRET)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", STS_TOKEN)
    found = EnvironmentProvider().get_credentials()
    assert (found.access_key_id, found.access_key_secret, found.security_token) == (
        AK_ID, AK_SECRET, STS_TOKEN)
    assert found.expiration is None and found.identity == AK_ID


def test_profile_file(clean_env, monkeypatch, tmp_path):
    ini = clean_env / ".alibabacloud" / "credentials.ini"
    ini.parent.mkdir()
    ini.write_text(f"[default]\ntype = access_key\naccess_key_id = {AK_ID}\n"
                   f"access_key_secret = {AK_SECRET}\n\n"
                   f"[ci]\ntype = sts\naccess_key_id = {STS_ID}\naccess_key_secret = {STS_SECRET}\n"
                   f"security_token = {STS_TOKEN}\n\n[odd]\ntype = rsa_key_pair\n")
    assert ProfileProvider().get_credentials().access_key_id == AK_ID
    monkeypatch.setenv("ALIBABA_CLOUD_PROFILE", "ci")
    assert ProfileProvider().get_credentials().security_token == STS_TOKEN
    with pytest.raises(CredentialsError, match="'rsa_key_pair' is not supported"):
        ProfileProvider(profile="odd").get_credentials()
    with pytest.raises(CredentialsError, match="no \\[nope\\] profile"):
        ProfileProvider(profile="nope").get_credentials()
    moved = tmp_path / "elsewhere.ini"
    moved.write_text(f"[ci]\naccess_key_id = other\naccess_key_secret = {AK_SECRET}\n")
    monkeypatch.setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", str(moved))
    assert ProfileProvider().get_credentials().access_key_id == "other"


def test_profile_file_names_the_ecs_role(clean_env, metadata):
    ini = clean_env / ".alibabacloud" / "credentials.ini"
    ini.parent.mkdir()
    ini.write_text(f"[default]\ntype = ecs_ram_role\nrole_name = {ROLE}\n")
    found = ProfileProvider(metadata_url=metadata.url).get_credentials()
    assert found.security_token == STS_TOKEN
    assert metadata.count("GET", "/latest/meta-data/ram/security-credentials/") == 1


def test_cli_config(clean_env, monkeypatch):
    config = clean_env / ".aliyun" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"current": "work", "profiles": [
        {"name": "default", "mode": "AK", "access_key_id": "default-id",
         "access_key_secret": "x"},
        {"name": "work", "mode": "StsToken", "access_key_id": STS_ID,
         "access_key_secret": STS_SECRET, "sts_token": STS_TOKEN},
    ]}))
    found = CliProfileProvider().get_credentials()
    assert (found.access_key_id, found.security_token) == (STS_ID, STS_TOKEN)
    assert CliProfileProvider(profile="default").get_credentials().access_key_id == "default-id"
    monkeypatch.setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
    with pytest.raises(CredentialsUnavailable):
        CliProfileProvider().get_credentials()


# --- the chain --------------------------------------------------------------------------------


def test_chain_order_environment_first(clean_env, monkeypatch, metadata):
    ini = clean_env / ".alibabacloud" / "credentials.ini"
    ini.parent.mkdir()
    ini.write_text(f"[default]\naccess_key_id = from-file\naccess_key_secret = {AK_SECRET}\n")
    chain = default_chain(metadata_url=metadata.url)
    assert chain.get_credentials().access_key_id == "from-file"  # no env: the file
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", AK_SECRET)
    assert default_chain(metadata_url=metadata.url).get_credentials().access_key_id == AK_ID
    assert metadata.requests == []  # never reached


def test_chain_ends_at_the_ecs_role(metadata):
    chain = default_chain(metadata_url=metadata.url)
    assert chain.get_credentials().identity == f"ecs_ram_role:{ROLE}"
    assert chain.get_credentials().access_key_id == STS_ID
    assert metadata.count("GET", f"/latest/meta-data/ram/security-credentials/{ROLE}") == 1


def test_chain_takes_the_oidc_role(sts, monkeypatch, tmp_path):
    oidc_env(monkeypatch, tmp_path, sts.oidc_token)
    chain = default_chain(sts_endpoint=sts.url, metadata_url=closed_port_url())
    assert chain.get_credentials().access_key_id == "STS.oidc1"


def test_chain_without_any_source_says_where_it_looked(monkeypatch):
    with pytest.raises(CredentialsError, match="no Alibaba Cloud credentials found") as caught:
        default_chain(metadata_url=closed_port_url()).get_credentials()
    message = str(caught.value)
    for place in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "credentials.ini", "config.json",
                  "ECS metadata"):
        assert place in message
    assert caught.value.code == "no_credentials"
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    with pytest.raises(CredentialsError) as caught:
        default_chain(metadata_url=closed_port_url()).get_credentials()
    assert "ECS metadata" not in str(caught.value)


def test_a_broken_source_stops_the_chain(clean_env, metadata):
    ini = clean_env / ".alibabacloud" / "credentials.ini"
    ini.parent.mkdir()
    ini.write_text("[default]\ntype = access_key\naccess_key_id = only-id\n")
    with pytest.raises(CredentialsError, match="without AccessKey id/secret"):
        default_chain(metadata_url=metadata.url).get_credentials()
    assert metadata.requests == []  # no silent fall-through to another identity


def test_sdk_adapter_reads_the_official_client():
    pytest.importorskip("alibabacloud_credentials", reason="the aliyun-credentials extra")
    from alibabacloud_credentials.client import Client
    from alibabacloud_credentials.models import Config

    client = Client(Config(type="sts", access_key_id=STS_ID, access_key_secret=STS_SECRET,
                           security_token=STS_TOKEN))
    found = SdkProvider(client).get_credentials()
    assert (found.access_key_id, found.access_key_secret, found.security_token) == (
        STS_ID, STS_SECRET, STS_TOKEN)


def test_sdk_default_chain_in_a_fresh_process(clean_env):
    """CREDENTIALS "sdk": the official default chain, which reads the environment once at
    import, hence a process of its own."""
    pytest.importorskip("alibabacloud_credentials", reason="the aliyun-credentials extra")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(clean_env),
           "ALIBABA_CLOUD_ACCESS_KEY_ID": AK_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": AK_SECRET,
           "ALIBABA_CLOUD_SECURITY_TOKEN": STS_TOKEN,
           "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    code = ("from moderation.providers.aliyun.credentials import provider_for\n"
            "c = provider_for('sdk').get_credentials()\n"
            "print(c.access_key_id, c.access_key_secret, c.security_token, c.provider)")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [AK_ID, AK_SECRET, STS_TOKEN, "sdk/default/env"]


# --- configuration ----------------------------------------------------------------------------


def test_static_keys_win_over_the_chain(metadata):
    options = {"ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET,
               "CREDENTIALS": {"type": "ecs_ram_role", "metadata_url": metadata.url}}
    provider = GuardrailsProvider("g", options)
    assert provider.credentials() == (AK_ID, AK_SECRET, None)
    assert provider.account == f"green-cip:{AK_ID}"
    assert metadata.requests == []


def test_chain_options_share_one_cache_and_key_the_account_by_role(metadata):
    spec = {"type": "default", "metadata_url": metadata.url}
    first = GuardrailsProvider("a", {"CREDENTIALS": spec})
    second = GreenProvider("b", {"CREDENTIALS": dict(spec)})
    assert first.credentials() == second.credentials() == (STS_ID, STS_SECRET, STS_TOKEN)
    assert first.account == f"green-cip:ecs_ram_role:{ROLE}"
    assert second.account == f"green:ecs_ram_role:{ROLE}"
    assert metadata.count("GET", f"/latest/meta-data/ram/security-credentials/{ROLE}") == 1
    assert provider_for(spec) is provider_for(dict(spec))
    assert isinstance(provider_for(spec), ChainProvider)


def test_checks_accept_a_chain_instead_of_keys():
    backend = "moderation.providers.aliyun.guardrails.GuardrailsProvider"

    def ids(options):
        with override_settings(MODERATION={"PROVIDERS": {"g": {"BACKEND": backend,
                                                               "OPTIONS": options}}}):
            return [e.id for e in check_settings()]

    assert ids({}) == ["moderation.E003"]
    assert ids({"CREDENTIALS": "default"}) == []
    assert ids({"CREDENTIALS": {"type": "ecs_ram_role", "role_name": ROLE}}) == []
    assert ids({"CREDENTIALS": "vault"}) == ["moderation.E003"]
    assert ids({"ACCESS_KEY_ID": AK_ID, "ACCESS_KEY_SECRET": AK_SECRET}) == []
    imm = "moderation.providers.aliyun.imm.ImmProvider"
    with override_settings(MODERATION={"PROVIDERS": {"i": {"BACKEND": imm, "OPTIONS": {
            "CREDENTIALS": "default"}}}}):
        errors = check_settings()
    assert [e.id for e in errors] == ["moderation.E003"] and "PROJECT_NAME" in errors[0].msg


# --- end to end: the emulator checks the STS token --------------------------------------------


def _oss(root: Path) -> None:
    (root / "images").mkdir()
    (root / "images" / "qr.jpg").write_bytes((SAMPLES / "qrcode.jpg").read_bytes())


emulator = emulator_fixture(scope="module", oss=_oss, access_key_id=AK_ID,
                            access_key_secret=AK_SECRET,
                            sts_credentials=((STS_ID, STS_SECRET, STS_TOKEN),))


@pytest.mark.django_db
@pytest.mark.parametrize("signature", ["acs3", "rpc_v1"])
def test_guardrails_signs_with_chain_credentials_and_token(emulator, metadata, signature):
    provider = GuardrailsProvider("g", {
        "CREDENTIALS": {"type": "default", "metadata_url": metadata.url},
        "ENDPOINT": emulator.url, "SIGNATURE": signature})
    result = provider.submit(Media(name="qr", kind="image", url="oss://bucket/images/qr.jpg"),
                             ModerationRequest())
    assert result.status == "done" and result.labels
    # the same keys with a token the gateway did not issue are refused
    metadata.credentials = {**metadata.credentials, "SecurityToken": "CAIS-forged"}
    creds.forget_shared()
    with pytest.raises(AuthError) as caught:
        provider.submit(Media(name="qr", kind="image", url="oss://bucket/images/qr.jpg"),
                        ModerationRequest())
    assert caught.value.code == "invalid_security_token"


@pytest.mark.django_db
def test_green_roa_sends_the_token(emulator, metadata, image_server):
    provider = GreenProvider("green", {
        "CREDENTIALS": {"type": "ecs_ram_role", "metadata_url": metadata.url},
        "ENDPOINT": emulator.url})
    result = provider.submit(Media(name="qr", kind="image", url=f"{image_server}/qrcode.jpg"),
                             ModerationRequest(data_id="d1"))
    assert result.status == "done"
    assert "pt_qrCode" in [label.label for label in result.labels]
    metadata.credentials = {**metadata.credentials, "SecurityToken": ""}
    creds.forget_shared()
    with pytest.raises(AuthError, match="InvalidSecurityToken"):
        provider.submit(Media(name="qr", kind="image", url=f"{image_server}/qrcode.jpg"),
                        ModerationRequest(data_id="d1"))


def test_unknown_arguments_are_reported_not_crashed_on(monkeypatch):
    spec = {"type": "ecs_ram_role", "rolename": ROLE}
    assert creds.check_spec(spec) == "CREDENTIALS 'ecs_ram_role' takes no rolename"
    with pytest.raises(CredentialsError, match="takes no rolename"):
        provider_for(spec)
    assert creds.check_spec({"type": "profile", "path": "/x", "profile": "ci"}) is None
    # keys from the environment through the chain: the account is the AccessKey id
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", AK_SECRET)
    provider = GuardrailsProvider("g", {"CREDENTIALS": "default"})
    assert provider.account == f"green-cip:{AK_ID}"
    assert provider.credentials() == (AK_ID, AK_SECRET, None)


# --- review: bounded answers, parsing, leaks, files -------------------------------------------


@contextmanager
def serve_raw(answer) -> Iterator[str]:
    """A loopback server answering every request with ``answer(method, path)``:
    (status, headers, body bytes)."""

    class Handler(QuietHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, headers, data = answer(self.command, urlsplit(self.path).path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with suppress(OSError):  # the client hung up on a huge answer
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = _handle

    with running(Handler) as url:
        yield url


@pytest.mark.parametrize("value, expected", [
    ("2026-12-04T19:00:00Z", 1796410800.0),
    ("2026-12-04T19:00:00.123Z", 1796410800.123),
    ("2026-12-04T19:00:00.123456789Z", 1796410800.123456),
    ("2026-12-04T19:00:00", 1796410800.0),  # no zone: UTC, as the SDK reads it
    ("2026-12-05T03:00:00+08:00", 1796410800.0),
])
def test_expiration_formats(value, expected):
    assert creds.parse_expiration(value) == pytest.approx(expected)


@pytest.mark.parametrize("value", [None, "", "tomorrow", "2026-12-04", 1796410800])
def test_unreadable_expiration_is_a_clear_fetch_error(value):
    with pytest.raises(CredentialsFetchError, match="unreadable credential Expiration"):
        creds.parse_expiration(value)


def test_metadata_redirects_are_not_followed(metadata):
    def answer(method, path):
        return 302, {"Location": metadata.url + path}, b""

    with serve_raw(answer) as url, pytest.raises(CredentialsFetchError, match="redirect"):
        EcsRamRoleProvider(ROLE, metadata_url=url).get_credentials()
    assert metadata.requests == []  # nothing, not even the token, went to the other host


def test_sts_redirects_are_not_followed(sts, monkeypatch, tmp_path):
    oidc_env(monkeypatch, tmp_path, sts.oidc_token)

    def answer(method, path):
        return 307, {"Location": sts.url + "/"}, b""

    with serve_raw(answer) as url, pytest.raises(CredentialsError, match="redirect"):
        OidcRoleProvider(sts_endpoint=url).get_credentials()
    assert sts.requests == []  # the OIDC token was not re-posted elsewhere


def test_huge_answers_are_refused(monkeypatch, tmp_path):
    huge = b"x" * (creds.MAX_ANSWER_BYTES + 1)

    def answer(method, path):
        return 200, {}, huge

    with serve_raw(answer) as url:
        with pytest.raises(CredentialsFetchError, match="larger than"):
            EcsRamRoleProvider(ROLE, metadata_url=url).get_credentials()
        oidc_env(monkeypatch, tmp_path, "t")
        with pytest.raises(CredentialsFetchError, match="larger than"):
            OidcRoleProvider(sts_endpoint=url).get_credentials()


@pytest.mark.parametrize("body", [b"[1, 2]", b"\"Success\"", b"null", b"{not json"])
def test_malformed_answers_are_refused_clearly(body, monkeypatch, tmp_path):
    def answer(method, path):
        if path == "/latest/api/token":
            return 200, {}, b"imds-token"
        return 200, {}, body

    with serve_raw(answer) as url:
        with pytest.raises(CredentialsFetchError, match="ECS metadata"):
            EcsRamRoleProvider(ROLE, metadata_url=url).get_credentials()
        oidc_env(monkeypatch, tmp_path, "t")
        with pytest.raises(CredentialsFetchError, match="AssumeRoleWithOIDC"):
            OidcRoleProvider(sts_endpoint=url).get_credentials()


def test_sts_error_answer_that_is_not_an_object(monkeypatch, tmp_path):
    oidc_env(monkeypatch, tmp_path, "t")
    denied = (403, {}, b"[\"denied\"]")
    with serve_raw(lambda method, path: denied) as url, \
            pytest.raises(CredentialsError, match="HTTP 403"):
        OidcRoleProvider(sts_endpoint=url).get_credentials()


def test_refused_refresh_keeps_valid_credentials(sts, monkeypatch, tmp_path, caplog):
    """A refresh STS refuses (or a token file caught mid-rotation) while the cached role
    credentials are still valid: they are used until they expire, and the failure logged."""
    token_file = oidc_env(monkeypatch, tmp_path, sts.oidc_token)
    clock = Clock(sts.expiration - 3000)
    provider = OidcRoleProvider(sts_endpoint=sts.url, clock=clock)
    first = provider.get_credentials()
    sts.oidc_token = "only-the-next-token"  # STS now refuses ours: HTTP 400
    clock.now = first.expiration - 60
    with caplog.at_level("WARNING", logger=creds.__name__):
        assert provider.get_credentials() is first
    assert "using the cached ones" in caplog.text
    token_file.unlink()  # unreadable token file: same
    assert provider.get_credentials() is first
    clock.now = first.expiration + 1
    with pytest.raises(CredentialsError, match="OIDC token file"):
        provider.get_credentials()


def test_ini_errors_do_not_echo_the_file(clean_env):
    ini = clean_env / ".alibabacloud" / "credentials.ini"
    ini.parent.mkdir()
    ini.write_text(f"access_key_secret = {AK_SECRET}\n[default]\n")
    with pytest.raises(CredentialsError) as caught:
        ProfileProvider().get_credentials()
    assert str(ini) in str(caught.value) and "line 1" in str(caught.value)
    assert AK_SECRET not in str(caught.value)
    ini.write_text(f"[default]\naccess_key_id = a\n\n{AK_SECRET}\n")
    with pytest.raises(CredentialsError) as caught:
        ProfileProvider().get_credentials()
    assert str(ini) in str(caught.value) and AK_SECRET not in str(caught.value)


def test_unreadable_files_are_named(clean_env, monkeypatch, tmp_path):
    ini = clean_env / ".alibabacloud" / "credentials.ini"
    ini.parent.mkdir()
    ini.write_bytes(b"[default]\naccess_key_id = \xff\xfe\n")
    with pytest.raises(CredentialsError, match=r"credentials\.ini"):
        ProfileProvider().get_credentials()
    ini.write_text(f"[default]\naccess_key_id = a\naccess_key_secret = {AK_SECRET}\n")
    ini.chmod(0)
    read_text = Path.read_text

    def denied(path: Path, *args: Any, **kwargs: Any) -> str:
        if path == ini:
            raise PermissionError(13, "Permission denied", str(path))
        return read_text(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        if os.geteuid() == 0:  # root reads anything: the refusal a non-root user gets
            patch.setattr(Path, "read_text", denied)
        with pytest.raises(CredentialsError,
                           match=r"cannot read .*credentials\.ini: Permission denied"):
            ProfileProvider().get_credentials()
    ini.chmod(0o600)
    token = tmp_path / "token"
    token.write_bytes(b"\xff\xfe")
    with pytest.raises(CredentialsError, match="OIDC token file"):
        OidcRoleProvider("acs:ram::1:role/r", "acs:ram::1:oidc-provider/p", str(token),
                         sts_endpoint="http://127.0.0.1:9").get_credentials()


@pytest.mark.parametrize("content", ["[]", "{\"profiles\": {\"a\": 1}}",
                                     "{\"current\": \"a\", \"profiles\": [\"a\"]}", "null"])
def test_cli_config_of_the_wrong_shape(clean_env, content):
    config = clean_env / ".aliyun" / "config.json"
    config.parent.mkdir()
    config.write_text(content)
    with pytest.raises(CredentialsError, match=r"config\.json"):
        CliProfileProvider().get_credentials()


def test_ini_inline_comments_are_stripped_as_the_sdk_does(clean_env):
    ini = clean_env / ".alibabacloud" / "credentials.ini"
    ini.parent.mkdir()
    ini.write_text(f"[default]\ntype = access_key # long-term\naccess_key_id = {AK_ID}\n"
                   f"access_key_secret = {AK_SECRET}   # rotated 2026-11\n")
    found = ProfileProvider().get_credentials()
    assert (found.access_key_id, found.access_key_secret) == (AK_ID, AK_SECRET)


def test_sdk_errors_do_not_carry_secrets():
    class Failing:
        def get_credential(self):
            raise RuntimeError(
                'error retrieving credentials from oidc_role_arn result: {"RequestId": "r", '
                f'"Credentials": {{"AccessKeyId": "{STS_ID}", "AccessKeySecret": '
                f'"{STS_SECRET}", "Expiration": "2026-12-04T19:00:00Z"}}}}, '
                f"access_key_secret={AK_SECRET} SecurityToken: {STS_TOKEN}")

    with pytest.raises(CredentialsError) as caught:
        SdkProvider(Failing()).get_credentials()
    text = str(caught.value)
    assert "oidc_role_arn" in text and STS_ID in text
    for secret in (STS_SECRET, AK_SECRET, STS_TOKEN):
        assert secret not in text
