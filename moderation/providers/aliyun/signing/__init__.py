"""Signing Alibaba Cloud API requests (shared/specs/aliyun-protocol.md): the client side.

Three algorithms, as the official SDKs sign:

* ROA HMAC-SHA1 (§3): Content Moderation 1.0, ``Authorization: acs AK:SIG``.
* ACS3-HMAC-SHA256 (§5): the SDK default for Content Moderation 2.0 and IMM.
* RPC V1 HMAC-SHA1 (§6): the legacy ``signature_algorithm="v2"`` option of 2.0 and IMM.

Pure functions over plain values, standard library only. Checking signatures is the server's
business: the emulator has its own, separate implementation (:mod:`moderation.emulator.verify`)
so that the two cannot share a mistake; the official-SDK vectors hold both to the wire.

Layout: :mod:`.common` (encodings, digests, clocks, header helpers), :mod:`.roa`, :mod:`.acs3`
and :mod:`.rpc_v1` (one algorithm each). Every public name is re-exported here.
"""

from __future__ import annotations

from .acs3 import (
    ACS3_ALGORITHM,
    acs3_authorization,
    acs3_canonical_headers,
    acs3_canonical_query,
    acs3_canonical_request,
    acs3_signature,
    acs3_signed_header_names,
    acs3_string_to_sign,
    sign_acs3,
)
from .common import (
    FORM_CONTENT_TYPE,
    HMAC_SHA1,
    ISO_FORMAT,
    SIGNATURE_VERSION,
    content_md5,
    content_sha256,
    form_decode,
    form_encode,
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
)
from .rpc_v1 import (
    RPC_REQUIRED,
    rpc_v1_canonicalized_query,
    rpc_v1_signature,
    rpc_v1_string_to_sign,
    sign_rpc_v1,
)

__all__ = [
    "ACS3_ALGORITHM",
    "FORM_CONTENT_TYPE",
    "HMAC_SHA1",
    "ISO_FORMAT",
    "ROA_VERSION",
    "RPC_REQUIRED",
    "SIGNATURE_VERSION",
    "acs3_authorization",
    "acs3_canonical_headers",
    "acs3_canonical_query",
    "acs3_canonical_request",
    "acs3_signature",
    "acs3_signed_header_names",
    "acs3_string_to_sign",
    "content_md5",
    "content_sha256",
    "form_decode",
    "form_encode",
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
]
