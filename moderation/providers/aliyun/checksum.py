"""Callback checksums (aliyun-api-reference.md §2.11, §3.6; aliyun-protocol.md §2.5).

``checksum`` = lower-case hex digest of ``<account UID> + <seed> + <content>`` (plain strings
concatenated, UTF-8), SHA-256 by default or SM3 when ``cryptType=SM3``.

SM3 (GB/T 32905-2016) comes from OpenSSL through ``hashlib.new("sm3")`` where the linked
OpenSSL provides it, else from ``cryptography``'s ``hashes.SM3`` when that package is
installed; the pure-Python code below is only the fallback (about 100x slower, and the
callback body is capped before hashing, ``CALLBACK_MAX_BYTES``). Every implementation is
checked against the same vectors in the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable

CRYPT_TYPES = ("SHA256", "SM3")

_IV = (0x7380166F, 0x4914B2B9, 0x172442D7, 0xDA8A0600,
       0xA96F30BC, 0x163138AA, 0xE38DEE4D, 0xB0FB0E4E)
_MASK = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    n %= 32
    return ((x << n) | (x >> (32 - n))) & _MASK


def _p0(x: int) -> int:
    return x ^ _rotl(x, 9) ^ _rotl(x, 17)


def _p1(x: int) -> int:
    return x ^ _rotl(x, 15) ^ _rotl(x, 23)


def _compress(v: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    w = list(struct.unpack(">16I", block))
    for j in range(16, 68):
        w.append(_p1(w[j - 16] ^ w[j - 9] ^ _rotl(w[j - 3], 15)) ^ _rotl(w[j - 13], 7) ^ w[j - 6])
    w1 = [w[j] ^ w[j + 4] for j in range(64)]
    a, b, c, d, e, f, g, h = v
    for j in range(64):
        t = 0x79CC4519 if j < 16 else 0x7A879D8A
        ss1 = _rotl((_rotl(a, 12) + e + _rotl(t, j)) & _MASK, 7)
        ss2 = ss1 ^ _rotl(a, 12)
        if j < 16:
            ff, gg = a ^ b ^ c, e ^ f ^ g
        else:
            ff = (a & b) | (a & c) | (b & c)
            gg = (e & f) | (~e & g)
        tt1 = (ff + d + ss2 + w1[j]) & _MASK
        tt2 = (gg + h + ss1 + w[j]) & _MASK
        a, b, c, d = tt1, a, _rotl(b, 9), c
        e, f, g, h = _p0(tt2), e, _rotl(f, 19), g
    return tuple(x ^ y for x, y in zip(v, (a, b, c, d, e, f, g, h), strict=True))


def sm3_python(data: bytes) -> str:
    """SM3 digest of ``data`` as 64 lower-case hex digits, in pure Python (the fallback)."""
    length = len(data) * 8
    padded = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack(">Q", length)
    v: tuple[int, ...] = _IV
    for i in range(0, len(padded), 64):
        v = _compress(v, padded[i:i + 64])
    return "".join(f"{x:08x}" for x in v)


def _sm3_openssl() -> Callable[[bytes], str] | None:
    try:
        hashlib.new("sm3", b"")
    except (ValueError, TypeError):  # this OpenSSL has no SM3
        return None
    return lambda data: hashlib.new("sm3", data).hexdigest()


def _sm3_cryptography() -> Callable[[bytes], str] | None:
    try:
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - optional (cryptography): SM3 fallback
    except ImportError:
        return None
    if not hasattr(hashes, "SM3"):
        return None

    def digest(data: bytes) -> str:
        h = hashes.Hash(hashes.SM3())
        h.update(data)
        return h.finalize().hex()

    try:
        digest(b"")
    except Exception:
        return None
    return digest


def sm3_implementations() -> dict[str, Callable[[bytes], str]]:
    """The SM3 implementations available here, fastest first (``python`` always)."""
    found = {"hashlib": _sm3_openssl(), "cryptography": _sm3_cryptography(),
             "python": sm3_python}
    return {name: fn for name, fn in found.items() if fn is not None}


#: the implementation in use: the first of :func:`sm3_implementations`
SM3_IMPLEMENTATION, _sm3 = next(iter(sm3_implementations().items()))


def sm3_hex(data: bytes) -> str:
    """SM3 digest of ``data`` as 64 lower-case hex digits (OpenSSL, cryptography or Python)."""
    return _sm3(data)


def callback_checksum(uid: str, seed: str, content: str, crypt_type: str = "SHA256") -> str:
    """Hex checksum of ``uid + seed + content`` with ``crypt_type`` (``SHA256`` | ``SM3``)."""
    data = f"{uid}{seed}{content}".encode()
    kind = (crypt_type or "SHA256").upper()
    if kind == "SM3":
        return sm3_hex(data)
    if kind == "SHA256":
        return hashlib.sha256(data).hexdigest()
    raise ValueError(f"cryptType must be one of {CRYPT_TYPES}, not {crypt_type!r}")


def verify_checksum(uid: str, seed: str, content: str, checksum: str, crypt_type: str) -> bool:
    """True when ``checksum`` matches, compared in constant time (§2.11); hex case ignored."""
    try:
        expected = callback_checksum(uid, seed, content, crypt_type)
    except ValueError:
        return False
    return hmac.compare_digest(expected.encode(), str(checksum).strip().lower().encode())
