"""RPC V1 HMAC-SHA1 signing and verification: the legacy ``signature_algorithm="v2"``
option of Content Moderation 2.0 and IMM (shared/specs/aliyun-protocol.md §6)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from .common import (
    HMAC_SHA1,
    MAX_SKEW,
    SIGNATURE_VERSION,
    NonceCheck,
    SecretLookup,
    VerifiedRequest,
    _b64_hmac_sha1,
    _check_fresh,
    _check_nonce,
    _check_signature,
    _incomplete,
    _missing,
    _parse_iso,
    _secret_for,
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


def _check_rpc_v1_params(params: Mapping[str, str]) -> str:
    """The Signature plus the §6 parameters the SDK always sends; returns the signature."""
    signature = params.get("Signature")
    if not signature:
        raise _incomplete("missing Signature parameter")
    for name in RPC_REQUIRED:
        if not params.get(name):
            raise _missing(name)
    if params["SignatureMethod"] != HMAC_SHA1 or params["SignatureVersion"] != SIGNATURE_VERSION:
        raise _incomplete("only SignatureMethod=HMAC-SHA1, SignatureVersion=1.0 are supported")
    return signature


def verify_rpc_v1(
    method: str,
    params: Mapping[str, str],
    lookup_secret: SecretLookup,
    *,
    now: datetime | None = None,
    max_skew: timedelta | None = MAX_SKEW,
    nonces: NonceCheck | None = None,
) -> VerifiedRequest:
    """Check a V1-signed request (§6). ``params`` = decoded query *merged with* the decoded
    form-body parameters (the body is signed too; :func:`verify_request` does the merge).

    Raises :class:`SignatureError`: ``IncompleteSignature`` (no ``Signature``, another
    method), ``MissingParameter``, ``InvalidTimeStamp.Format``/``.Expired`` (``Timestamp``),
    ``InvalidAccessKeyId.NotFound``, ``SignatureDoesNotMatch``, ``SignatureNonceUsed``.
    """
    signature = _check_rpc_v1_params(params)
    _check_fresh(_parse_iso(params["Timestamp"], "Timestamp"), now, max_skew)
    access_key_id = params["AccessKeyId"]
    secret = _secret_for(lookup_secret, access_key_id)
    string_to_sign = rpc_v1_string_to_sign(method, params)
    _check_signature(signature, rpc_v1_signature(secret, string_to_sign), string_to_sign)
    _check_nonce(nonces, access_key_id, params["SignatureNonce"])
    return VerifiedRequest(
        access_key_id,
        "rpc_v1",
        action=params.get("Action"),
        version=params.get("Version"),
        security_token=params.get("SecurityToken"),
        nonce=params["SignatureNonce"],
    )
