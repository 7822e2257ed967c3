"""RPC V1 HMAC-SHA1 signing: the legacy ``signature_algorithm="v2"`` option of Content
Moderation 2.0 and IMM (shared/specs/aliyun-protocol.md §6)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from .common import (
    HMAC_SHA1,
    SIGNATURE_VERSION,
    _b64_hmac_sha1,
    iso_timestamp,
    new_nonce,
    percent_encode,
)

# §6: what tea-openapi always puts in the query of a V1 request (besides Signature).
RPC_REQUIRED = ("AccessKeyId", "SignatureMethod", "SignatureNonce", "SignatureVersion", "Timestamp")
_RPC_RESERVED = frozenset(
    {*RPC_REQUIRED, "Action", "Format", "Version", "SecurityToken", "Signature"}
)


def rpc_v1_canonicalized_query(params: Mapping[str, str]) -> str:
    """All parameters but ``Signature``, sorted by name, as ``enc(name)=enc(value)`` joined by
    ``&`` with :func:`percent_encode` (§6 steps 1-2)."""
    names = sorted(name for name in params if name != "Signature")
    return "&".join(f"{percent_encode(name)}={percent_encode(params[name])}" for name in names)


def rpc_v1_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&enc(canonicalized query)`` over query and body parameters merged; the
    second encoding turns ``=``, ``&``, ``%`` into ``%3D``, ``%26``, ``%25`` (§6 step 3)."""
    return f"{method.upper()}&%2F&{percent_encode(rpc_v1_canonicalized_query(params))}"


def rpc_v1_signature(access_key_secret: str, string_to_sign: str) -> str:
    """base64(HMAC-SHA1(secret + ``&``, string to sign)) (§6 step 4)."""
    return _b64_hmac_sha1(access_key_secret + "&", string_to_sign)


def sign_rpc_v1(
    method: str,
    params: Mapping[str, str],
    access_key_id: str,
    access_key_secret: str,
    *,
    timestamp: datetime | None = None,
    nonce: str | None = None,
    security_token: str | None = None,
    body_params: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The full query-parameter dict of a V1 request, in tea-openapi's order (§6).

    ``params`` holds ``Action``, ``Version`` and the operation's query parameters. Returns
    ``Action, Format, Version, Timestamp, SignatureNonce``, the operation parameters,
    ``SecurityToken`` (STS), ``SignatureMethod, SignatureVersion, AccessKeyId, Signature``.
    ``body_params`` (the operation's form-body parameters) are signed but not returned: they
    travel in the body (:func:`form_encode`, sorted).
    """
    if "Action" not in params or "Version" not in params:
        raise ValueError("RPC V1 parameters need Action and Version")
    query = {
        "Action": params["Action"],
        "Format": params.get("Format", "json"),
        "Version": params["Version"],
        "Timestamp": iso_timestamp(timestamp),
        "SignatureNonce": nonce or new_nonce(),
    }
    query.update((k, v) for k, v in params.items() if k not in _RPC_RESERVED)
    if security_token:
        query["SecurityToken"] = security_token
    query.update(
        SignatureMethod=HMAC_SHA1, SignatureVersion=SIGNATURE_VERSION, AccessKeyId=access_key_id
    )
    string_to_sign = rpc_v1_string_to_sign(method, {**query, **(body_params or {})})
    query["Signature"] = rpc_v1_signature(access_key_secret, string_to_sign)
    return query
