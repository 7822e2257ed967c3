"""Alibaba Cloud request signing (moderation/providers/aliyun/signing/) and the emulator's
separate verifier (moderation/emulator/verify.py).

The client signers must reproduce, and the emulator verifiers must accept, every request
the official SDKs produced in shared/specs/aliyun-signature-vectors.json (aliyun-protocol.md
§10) and every request captured in aliyun-sdk-emulator-notes.md §6; the verifiers must
refuse tampered requests with the gateway codes of §8.1.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from moderation.emulator.verify import (
    NonceCache,
    SignatureError,
    VerifiedRequest,
    detect_algorithm,
    verify_acs3,
    verify_request,
    verify_roa,
    verify_rpc_v1,
)
from moderation.providers.aliyun.signing import (
    ISO_FORMAT,
    acs3_authorization,
    acs3_canonical_headers,
    acs3_canonical_query,
    acs3_canonical_request,
    acs3_signature,
    acs3_signed_header_names,
    acs3_string_to_sign,
    content_sha256,
    form_decode,
    form_encode,
    http_date,
    iso_timestamp,
    percent_encode,
    roa_canonicalized_headers,
    roa_canonicalized_resource,
    roa_signature,
    roa_string_to_sign,
    rpc_v1_canonicalized_query,
    rpc_v1_signature,
    rpc_v1_string_to_sign,
    sign_acs3,
    sign_roa,
    sign_rpc_v1,
)

SPECS = Path(__file__).resolve().parents[2] / "data" / "aliyun"  # copies of shared/specs
VECTORS_PATH = SPECS / "aliyun-signature-vectors.json"
NOTES_PATH = SPECS / "aliyun-sdk-emulator-notes.md"
MISSING = (
    "{path} is missing: these tests check the signers against signatures computed by the "
    "official SDKs and must not be skipped. They are copies of shared/specs "
    "kept in tests/data/aliyun."
)
EXPECTED_COUNTS = {"roa_hmac_sha1": 6, "acs3_hmac_sha256": 6, "rpc_hmac_sha1": 4}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _require(value: Any, path: Path = VECTORS_PATH) -> Any:
    """Fail (never skip) when a spec file is absent; see MISSING."""
    if value is None:
        pytest.fail(MISSING.format(path=path))
    return value


_VECTORS_TEXT = _read(VECTORS_PATH)
VECTORS: dict[str, Any] | None = json.loads(_VECTORS_TEXT) if _VECTORS_TEXT else None


def vectors(kind: str) -> list[Any]:
    """One pytest param per vector, id = the vector id; a failing placeholder if no file."""
    if VECTORS is None:
        return [pytest.param(None, id=f"{kind}-vector-file-missing")]
    return [pytest.param(vector, id=vector["id"]) for vector in VECTORS[kind]]


def secrets_of(vector: dict[str, Any]) -> Callable[[str], str | None]:
    return {vector["access_key_id"]: vector["access_key_secret"]}.get


def iso(value: str) -> datetime:
    return datetime.strptime(value, ISO_FORMAT).replace(tzinfo=UTC)


def django_cased(headers: dict[str, str]) -> dict[str, str]:
    """Header names as Django's ``request.headers`` spells them (``X-Acs-Date``)."""
    return {"-".join(p.capitalize() for p in k.split("-")): v for k, v in headers.items()}


def test_vector_file_holds_every_documented_vector():
    data = _require(VECTORS)
    assert data["format"] == "aliyun-signature-vectors/1"
    assert {kind: len(data[kind]) for kind in EXPECTED_COUNTS} == EXPECTED_COUNTS
    assert set(data["how_to_check"]) == set(EXPECTED_COUNTS)


# --- ROA HMAC-SHA1 vectors (§3) ------------------------------------------------------------

# What sign_roa adds to the caller's headers (§3 step 1); the rest comes from the caller.
ROA_ADDED = {
    "accept",
    "content-md5",
    "date",
    "x-acs-security-token",
    "x-acs-signature-method",
    "x-acs-signature-version",
    "x-acs-version",
}


@pytest.mark.parametrize("vector", vectors("roa_hmac_sha1"))
def test_roa_string_to_sign_and_signature_match_sdk(vector):
    _require(vector)
    request, expected = vector["request"], vector["expected"]
    headers, query = request["headers"], request["query"]
    assert roa_canonicalized_headers(headers) == expected["canonicalized_headers"]
    assert roa_canonicalized_resource(request["path"], query) == expected["canonicalized_resource"]
    string_to_sign = roa_string_to_sign(request["method"], request["path"], query, headers)
    assert string_to_sign == expected["string_to_sign"]
    signature = roa_signature(vector["access_key_secret"], string_to_sign)
    assert signature == expected["signature"]
    assert f"acs {vector['access_key_id']}:{signature}" == expected["authorization"]


@pytest.mark.parametrize("vector", vectors("roa_hmac_sha1"))
def test_roa_signer_sends_the_sdk_headers(vector):
    _require(vector)
    request = vector["request"]
    caller = {k: v for k, v in request["headers"].items() if k.lower() not in ROA_ADDED}
    if caller.get("Content-Type") == "application/octet-stream":
        del caller["Content-Type"]  # the SDK's default for a body without a type (§2.1)
    body = None if request["body"] is None else request["body"].encode()
    signed = sign_roa(
        request["method"],
        request["path"],
        request["query"],
        caller,
        body,
        vector["access_key_id"],
        vector["access_key_secret"],
        date=parsedate_to_datetime(vector["fixed"]["Date"]),
        security_token=vector["security_token"],
    )
    assert signed == {**request["headers"], "Authorization": vector["expected"]["authorization"]}
    assert form_encode(request["query"]) == request["url"].partition("?")[2]


@pytest.mark.parametrize("spelling", [dict, django_cased], ids=["as-sent", "django-cased"])
@pytest.mark.parametrize("vector", vectors("roa_hmac_sha1"))
def test_roa_verifier_accepts_sdk_request(vector, spelling):
    _require(vector)
    request = vector["request"]
    headers = spelling({**request["headers"], "Authorization": vector["expected"]["authorization"]})
    query = form_decode(request["url"].partition("?")[2])
    assert query == request["query"]
    verified = verify_roa(
        request["method"],
        request["path"],
        query,
        headers,
        (request["body"] or "").encode(),
        secrets_of(vector),
        now=parsedate_to_datetime(vector["fixed"]["Date"]),
    )
    assert verified == VerifiedRequest(
        vector["access_key_id"],
        "roa",
        action=request["headers"]["x-acs-action"],
        version="2018-05-09",
        security_token=vector["security_token"],
    )


# --- ACS3-HMAC-SHA256 vectors (§5) ---------------------------------------------------------

ACS3_ADDED = {
    "accept",
    "x-acs-accesskey-id",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-credentials-provider",
    "x-acs-date",
    "x-acs-security-token",
    "x-acs-signature-nonce",
    "x-acs-version",
}


@pytest.mark.parametrize("vector", vectors("acs3_hmac_sha256"))
def test_acs3_canonical_request_and_signature_match_sdk(vector):
    _require(vector)
    request, expected = vector["request"], vector["expected"]
    headers, query = request["headers"], request["query"]
    hashed = content_sha256(request["body"].encode())
    assert hashed == expected["hashed_payload"] == headers["x-acs-content-sha256"]
    assert acs3_canonical_query(query) == expected["canonical_query_string"]
    names = acs3_signed_header_names(headers)
    assert acs3_canonical_headers(headers, names) == expected["canonical_headers"]
    assert ";".join(names) == expected["signed_headers"]
    canonical = acs3_canonical_request(
        request["method"], request["pathname"], query, headers, hashed
    )
    assert canonical == expected["canonical_request"]
    assert hashlib.sha256(canonical.encode()).hexdigest() == expected["hashed_canonical_request"]
    string_to_sign = acs3_string_to_sign(canonical)
    assert string_to_sign == expected["string_to_sign"]
    signature = acs3_signature(vector["access_key_secret"], string_to_sign)
    assert signature == expected["signature"]
    assert (
        acs3_authorization(vector["access_key_id"], names, signature) == expected["authorization"]
    )


@pytest.mark.parametrize("vector", vectors("acs3_hmac_sha256"))
def test_acs3_signer_sends_the_sdk_headers(vector):
    _require(vector)
    request, fixed = vector["request"], vector["fixed"]
    headers = request["headers"]
    caller = {k: v for k, v in headers.items() if k not in ACS3_ADDED}
    signed = sign_acs3(
        request["method"],
        request["pathname"],
        request["query"],
        caller,
        request["body"].encode(),
        vector["access_key_id"],
        vector["access_key_secret"],
        action=headers["x-acs-action"],
        version=headers["x-acs-version"],
        date=iso(fixed["x-acs-date"]),
        nonce=fixed["x-acs-signature-nonce"],
        security_token=vector["security_token"],
    )
    assert signed == {**headers, "Authorization": vector["expected"]["authorization"]}
    assert form_encode(request["query"]) == urlsplit(request["url"]).query


@pytest.mark.parametrize("spelling", [dict, django_cased], ids=["as-sent", "django-cased"])
@pytest.mark.parametrize("vector", vectors("acs3_hmac_sha256"))
def test_acs3_verifier_accepts_sdk_request(vector, spelling):
    _require(vector)
    request = vector["request"]
    headers = spelling({**request["headers"], "Authorization": vector["expected"]["authorization"]})
    url = urlsplit(request["url"])
    query = form_decode(url.query)
    assert query == request["query"]
    verified = verify_acs3(
        request["method"],
        url.path,
        query,
        headers,
        request["body"].encode(),
        secrets_of(vector),
        now=iso(vector["fixed"]["x-acs-date"]),
    )
    assert verified == VerifiedRequest(
        vector["access_key_id"],
        "acs3",
        action=request["headers"]["x-acs-action"],
        version=request["headers"]["x-acs-version"],
        security_token=vector["security_token"],
        nonce=vector["fixed"]["x-acs-signature-nonce"],
    )


# --- RPC V1 HMAC-SHA1 vectors (§6) ---------------------------------------------------------

RPC_ADDED = {
    "AccessKeyId",
    "Format",
    "SecurityToken",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Timestamp",
}


@pytest.mark.parametrize("vector", vectors("rpc_hmac_sha1"))
def test_rpc_v1_string_to_sign_and_signature_match_sdk(vector):
    _require(vector)
    request, expected = vector["request"], vector["expected"]
    params = {**request["query"], **form_decode(request["body"])}
    assert {k: v for k, v in params.items() if k != "Signature"} == expected["signed_parameters"]
    assert rpc_v1_canonicalized_query(params) == expected["canonicalized_query_string"]
    string_to_sign = rpc_v1_string_to_sign(request["method"], params)
    assert string_to_sign == expected["string_to_sign"]
    assert expected["hmac_key"] == vector["access_key_secret"] + "&"
    signature = rpc_v1_signature(vector["access_key_secret"], string_to_sign)
    assert signature == expected["signature"] == request["query"]["Signature"]


@pytest.mark.parametrize("vector", vectors("rpc_hmac_sha1"))
def test_rpc_v1_signer_sends_the_sdk_query(vector):
    _require(vector)
    request, fixed = vector["request"], vector["fixed"]
    params = {k: v for k, v in request["query"].items() if k not in RPC_ADDED}
    body_params = form_decode(request["body"])
    signed = sign_rpc_v1(
        request["method"],
        params,
        vector["access_key_id"],
        vector["access_key_secret"],
        timestamp=iso(fixed["Timestamp"]),
        nonce=fixed["SignatureNonce"],
        security_token=vector["security_token"],
        body_params=body_params,
    )
    assert list(signed.items()) == list(request["query"].items())  # same order on the wire
    assert form_encode(signed) == urlsplit(request["url"]).query
    assert form_encode(dict(sorted(body_params.items()))) == request["body"]


@pytest.mark.parametrize("vector", vectors("rpc_hmac_sha1"))
def test_rpc_v1_verifier_accepts_sdk_request(vector):
    _require(vector)
    request = vector["request"]
    query = form_decode(urlsplit(request["url"]).query)
    assert query == request["query"]
    verified = verify_request(
        request["method"],
        request["pathname"],
        query,
        request["headers"],
        request["body"].encode(),
        secrets_of(vector),
        now=iso(vector["fixed"]["Timestamp"]),
    )
    assert verified == VerifiedRequest(
        vector["access_key_id"],
        "rpc_v1",
        action=query["Action"],
        version=query["Version"],
        security_token=vector["security_token"],
        nonce=vector["fixed"]["SignatureNonce"],
    )


# --- requests captured from the real SDKs (emulator notes §6) ------------------------------

CAPTURE_KEYS = {
    "LTAI5tDummyKeyId000001": "DummySecret0000000000000000001",
    "LTAI5tDummyKeyId000002": "DummySecret0000000000000000002",
}


@dataclass
class Wire:
    """A request as the emulator receives it: decoded query, raw body."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


def parse_http(block: str) -> Wire:
    head, _, body = block.partition("\n\n")
    request_line, *header_lines = head.split("\n")
    method, target, _ = request_line.split(" ")
    path, _, raw_query = target.partition("?")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return Wire(method, path, form_decode(raw_query), headers, body.encode())


def captured_requests() -> list[Any]:
    text = _read(NOTES_PATH)
    if text is None:
        return [pytest.param(None, id="emulator-notes-missing")]
    section = text.split("## 6. Captured requests", 1)[1]
    blocks = re.findall(r"^### (.+?)\n+```http\n(.*?)\n```", section, re.M | re.S)
    return [
        pytest.param(parse_http(block), id=re.sub(r"[^a-z0-9.]+", "-", title.lower()).strip("-"))
        for title, block in blocks
    ]


def test_emulator_notes_hold_the_captures():
    _require(_read(NOTES_PATH), NOTES_PATH)
    assert len(captured_requests()) == 13


@pytest.mark.parametrize("wire", captured_requests())
def test_verifier_accepts_captured_sdk_request(wire):
    _require(wire, NOTES_PATH)
    assert len(wire.body) == int(wire.headers["Content-Length"])
    verified = verify_request(
        wire.method, wire.path, wire.query, wire.headers, wire.body, CAPTURE_KEYS.get, max_skew=None
    )
    expected = "roa" if wire.path.startswith("/green/") else "acs3"
    if "Signature" in wire.query:
        expected = "rpc_v1"
    assert verified.algorithm == expected
    assert verified.action == wire.headers["x-acs-action"]
    assert verified.access_key_id in CAPTURE_KEYS


# --- negative tests: what the gateway answers (§8.1) ---------------------------------------

NOW = datetime(2025, 3, 3, 8, 15, 30, tzinfo=UTC)
AK, SECRET = "LTAI5tUnitTestKey", "UnitTestSecret0123456789abcdef"
KEYS = {AK: SECRET}
ROA_BODY = b'{"scenes": ["porn"], "tasks": [{"dataId": "d ~*+", "url": "https://e.x/a b.jpg"}]}'
FORM_BODY = {
    "Service": "baselineCheck",
    "ServiceParameters": '{"imageUrl": "https://e.x/a b~*+.jpg"}',
}


def roa_wire(ak: str = AK, secret: str = SECRET, *, date: datetime | None = NOW, **kw: Any) -> Wire:
    query = {"RegionId": "cn-shanghai", "ClientInfo": '{"userId": "u 1~*+"}'}
    caller = {"x-acs-action": "ImageSyncScan", "x-acs-region-id": "cn-shanghai", "User-Agent": "t"}
    headers = sign_roa(
        "POST", "/green/image/scan", query, caller, ROA_BODY, ak, secret, date=date, **kw
    )
    return Wire("POST", "/green/image/scan", query, headers, ROA_BODY)


def acs3_wire(
    ak: str = AK, secret: str = SECRET, *, date: datetime | None = NOW, **kw: Any
) -> Wire:
    body = form_encode(dict(sorted(FORM_BODY.items()))).encode()
    query = {"ReqId": "REQ 1~*+"}
    caller = {
        "host": "127.0.0.1:8765",
        "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
        "content-type": "application/x-www-form-urlencoded",
    }
    action = {"action": "ImageModeration", "version": "2022-03-02"}
    headers = sign_acs3("POST", "/", query, caller, body, ak, secret, date=date, **action, **kw)
    return Wire("POST", "/", query, headers, body)


def rpc_wire(ak: str = AK, secret: str = SECRET, *, date: datetime | None = NOW, **kw: Any) -> Wire:
    body = form_encode(dict(sorted(FORM_BODY.items()))).encode()
    params = {"Action": "ImageModeration", "Version": "2022-03-02"}
    query = sign_rpc_v1("POST", params, ak, secret, timestamp=date, body_params=FORM_BODY, **kw)
    headers = {"host": "127.0.0.1:8765", "content-type": "application/x-www-form-urlencoded"}
    return Wire("POST", "/", query, headers, body)


BUILDERS = {"roa": roa_wire, "acs3": acs3_wire, "rpc_v1": rpc_wire}


def verify(wire: Wire, **kw: Any) -> VerifiedRequest:
    """Through verify_request, the emulator's single entry point."""
    kw.setdefault("now", NOW)
    return verify_request(
        wire.method, wire.path, wire.query, wire.headers, wire.body, KEYS.get, **kw
    )


def verify_directly(algorithm: str, wire: Wire) -> VerifiedRequest:
    """Through the algorithm's own verifier (V1 gets the body parameters merged in)."""
    if algorithm == "rpc_v1":
        params = {**wire.query, **form_decode(wire.body.decode())}
        return verify_rpc_v1(wire.method, params, KEYS.get, now=NOW)
    verifier = verify_roa if algorithm == "roa" else verify_acs3
    return verifier(wire.method, wire.path, wire.query, wire.headers, wire.body, KEYS.get, now=NOW)


ENTRY_POINTS: dict[str, Callable[[str, Wire], VerifiedRequest]] = {
    "direct": verify_directly,
    "dispatch": lambda _algorithm, wire: verify(wire),
}


def flip(text: str, index: int) -> str:
    """``text`` with one character changed (to another base64 and hex digit)."""
    new = "1" if text[index] == "0" else "0"
    return text[:index] + new + text[index + 1 :]


def flip_signature(wire: Wire) -> Wire:
    if "Signature" in wire.query:
        return replace(wire, query={**wire.query, "Signature": flip(wire.query["Signature"], 3)})
    authorization = flip(wire.headers["Authorization"], -5)
    return replace(wire, headers={**wire.headers, "Authorization": authorization})


def with_header(name: str, value: str | None) -> Callable[[Wire], Wire]:
    def mutate(wire: Wire) -> Wire:
        headers = {k: v for k, v in wire.headers.items() if k.lower() != name.lower()}
        return replace(wire, headers=headers if value is None else {**headers, name: value})

    return mutate


def with_param(name: str, value: str | None) -> Callable[[Wire], Wire]:
    def mutate(wire: Wire) -> Wire:
        query = {k: v for k, v in wire.query.items() if k != name}
        return replace(wire, query=query if value is None else {**query, name: value})

    return mutate


def tamper_body(wire: Wire) -> Wire:
    return replace(wire, body=wire.body.replace(b"baselineCheck", b"baselineCheckX") + b" ")


def unchanged(wire: Wire) -> Wire:
    return wire


def stale(builder: Callable[..., Wire]) -> Wire:
    return builder(date=NOW - timedelta(minutes=16))


def unknown_key(builder: Callable[..., Wire]) -> Wire:
    return builder("LTAI5tNobodyKnowsMe")


def wrong_secret(builder: Callable[..., Wire]) -> Wire:
    return builder(AK, "NotTheSecret")


SIGNATURE = ("SignatureDoesNotMatch", 400)
INCOMPLETE = ("IncompleteSignature", 400)
MISSING_PARAMETER = ("MissingParameter", 400)
EXPIRED = ("InvalidTimeStamp.Expired", 400)
BAD_TIME = ("InvalidTimeStamp.Format", 400)
NOT_FOUND = ("InvalidAccessKeyId.NotFound", 404)

# (algorithm, case id, mutation of a correctly signed request, expected code and status)
MUTATIONS: list[tuple[str, str, Callable[[Wire], Wire], tuple[str, int]]] = [
    ("roa", "flipped-signature", flip_signature, SIGNATURE),
    ("roa", "tampered-body", tamper_body, ("InvalidContentMD5", 400)),
    # Content-MD5 is optional (checked when sent), but it is a line of the string to sign.
    ("roa", "content-md5-dropped", with_header("Content-MD5", None), SIGNATURE),
    ("roa", "signed-header-changed", with_header("x-acs-action", "ImageAsyncScan"), SIGNATURE),
    ("roa", "signed-content-type-changed", with_header("Content-Type", "text/plain"), SIGNATURE),
    ("roa", "query-changed", with_param("RegionId", "cn-beijing"), SIGNATURE),
    ("roa", "extra-x-acs-header", with_header("x-acs-extra", "1"), SIGNATURE),
    ("roa", "missing-authorization", with_header("Authorization", None), INCOMPLETE),
    ("roa", "authorization-without-colon", with_header("Authorization", "acs AK"), INCOMPLETE),
    ("roa", "missing-date", with_header("Date", None), MISSING_PARAMETER),
    ("roa", "unreadable-date", with_header("Date", "yesterday"), BAD_TIME),
    ("acs3", "flipped-signature", flip_signature, SIGNATURE),
    ("acs3", "tampered-body", tamper_body, SIGNATURE),
    ("acs3", "signed-header-changed", with_header("user-agent", "curl/8"), SIGNATURE),
    ("acs3", "signed-host-changed", with_header("host", "localhost:8765"), SIGNATURE),
    ("acs3", "query-changed", with_param("ReqId", "REQ-2"), SIGNATURE),
    ("acs3", "missing-authorization", with_header("Authorization", None), INCOMPLETE),
    ("acs3", "other-algorithm", with_header("Authorization", "ACS3-HMAC-SM3 x"), INCOMPLETE),
    ("acs3", "missing-x-acs-date", with_header("x-acs-date", None), MISSING_PARAMETER),
    ("acs3", "unreadable-x-acs-date", with_header("x-acs-date", "2025-03-03"), BAD_TIME),
    ("acs3", "signed-header-not-sent", with_header("accept", None), INCOMPLETE),
    ("rpc_v1", "flipped-signature", flip_signature, SIGNATURE),
    ("rpc_v1", "tampered-body", tamper_body, SIGNATURE),
    ("rpc_v1", "signed-parameter-changed", with_param("Action", "VideoModeration"), SIGNATURE),
    ("rpc_v1", "missing-signature", with_param("Signature", None), INCOMPLETE),
    ("rpc_v1", "missing-nonce", with_param("SignatureNonce", None), MISSING_PARAMETER),
    ("rpc_v1", "other-method", with_param("SignatureMethod", "HMAC-SHA256"), INCOMPLETE),
    ("rpc_v1", "unreadable-timestamp", with_param("Timestamp", "now"), BAD_TIME),
]
# Cases that need a request signed differently rather than a changed one.
RESIGNED = [("stale-date", stale, EXPIRED), ("unknown-key", unknown_key, NOT_FOUND)]
RESIGNED += [("wrong-secret", wrong_secret, SIGNATURE)]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    "algorithm, mutate, expected",
    [pytest.param(alg, mutate, exp, id=f"{alg}-{case}") for alg, case, mutate, exp in MUTATIONS],
)
def test_verifier_refuses_changed_request(entry, algorithm, mutate, expected):
    verify_with = ENTRY_POINTS[entry]
    wire = BUILDERS[algorithm]()
    assert verify_with(algorithm, wire).algorithm == algorithm  # untouched, it is fine
    with pytest.raises(SignatureError) as caught:
        verify_with(algorithm, mutate(wire))
    assert (caught.value.code, caught.value.http_status) == expected


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    "algorithm, build, expected",
    [
        pytest.param(alg, build, exp, id=f"{alg}-{case}")
        for alg in BUILDERS
        for case, build, exp in RESIGNED
    ],
)
def test_verifier_refuses_badly_signed_request(entry, algorithm, build, expected):
    with pytest.raises(SignatureError) as caught:
        ENTRY_POINTS[entry](algorithm, build(BUILDERS[algorithm]))
    assert (caught.value.code, caught.value.http_status) == expected


@pytest.mark.parametrize("algorithm", BUILDERS)
def test_verifier_refuses_a_replayed_nonce(algorithm):
    nonces = NonceCache()
    wire = BUILDERS[algorithm](nonce="0123456789abcdef0123456789abcdef")
    assert verify(wire, nonces=nonces).nonce == "0123456789abcdef0123456789abcdef"
    with pytest.raises(SignatureError) as caught:
        verify(wire, nonces=nonces)
    assert (caught.value.code, caught.value.http_status) == ("SignatureNonceUsed", 400)


@pytest.mark.parametrize("algorithm", BUILDERS)
def test_a_forged_request_does_not_burn_the_nonce(algorithm):
    nonces = NonceCache()
    wire = BUILDERS[algorithm](nonce="feedfeedfeedfeedfeedfeedfeedfeed")
    with pytest.raises(SignatureError):
        verify(flip_signature(wire), nonces=nonces)
    verify(wire, nonces=nonces)


@pytest.mark.parametrize("algorithm", BUILDERS)
def test_date_within_fifteen_minutes_is_fresh(algorithm):
    verify(BUILDERS[algorithm](date=NOW + timedelta(minutes=14)))
    verify(BUILDERS[algorithm](date=NOW - timedelta(minutes=14)))
    with pytest.raises(SignatureError, match=r"InvalidTimeStamp\.Expired"):
        verify(BUILDERS[algorithm](date=NOW + timedelta(minutes=16)))


@pytest.mark.parametrize("algorithm", BUILDERS)
def test_signing_now_verifies_against_the_real_clock(algorithm):
    wire = BUILDERS[algorithm](date=None)
    assert verify(wire, now=None).algorithm == algorithm


def test_roa_mismatch_reports_the_server_string_to_sign():
    wire = with_header("x-acs-action", "ImageAsyncScan")(roa_wire())
    with pytest.raises(SignatureError) as caught:
        verify(wire)
    expected = roa_string_to_sign(wire.method, wire.path, wire.query, wire.headers)
    assert caught.value.message.endswith(f"server string to sign is:{expected}")


@pytest.mark.parametrize(
    "algorithm, mutate",
    [
        ("roa", with_header("User-Agent", "something else")),
        ("roa", with_header("x-sdk-client", "python/2.0.0")),
        ("roa", with_header("Content-Length", "82")),
        ("acs3", with_header("Accept-Encoding", "identity")),
        ("acs3", with_header("Content-Length", "90")),
        ("rpc_v1", with_header("user-agent", "anything")),
    ],
)
def test_unsigned_headers_may_change(algorithm, mutate):
    verify(mutate(BUILDERS[algorithm]()))


def test_roa_body_without_content_md5_is_accepted():
    """The TypeScript SDK signs a ROA body without Content-MD5: an empty line (§3 step 2)."""
    unsigned_body = roa_wire()
    headers = sign_roa("POST", unsigned_body.path, unsigned_body.query,
                       {"x-acs-action": "ImageSyncScan", "Content-Type": "application/json"},
                       None, AK, SECRET, date=NOW)
    assert "Content-MD5" not in headers
    wire = replace(unsigned_body, headers=headers)
    assert verify(wire).action == "ImageSyncScan"
    with pytest.raises(SignatureError) as caught:  # a wrong one is still refused
        verify(with_header("Content-MD5", "AAAAAAAAAAAAAAAAAAAAAA==")(wire))
    assert caught.value.code == "InvalidContentMD5"


def test_rpc_v1_signature_in_the_form_body_is_found():
    """``@alicloud/pop-core`` POSTs every parameter, Signature included, in the form body."""
    params = {"Action": "ImageModeration", "Version": "2022-03-02", **FORM_BODY}
    signed = sign_rpc_v1("POST", params, AK, SECRET, timestamp=NOW)
    wire = Wire("POST", "/", {}, {"content-type": "application/x-www-form-urlencoded"},
                form_encode(signed).encode())
    assert detect_algorithm(wire.headers, {}, form_decode(wire.body.decode())) == "rpc_v1"
    verified = verify(wire)
    assert (verified.algorithm, verified.action) == ("rpc_v1", "ImageModeration")
    with pytest.raises(SignatureError, match="SignatureDoesNotMatch"):
        verify(replace(wire, body=wire.body.replace(b"baselineCheck", b"baselineCheckX")))


def test_roa_nonce_is_optional_but_signed_when_sent():
    assert "x-acs-signature-nonce" not in roa_wire().headers  # the Python SDK sends none (§2.1)
    wire = roa_wire(nonce="abc")
    assert verify(wire).nonce == "abc"
    with pytest.raises(SignatureError, match="SignatureDoesNotMatch"):
        verify(with_header("x-acs-signature-nonce", "abd")(wire))


def test_acs3_required_header_must_be_signed():
    wire = acs3_wire()
    authorization = wire.headers["Authorization"].replace("x-acs-signature-nonce;", "")
    with pytest.raises(SignatureError) as caught:
        verify(with_header("Authorization", authorization)(wire))
    assert caught.value.code == "IncompleteSignature"
    assert "x-acs-signature-nonce" in caught.value.message


def test_acs3_verifier_signs_only_the_declared_headers():
    """A V3 client may sign fewer headers than the Python SDK (which signs them all)."""
    wire = acs3_wire()
    headers = {k: v for k, v in wire.headers.items() if k not in ("user-agent", "Authorization")}
    names = acs3_signed_header_names(headers)
    canonical = acs3_canonical_request("POST", "/", wire.query, headers, content_sha256(wire.body))
    signature = acs3_signature(SECRET, acs3_string_to_sign(canonical))
    headers["Authorization"] = acs3_authorization(AK, names, signature)
    verify(replace(wire, headers={**headers, "user-agent": "unsigned now"}))


# --- round trips ---------------------------------------------------------------------------

ALPHABET = "aZ09-_.~*+ /&=%?#:;,'\"!()é中文ß\u00a0🙂"


def random_text(rng: random.Random, size: int = 12) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, size)))


def random_params(rng: random.Random) -> dict[str, str]:
    """Decoded parameters; names never clash with the reserved V1 ones."""
    return {f"p{i}{random_text(rng, 4)}": random_text(rng) for i in range(rng.randint(0, 4))}


def over_the_wire(query: dict[str, str]) -> dict[str, str]:
    """What the server decodes from the URL the client would send."""
    return form_decode(form_encode(query))


def random_roa(rng: random.Random) -> Wire:
    query = {"RegionId": "cn-shanghai", **random_params(rng)}
    body = rng.randbytes(rng.randint(0, 64)) if rng.random() < 0.8 else None
    caller = {"x-acs-action": "ImageSyncScan", "x-acs-custom": "v ~*+ x"}
    headers = sign_roa("POST", "/green/image/scan", query, caller, body, AK, SECRET)
    return Wire("POST", "/green/image/scan", over_the_wire(query), headers, body or b"")


def random_acs3(rng: random.Random) -> Wire:
    query = random_params(rng)
    body = rng.randbytes(rng.randint(0, 64)) if rng.random() < 0.7 else None
    caller = {"Host": "127.0.0.1:8765", "user-agent": " padded ua ~*+ ", "x-acs-trace": "a b"}
    headers = sign_acs3(
        "POST", "/", query, caller, body, AK, SECRET, action="GetTask", version="2020-09-30"
    )
    return Wire("POST", "/", over_the_wire(query), headers, body or b"")


def random_rpc(rng: random.Random) -> Wire:
    params = {"Action": "ImageModeration", "Version": "2022-03-02", **random_params(rng)}
    form = {f"b{k}": v for k, v in random_params(rng).items()}
    query = sign_rpc_v1("POST", params, AK, SECRET, body_params=form)
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    body = form_encode(dict(sorted(form.items()))).encode()
    return Wire("POST", "/", over_the_wire(query), headers, body)


RANDOM = {"roa": random_roa, "acs3": random_acs3, "rpc_v1": random_rpc}


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("algorithm", RANDOM)
def test_round_trip(algorithm, seed):
    wire = RANDOM[algorithm](random.Random(f"{algorithm}-{seed}"))
    assert verify(wire, now=None).algorithm == algorithm
    assert verify(replace(wire, headers=django_cased(wire.headers)), now=None).access_key_id == AK
    with pytest.raises(SignatureError):
        verify(flip_signature(wire), now=None)


# --- encodings, helpers, algorithm detection -----------------------------------------------


@pytest.mark.parametrize(
    "raw, encoded",
    [
        ("a b", "a%20b"),
        ("~", "~"),
        ("*", "%2A"),
        ("+", "%2B"),
        ("/", "%2F"),
        ("%7E", "%257E"),
        ("AZaz09-_.", "AZaz09-_."),
        ("é中", "%C3%A9%E4%B8%AD"),
    ],
)
def test_percent_encode_is_rfc3986(raw, encoded):
    assert percent_encode(raw) == encoded


def test_form_encoding_differs_from_signature_encoding():
    params = {"k": "a b*~+/é"}
    assert form_encode(params) == "k=a+b%2A~%2B%2F%C3%A9"
    assert form_decode(form_encode(params)) == params
    assert form_decode("k=a+b%20c&empty=") == {"k": "a b c", "empty": ""}


def test_time_formats():
    naive = datetime(2025, 3, 3, 8, 15, 30, 999)  # taken as UTC
    assert http_date(naive) == "Mon, 03 Mar 2025 08:15:30 GMT"
    assert iso_timestamp(naive) == "2025-03-03T08:15:30Z"
    beijing = datetime(2025, 3, 3, 16, 15, 30, tzinfo=timezone(timedelta(hours=8)))
    assert http_date(beijing) == "Mon, 03 Mar 2025 08:15:30 GMT"
    assert iso_timestamp(beijing) == "2025-03-03T08:15:30Z"


@pytest.mark.parametrize(
    "headers, query, expected",
    [
        ({"Authorization": "acs AK:SIG"}, {}, "roa"),
        ({"authorization": "ACS3-HMAC-SHA256 Credential=AK"}, {}, "acs3"),
        ({}, {"Signature": "x", "Action": "GetTask"}, "rpc_v1"),
    ],
)
def test_detect_algorithm(headers, query, expected):
    assert detect_algorithm(headers, query) == expected


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer token"}])
def test_detect_algorithm_refuses_unsigned_requests(headers):
    with pytest.raises(SignatureError) as caught:
        detect_algorithm(headers, {"Action": "GetTask"})
    assert (caught.value.code, caught.value.http_status) == INCOMPLETE


def test_verify_rpc_v1_needs_body_params_merged():
    wire = rpc_wire()
    with pytest.raises(SignatureError, match="SignatureDoesNotMatch"):
        verify_rpc_v1("POST", wire.query, KEYS.get, now=NOW)
    params = {**wire.query, **form_decode(wire.body.decode())}
    assert verify_rpc_v1("POST", params, KEYS.get, now=NOW).action == "ImageModeration"


def test_signers_refuse_incomplete_input():
    with pytest.raises(ValueError, match="Host"):
        sign_acs3("POST", "/", {}, {}, b"", AK, SECRET, action="GetTask", version="2020-09-30")
    with pytest.raises(ValueError, match="Action"):
        sign_rpc_v1("POST", {"Version": "2022-03-02"}, AK, SECRET)


def test_nonce_cache_forgets_after_ttl():
    clock = [100.0]
    nonces = NonceCache(ttl=timedelta(seconds=60), clock=lambda: clock[0])
    assert nonces(AK, "n1") is True
    assert nonces(AK, "n1") is False
    assert nonces("other-key", "n1") is True
    clock[0] += 61
    assert nonces(AK, "n1") is True


def test_canonical_forms_sort_by_name_whatever_the_input_order():
    query = {"b": "2", "a": "x y+~*", "C": ""}
    assert roa_canonicalized_resource("/green/x", query) == "/green/x?C=&a=x y+~*&b=2"
    assert roa_canonicalized_resource("/green/x", {}) == "/green/x"
    assert acs3_canonical_query({**query, "n": None}) == "C=&a=x%20y%2B~%2A&b=2"
    assert rpc_v1_canonicalized_query({**query, "Signature": "s"}) == "C=&a=x%20y%2B~%2A&b=2"
    headers = {"X-Acs-B": "2", "x-acs-a": " 1 ", "Date": "d", "User-Agent": "u"}
    assert roa_canonicalized_headers(headers) == "x-acs-a: 1 \nx-acs-b:2\n"


def test_acs3_header_values_are_trimmed_on_both_sides():
    """HTTP servers strip header values; the signature must survive that (§5 step 4)."""
    wire = acs3_wire()
    caller = {"host": "127.0.0.1:8765", "user-agent": "  ua  "}
    action = {"action": "ImageModeration", "version": "2022-03-02"}
    padded = sign_acs3("POST", "/", wire.query, caller, wire.body, AK, SECRET, date=NOW, **action)
    verify(replace(wire, headers={**padded, "user-agent": "ua"}))


def test_acs3_tampered_body_names_the_content_hash():
    with pytest.raises(SignatureError) as caught:
        verify(tamper_body(acs3_wire()))
    assert caught.value.code == "SignatureDoesNotMatch"
    assert "x-acs-content-sha256" in caught.value.message
