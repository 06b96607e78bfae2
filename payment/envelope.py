"""The payment envelope: order digest, HPKE sealing to the gateway, and the
customer's dual signature. docs/envelope.md specifies the same bytes for
implementers in other languages.

- order digest = SHA-256 of the order's canonical text (:func:`order_digest`);
- sealed instruction = HPKE base mode, single shot, DHKEM(X25519, HKDF-SHA256),
  HKDF-SHA256, AES-128-GCM, to the gateway's X25519 key, with
  info = b"interbank.v1 payment instruction" || order digest: enc (32 bytes)
  followed by the ciphertext;
- dual signature = Ed25519 over order digest || SHA-256(instruction bytes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

__all__ = [
    "HPKE_INFO_PREFIX",
    "EnvelopeError",
    "OrderLineText",
    "dual_signature_message",
    "load_ed25519_private",
    "load_ed25519_public",
    "load_x25519_private",
    "load_x25519_public",
    "open_instruction",
    "order_digest",
    "raw_public",
    "seal_instruction",
    "sign_dual",
    "verify_dual",
]

HPKE_INFO_PREFIX = b"interbank.v1 payment instruction"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)
_ENC_LEN = 32


class EnvelopeError(Exception):
    """A sealed instruction or signature could not be opened or verified."""


@dataclass(frozen=True)
class OrderLineText:
    """The parts of an order line that enter the digest."""

    sku: str
    """Product SKU."""
    quantity: int
    """Units."""
    unit_price_minor: int
    """Unit price in minor units."""


def order_digest(
    order_id: str,
    merchant_name: str,
    customer_name: str,
    currency_code: str,
    total_minor: int,
    lines: Iterable[OrderLineText],
) -> bytes:
    """SHA-256 of the order's canonical text (see Order.order_digest in order.proto)."""
    text = (
        f"interbank.v1.order\n{order_id}\n{merchant_name}\n{customer_name}\n"
        f"{currency_code}\n{total_minor}\n"
    )
    text += "".join(f"{line.sku}:{line.quantity}:{line.unit_price_minor}\n" for line in lines)
    return hashlib.sha256(text.encode("utf-8")).digest()


def _info(digest: bytes) -> bytes:
    if len(digest) != 32:
        raise EnvelopeError("order digest must be 32 bytes")
    return HPKE_INFO_PREFIX + digest


def seal_instruction(
    instruction: bytes, gateway_key: x25519.X25519PublicKey, digest: bytes
) -> bytes:
    """Seal instruction bytes so only the gateway can open them, bound to one order."""
    return _SUITE.encrypt(instruction, gateway_key, info=_info(digest))


def open_instruction(sealed: bytes, gateway_key: x25519.X25519PrivateKey, digest: bytes) -> bytes:
    """Open a sealed instruction; EnvelopeError if tampered with or sealed for another order."""
    if len(sealed) <= _ENC_LEN + 16:
        raise EnvelopeError("sealed instruction is too short")
    try:
        return _SUITE.decrypt(sealed, gateway_key, info=_info(digest))
    except (InvalidTag, ValueError) as exc:
        raise EnvelopeError("sealed instruction cannot be opened") from exc


def dual_signature_message(digest: bytes, instruction: bytes) -> bytes:
    """The 64 bytes the dual signature covers."""
    return digest + hashlib.sha256(instruction).digest()


def sign_dual(key: ed25519.Ed25519PrivateKey, digest: bytes, instruction: bytes) -> bytes:
    """The customer's dual signature over the order digest and the instruction."""
    return key.sign(dual_signature_message(digest, instruction))


def verify_dual(
    key: ed25519.Ed25519PublicKey, signature: bytes, digest: bytes, instruction: bytes
) -> bool:
    """True if signature is key's dual signature over digest and instruction."""
    try:
        key.verify(signature, dual_signature_message(digest, instruction))
    except InvalidSignature:
        return False
    return True


def load_x25519_private(pem: bytes) -> x25519.X25519PrivateKey:
    """The gateway's HPKE private key from PKCS#8 PEM."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, x25519.X25519PrivateKey):
        raise EnvelopeError("not an X25519 private key")
    return key


def load_x25519_public(raw_hex: str | bytes) -> x25519.X25519PublicKey:
    """An X25519 public key from its raw 32 bytes (or their hex)."""
    raw = (
        bytes.fromhex(raw_hex.decode() if isinstance(raw_hex, bytes) else raw_hex)
        if not (isinstance(raw_hex, bytes) and len(raw_hex) == 32)
        else raw_hex
    )
    return x25519.X25519PublicKey.from_public_bytes(raw)


def load_ed25519_private(pem: bytes) -> ed25519.Ed25519PrivateKey:
    """A customer's signing key from PKCS#8 PEM."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise EnvelopeError("not an Ed25519 private key")
    return key


def load_ed25519_public(raw_hex: str) -> ed25519.Ed25519PublicKey:
    """An enrolled Ed25519 public key from the hex of its raw 32 bytes."""
    return ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(raw_hex.strip()))


def raw_public(key: x25519.X25519PublicKey | ed25519.Ed25519PublicKey) -> bytes:
    """A public key's raw 32 bytes."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
