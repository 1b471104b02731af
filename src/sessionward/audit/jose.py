"""Just enough JOSE to forge test tokens: compact JWS parts, HMAC signing, the PEM text of a
public JWK (the bytes a confused verifier would use as an HMAC key), and an offline
wordlist attack on an HMAC secret.

Standard library only: the DER of a public key is a few nested sequences, written out here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import textwrap
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Any

__all__ = [
    "b64d",
    "b64e",
    "compact",
    "crack_hmac",
    "hmac_sign",
    "pem_variants",
    "wordlist",
]

_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_RSA_OID = bytes.fromhex("06092a864886f70d0101010500")  # rsaEncryption, NULL
_EC_OID = bytes.fromhex("06072a8648ce3d0201")  # id-ecPublicKey
_CURVES = {
    "P-256": bytes.fromhex("06082a8648ce3d030107"),
    "P-384": bytes.fromhex("06052b81040022"),
    "P-521": bytes.fromhex("06052b81040023"),
}


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compact(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """``header.payload.signature`` (an empty signature keeps the trailing dot)."""
    parts = [b64e(json.dumps(p, separators=(",", ":")).encode()) for p in (header, payload)]
    return ".".join([*parts, b64e(signature)])


def hmac_sign(signing_input: str, key: bytes, alg: str = "HS256") -> bytes:
    return hmac.new(key, signing_input.encode("ascii"), _HMAC[alg]).digest()


def crack_hmac(token: str, words: Iterable[str]) -> str | None:
    """The secret among ``words`` that signs ``token`` (HS256/384/512), or ``None``."""
    head, _, signature = token.rpartition(".")
    try:
        alg = json.loads(b64d(head.split(".")[0])).get("alg")
        wanted = b64d(signature)
    except (ValueError, AttributeError):
        return None
    if alg not in _HMAC:
        return None
    for word in words:
        if hmac.compare_digest(hmac_sign(head, word.encode("utf-8"), alg), wanted):
            return word
    return None


def wordlist() -> Iterator[str]:
    """The small list of weak HMAC secrets shipped with the auditor."""
    text = resources.files("sessionward.audit").joinpath("jwt-secrets.txt").read_text("utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#"):
            yield line


# -- public keys as PEM ----------------------------------------------------------------------


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def _integer(value: bytes) -> bytes:
    value = value.lstrip(b"\0") or b"\0"
    if value[0] & 0x80:
        value = b"\0" + value
    return _der(0x02, value)


def _pem(label: str, der: bytes) -> str:
    lines = textwrap.wrap(base64.b64encode(der).decode("ascii"), 64)
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def pem_variants(jwk: dict[str, Any]) -> list[bytes]:
    """The PEM texts a verifier may hold for this public JWK: SubjectPublicKeyInfo (and, for
    RSA, PKCS#1), each with and without the final newline. Empty for other key types."""
    texts = []
    if jwk.get("kty") == "RSA" and "n" in jwk and "e" in jwk:
        pkcs1 = _der(0x30, _integer(b64d(jwk["n"])) + _integer(b64d(jwk["e"])))
        spki = _der(0x30, _der(0x30, _RSA_OID) + _der(0x03, b"\0" + pkcs1))
        texts = [_pem("PUBLIC KEY", spki), _pem("RSA PUBLIC KEY", pkcs1)]
    elif jwk.get("kty") == "EC" and jwk.get("crv") in _CURVES and "x" in jwk and "y" in jwk:
        point = b"\x04" + b64d(jwk["x"]) + b64d(jwk["y"])
        algorithm = _der(0x30, _EC_OID + _CURVES[jwk["crv"]])
        texts = [_pem("PUBLIC KEY", _der(0x30, algorithm + _der(0x03, b"\0" + point)))]
    out = []
    for text in texts:
        out += [text.encode("ascii"), text.rstrip("\n").encode("ascii")]
    return out
