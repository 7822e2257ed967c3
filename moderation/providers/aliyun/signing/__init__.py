"""Signing and verifying Alibaba Cloud API requests (shared/specs/aliyun-protocol.md).

One package for both ends of the wire: our HTTP client signs with ``sign_*`` and the local
emulator checks with ``verify_*``, so the two cannot drift apart. Three algorithms:

* ROA HMAC-SHA1 (§3, §3.1): Content Moderation 1.0, ``Authorization: acs AK:SIG``.
* ACS3-HMAC-SHA256 (§5, §5.1): the SDK default for Content Moderation 2.0 and IMM.
* RPC V1 HMAC-SHA1 (§6): the legacy ``signature_algorithm="v2"`` option of 2.0 and IMM.

Verifiers raise :class:`SignatureError` carrying the code, message and HTTP status the
gateway answers with (§8.1). Pure functions over plain values, standard library only:
headers are any mapping (looked up case-insensitively), queries and form bodies are
mappings of *decoded* strings (see :func:`form_decode`), bodies are raw bytes.

Layout: :mod:`.common` (errors, results, nonce cache, encodings, digests, clocks, header
helpers, shared verifier checks), :mod:`.roa`, :mod:`.acs3` and :mod:`.rpc_v1` (one algorithm
each), and here :func:`detect_algorithm` and :func:`verify_request`, the emulator's one entry
point. Every public name is re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from .acs3 import (
    ACS3_ALGORITHM,
    ACS3_REQUIRED_SIGNED,
    acs3_authorization,
    acs3_canonical_headers,
    acs3_canonical_query,
    acs3_canonical_request,
    acs3_signature,
    acs3_signed_header_names,
    acs3_string_to_sign,
    sign_acs3,
    verify_acs3,
)
from .common import (
    FORM_CONTENT_TYPE,
    HMAC_SHA1,
    ISO_FORMAT,
    MAX_SKEW,
    SIGNATURE_VERSION,
    Algorithm,
    NonceCache,
    NonceCheck,
    SecretLookup,
    SignatureError,
    VerifiedRequest,
    _header,
    _incomplete,
    content_md5,
    content_sha256,
    form_decode,
    form_encode,
    gateway_error,
    http_date,
    iso_timestamp,
    new_nonce,
    percent_encode,
)
from .roa import (
    ROA_VERSION,
    roa_canonicalized_headers,
    roa_canonicalized_resource,
    roa_signature,
    roa_string_to_sign,
    sign_roa,
    verify_roa,
)
from .rpc_v1 import (
    RPC_REQUIRED,
    rpc_v1_canonicalized_query,
    rpc_v1_signature,
    rpc_v1_string_to_sign,
    sign_rpc_v1,
    verify_rpc_v1,
)

__all__ = [
    "ACS3_ALGORITHM",
    "ACS3_REQUIRED_SIGNED",
    "FORM_CONTENT_TYPE",
    "HMAC_SHA1",
    "ISO_FORMAT",
    "MAX_SKEW",
    "ROA_VERSION",
    "RPC_REQUIRED",
    "SIGNATURE_VERSION",
    "Algorithm",
    "NonceCache",
    "NonceCheck",
    "SecretLookup",
    "SignatureError",
    "VerifiedRequest",
    "acs3_authorization",
    "acs3_canonical_headers",
    "acs3_canonical_query",
    "acs3_canonical_request",
    "acs3_signature",
    "acs3_signed_header_names",
    "acs3_string_to_sign",
    "content_md5",
    "content_sha256",
    "detect_algorithm",
    "form_decode",
    "form_encode",
    "form_params",
    "gateway_error",
    "http_date",
    "iso_timestamp",
    "new_nonce",
    "percent_encode",
    "roa_canonicalized_headers",
    "roa_canonicalized_resource",
    "roa_signature",
    "roa_string_to_sign",
    "rpc_v1_canonicalized_query",
    "rpc_v1_signature",
    "rpc_v1_string_to_sign",
    "sign_acs3",
    "sign_roa",
    "sign_rpc_v1",
    "verify_acs3",
    "verify_request",
    "verify_roa",
    "verify_rpc_v1",
]


# --- one entry point for the emulator ------------------------------------------------------


def detect_algorithm(headers: Mapping[str, str], query: Mapping[str, str]) -> Algorithm:
    """Which verifier applies, from the ``Authorization`` prefix or a ``Signature`` query
    parameter (§9 step 3). Raises ``IncompleteSignature`` when the request is unsigned."""
    authorization = (_header(headers, "Authorization") or "").strip()
    if authorization.startswith("acs "):
        return "roa"
    if authorization.startswith("ACS3-"):
        return "acs3"
    if authorization:
        raise _incomplete("unrecognised Authorization scheme")
    if "Signature" in query:
        return "rpc_v1"
    raise _incomplete("missing Authorization header")


def form_params(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    """Decoded form-body parameters (2.0 body operations, §4.1), or none when the body is
    not a form."""
    content_type = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE or not body:
        return {}
    return form_decode(body.decode("utf-8", "replace"))


def verify_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    lookup_secret: SecretLookup,
    *,
    now: datetime | None = None,
    max_skew: timedelta | None = MAX_SKEW,
    nonces: NonceCheck | None = None,
) -> VerifiedRequest:
    """Verify any request on the emulator's one port: 1.0 under ``/green/...`` (ROA), 2.0 and
    IMM at ``POST /`` (ACS3, or V1 with body parameters merged in); §9."""
    algorithm = detect_algorithm(headers, query)
    if algorithm == "rpc_v1":
        params = {**query, **form_params(headers, body)}
        return verify_rpc_v1(
            method, params, lookup_secret, now=now, max_skew=max_skew, nonces=nonces
        )
    verify = verify_roa if algorithm == "roa" else verify_acs3
    return verify(
        method,
        path,
        query,
        headers,
        body,
        lookup_secret,
        now=now,
        max_skew=max_skew,
        nonces=nonces,
    )
