"""Electronic cash documents (docs/cash.md): what the mint blind-signs, what a coin signs
when it is spent, and the bank's signed denomination key set.

Every encoding here is a sequence of fields in a fixed order, as the cheque's
(docs/cheque.md section 1): a ``u16`` length before text and variable bytes,
fixed-size fields bare, integers as 8-byte big-endian. Nothing here is parsed
from the wire: receivers rebuild the bytes from the message fields they got
and check the signatures over them, so two parties can only agree on a
signature if they agree on every field.

- **coin message**: what the denomination key signs (blindly, RFC 9474
  RSABSSA-SHA384-PSS-Randomized, :mod:`payment.blind_rsa`): the issuing bank,
  the denomination key id and the coin's Ed25519 public key;
- **contract**: what each coin signs with its own key when it is spent: the
  order, its digest, the merchant, and that coin's face value;
- **key set**: the bank's denominations, signed with the bank's Ed25519
  signing key.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from payment import blind_rsa

if TYPE_CHECKING:
    from interbank.v1 import cash_pb2

    from payment.cheque_trust import ChequeKeys

__all__ = [
    "COIN_TAG",
    "CONTRACT_CONTEXT",
    "KEY_SET_CONTEXT",
    "MAX_COINS",
    "CashError",
    "DenominationKey",
    "coin_message",
    "contract_message",
    "denomination_key_id",
    "key_set_encoding",
    "read_key_set",
    "sign_contract",
    "verify_coin",
]

COIN_TAG = b"paynet-coin-v1"
CONTRACT_TAG = b"paynet-coin-contract-v1"
KEY_SET_TAG = b"paynet-cash-keyset-v1"
CONTRACT_CONTEXT = b"paynet-coin-v1 spend signature\x00"
"""Prefix of what a coin's Ed25519 signature covers."""
KEY_SET_CONTEXT = b"paynet-cash-keyset-v1 bank signature\x00"
"""Prefix of what the bank's key-set signature covers."""
MAX_COINS = 64
"""The most coins one withdrawal or one payment carries."""


class CashError(ValueError):
    """A coin or a document that does not verify; ``field`` names what failed."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


@dataclass(frozen=True)
class DenominationKey:
    """One denomination of a bank's key set."""

    key_id: str
    """32 lower-case hex characters: SHA-256 of the public key's DER SPKI, first 16 bytes."""
    value_minor: int
    """The coin's face value in minor units."""
    currency: str
    """ISO 4217 code."""
    public_key: rsa.RSAPublicKey
    """The RSA key (3072 bits in the network's mint)."""
    withdraw_until: int
    """Unix seconds: coins may be withdrawn until then."""
    deposit_until: int
    """Unix seconds: coins may be deposited until then."""

    @property
    def public_der(self) -> bytes:
        """The public key as DER SubjectPublicKeyInfo."""
        return public_der(self.public_key)


def public_der(key: rsa.RSAPublicKey) -> bytes:
    """A public key as DER SubjectPublicKeyInfo."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def denomination_key_id(key: rsa.RSAPublicKey) -> str:
    """The id of a denomination key: SHA-256 of its DER SPKI, first 16 bytes, hex."""
    return hashlib.sha256(public_der(key)).hexdigest()[:32]


def _prefixed(raw: bytes) -> bytes:
    if len(raw) > 0xFFFF:
        raise CashError("field", "is longer than 65535 bytes")
    return struct.pack(">H", len(raw)) + raw


def _text(value: str) -> bytes:
    return _prefixed(value.encode("utf-8"))


def coin_message(bank_code: str, key_id: str, coin_public_key: bytes) -> bytes:
    """What the denomination key signs for a coin (before RFC 9474's random prefix)."""
    if len(coin_public_key) != 32:
        raise CashError("coin_public_key", "must be 32 bytes")
    return _prefixed(COIN_TAG) + _text(bank_code) + _text(key_id) + coin_public_key


def contract_message(
    order_id: str, order_digest: bytes, merchant: str, value_minor: int, currency: str
) -> bytes:
    """What a coin signs when it pays value_minor of an order: context || encoding."""
    if len(order_digest) != 32:
        raise CashError("contract.order_digest", "must be 32 bytes")
    if len(currency) != 3:
        raise CashError("currency", "must be a 3-letter code")
    return (
        CONTRACT_CONTEXT
        + _prefixed(CONTRACT_TAG)
        + _text(order_id)
        + order_digest
        + _text(merchant)
        + struct.pack(">q", value_minor)
        + currency.encode("ascii")
    )


def sign_contract(
    coin_key: ed25519.Ed25519PrivateKey,
    order_id: str,
    order_digest: bytes,
    merchant: str,
    value_minor: int,
    currency: str,
) -> bytes:
    """The coin's signature over the contract (64 bytes)."""
    return coin_key.sign(contract_message(order_id, order_digest, merchant, value_minor, currency))


def verify_coin(
    denomination: DenominationKey,
    bank_code: str,
    coin_public_key: bytes,
    message_prefix: bytes,
    denomination_signature: bytes,
    coin_signature: bytes,
    contract: tuple[str, bytes, str],
) -> None:
    """Raise CashError unless the coin is genuine (the denomination key signed it) and
    signed this contract (order id, order digest, merchant) for its face value."""
    if len(message_prefix) != blind_rsa.MSG_PREFIX_BYTES:
        raise CashError("message_prefix", "must be 32 bytes")
    prepared = message_prefix + coin_message(bank_code, denomination.key_id, coin_public_key)
    try:
        blind_rsa.verify(denomination.public_key, prepared, denomination_signature)
    except blind_rsa.BlindRSAError:
        raise CashError("denomination_signature", "does not verify") from None
    order_id, order_digest, merchant = contract
    message = contract_message(
        order_id, order_digest, merchant, denomination.value_minor, denomination.currency
    )
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(coin_public_key).verify(coin_signature, message)
    except (InvalidSignature, ValueError):
        raise CashError("coin_signature", "does not verify over this contract") from None


def key_set_encoding(bank_code: str, keys: list[DenominationKey]) -> bytes:
    """The canonical encoding of a bank's key set (what its signature covers, after
    KEY_SET_CONTEXT)."""
    out = bytearray(_prefixed(KEY_SET_TAG) + _text(bank_code) + struct.pack(">H", len(keys)))
    for key in keys:
        out += _text(key.key_id)
        out += struct.pack(">q", key.value_minor) + key.currency.encode("ascii")
        out += _prefixed(key.public_der)
        out += struct.pack(">qq", key.withdraw_until, key.deposit_until)
    return bytes(out)


def sign_key_set(key: ed25519.Ed25519PrivateKey, encoding: bytes) -> bytes:
    """The bank's signature over a key set encoding."""
    return key.sign(KEY_SET_CONTEXT + encoding)


def verify_key_set(key: ed25519.Ed25519PublicKey, encoding: bytes, signature: bytes) -> None:
    """Raise CashError unless the bank's key signed this key set."""
    try:
        key.verify(signature, KEY_SET_CONTEXT + encoding)
    except InvalidSignature:
        raise CashError("key_set", "signature does not verify") from None


def read_key_set(
    reply: cash_pb2.GetDenominationsResponse, bank_code: str, trust: ChequeKeys
) -> list[DenominationKey]:
    """The denomination keys of a bank's GetDenominations answer; CashError unless the
    bank's published signing key signed key_set and the keys re-encode to exactly it."""
    if reply.bank_code != bank_code:
        raise CashError("bank_code", f"is not {bank_code}")
    bank_key = trust.bank_key(bank_code, reply.bank_key_id)
    if bank_key is None:
        raise CashError("bank_key_id", "names no published signing key of the bank")
    verify_key_set(bank_key, reply.key_set, reply.signature)
    keys = []
    for denomination in reply.denominations:
        try:
            public = serialization.load_der_public_key(denomination.public_key)
        except (ValueError, UnsupportedAlgorithm):
            raise CashError("denominations.public_key", "is not a DER public key") from None
        if not isinstance(public, rsa.RSAPublicKey):
            raise CashError("denominations.public_key", "is not an RSA key")
        if denomination_key_id(public) != denomination.denomination_key_id:
            raise CashError("denominations.denomination_key_id", "is not its key's id")
        keys.append(
            DenominationKey(
                denomination.denomination_key_id,
                denomination.value.amount_minor,
                denomination.value.currency_code,
                public,
                denomination.withdraw_until.seconds,
                denomination.deposit_until.seconds,
            )
        )
    try:
        encoded = key_set_encoding(bank_code, keys)
    except ValueError:
        encoded = b""
    if encoded != reply.key_set:
        raise CashError("denominations", "do not encode to the signed key set")
    return keys
