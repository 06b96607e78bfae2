"""The customer's coins as documents (docs/cash.md): the bank's key set checked,
coins withdrawn blind and unblinded, and spent by signing an order's contract.

:func:`check_key_set` accepts a bank's key set only if a signing key the bank
publishes signed it and the parsed denominations encode to exactly the signed
bytes. :func:`choose_denominations` picks the keys of a withdrawal.
:func:`blind_withdrawal` makes one Ed25519 key pair per coin and blinds each
coin message (RFC 9474 RSABSSA-SHA384-PSS-Randomized, a fresh 32-byte prefix
per coin); :func:`finish_withdrawal` unblinds the bank's answer, which succeeds
only if each signature verifies with the published denomination key, so a bank
signing with any other key (one that could tag a customer's coins) is caught.
:func:`sign_coins` has each coin sign an order's contract for its face value.

The coins and pending withdrawals hold private keys and blinds: their repr
hides them, and nothing here puts one in a message. They are kept by
:class:`customer.wallet.CoinWallet`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from interbank.v1 import cash_pb2, order_pb2

from payment import blind_rsa, cash
from payment.cash import CashError, DenominationKey
from payment.cheque_trust import ChequeKeys

__all__ = [
    "CoinSpending",
    "KeySet",
    "PendingCoin",
    "PendingWithdrawal",
    "WalletCoin",
    "blind_withdrawal",
    "check_key_set",
    "choose_denominations",
    "finish_withdrawal",
    "sign_coins",
]


@dataclass(frozen=True)
class KeySet:
    """A bank's denomination keys, as checked by :func:`check_key_set`."""

    bank_code: str
    """The issuing bank."""
    keys: tuple[DenominationKey, ...]
    """Every key still open for deposit, as the bank signed them."""

    def key(self, key_id: str) -> DenominationKey | None:
        """The key with that id, or None."""
        return next((k for k in self.keys if k.key_id == key_id), None)

    def open_for_withdrawal(self, moment: dt.datetime) -> dict[int, DenominationKey]:
        """By face value, the newest key of each value still signing withdrawals."""
        stamp = int(moment.timestamp())
        newest: dict[int, DenominationKey] = {}
        for key in self.keys:
            if key.withdraw_until <= stamp:
                continue
            kept = newest.get(key.value_minor)
            if kept is None or key.withdraw_until > kept.withdraw_until:
                newest[key.value_minor] = key
        return newest


def check_key_set(
    reply: cash_pb2.GetDenominationsResponse, bank_code: str, keys: ChequeKeys
) -> KeySet:
    """The key set of a GetDenominations answer from the bank with bank_code, once it
    is signed by a signing key that bank publishes and its parsed denominations encode
    to exactly the signed bytes (:func:`payment.cash.read_key_set`). ValueError naming
    what is wrong otherwise: coins withdrawn against such a set could be worthless."""
    try:
        parsed = cash.read_key_set(reply, bank_code, keys)
    except CashError as exc:
        raise ValueError(f"the key set of bank {bank_code!r} fails its check: {exc}") from None
    return KeySet(bank_code, tuple(parsed))


def choose_denominations(
    amount_minor: int, currency: str, key_set: KeySet, moment: dt.datetime
) -> list[DenominationKey]:
    """Keys whose face values add up to amount_minor exactly, largest first (greedy
    over the values open for withdrawal at moment). ValueError if there is no such
    set or it takes more than :data:`payment.cash.MAX_COINS` coins."""
    if amount_minor <= 0:
        raise ValueError("an amount to withdraw must be positive")
    open_keys = {
        value: key
        for value, key in key_set.open_for_withdrawal(moment).items()
        if key.currency == currency
    }
    chosen: list[DenominationKey] = []
    rest = amount_minor
    for value in sorted(open_keys, reverse=True):
        count, rest = divmod(rest, value)
        chosen += [open_keys[value]] * count
    if rest:
        raise ValueError(
            f"the bank's open denominations cannot make {amount_minor} {currency} exactly"
        )
    if len(chosen) > cash.MAX_COINS:
        raise ValueError(
            f"{amount_minor} {currency} takes {len(chosen)} coins; a withdrawal takes at most "
            f"{cash.MAX_COINS}: withdraw it in parts"
        )
    return chosen


# -- coins and withdrawals -----------------------------------------------------------------


def _raw_public(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _raw_private(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class CoinSpending:
    """Where a coin was shown: it is never shown to anyone else."""

    order_id: str
    """The order it paid (or was offered for)."""
    merchant: str
    """The merchant it was shown to."""
    request_id: str
    """The SubmitCoins request_id, kept so that a retry sends the same request."""


@dataclass(frozen=True, repr=False)
class WalletCoin:
    """One coin in the wallet. Secret: it holds the coin's private key; repr hides it."""

    bank_code: str
    """The issuing bank."""
    denomination_key_id: str
    """The denomination key that signed it."""
    value_minor: int
    """Face value in minor units."""
    currency: str
    """ISO 4217 code."""
    private_key: bytes = field(compare=False)
    """The coin's Ed25519 private key, raw (32 bytes). Secret."""
    public_key: bytes
    """The coin's Ed25519 public key, raw (32 bytes): its identity."""
    message_prefix: bytes
    """RFC 9474's 32-byte randomizer chosen at withdrawal."""
    denomination_signature: bytes
    """The bank's RSA-PSS signature over message_prefix || coin message."""
    deposit_until: int
    """Unix seconds: the coin can be spent (deposited) until then."""
    withdrawal: str
    """The request_id of the withdrawal that made it."""
    spent: CoinSpending | None = None
    """Where it was shown, once it was."""

    def __repr__(self) -> str:
        return (
            f"WalletCoin({self.value_minor} {self.currency}, {self.bank_code}, "
            f"{self.public_key.hex()[:8]}..., {'spent' if self.spent else 'unspent'})"
        )

    def signing_key(self) -> ed25519.Ed25519PrivateKey:
        """The coin's private key, to sign a contract with."""
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.private_key)


@dataclass(frozen=True, repr=False)
class PendingCoin:
    """A coin sent for signing, not yet answered. Secret (its private key and blind)."""

    denomination_key_id: str
    """The key asked to sign it."""
    value_minor: int
    """Face value in minor units."""
    currency: str
    """ISO 4217 code."""
    deposit_until: int
    """The key's deposit period end, Unix seconds."""
    private_key: bytes
    """The coin's Ed25519 private key, raw. Secret."""
    message_prefix: bytes
    """The 32 random bytes before the coin message."""
    blinded_message: bytes
    """What the bank signs (RFC 9474 Blind): sent again as is on a retry."""
    inv: int
    """The inverse of the blind, which unblinds the bank's answer. Secret."""

    def __repr__(self) -> str:
        return f"PendingCoin({self.value_minor} {self.currency}, {self.denomination_key_id})"

    @property
    def public_key(self) -> bytes:
        """The coin's Ed25519 public key, raw."""
        return _raw_public(ed25519.Ed25519PrivateKey.from_private_bytes(self.private_key))


@dataclass(frozen=True)
class PendingWithdrawal:
    """A withdrawal written to the wallet before it is sent."""

    request_id: str
    """The Withdraw request_id: the same on every retry."""
    account_id: str
    """The account debited."""
    bank_code: str
    """The bank asked (the customer's own)."""
    coins: tuple[PendingCoin, ...]
    """The coins asked for, in request order."""

    @property
    def amount_minor(self) -> int:
        """The face value asked for."""
        return sum(c.value_minor for c in self.coins)

    def request(self) -> cash_pb2.WithdrawRequest:
        """The Withdraw request: byte for byte the same each time it is built."""
        return cash_pb2.WithdrawRequest(
            request_id=self.request_id,
            account_id=self.account_id,
            coins=[
                cash_pb2.BlindedCoin(
                    denomination_key_id=c.denomination_key_id, blinded_message=c.blinded_message
                )
                for c in self.coins
            ],
        )

    def prepared(self, coin: PendingCoin) -> bytes:
        """What the bank's signature covers for coin: its prefix, then the coin message."""
        message = cash.coin_message(self.bank_code, coin.denomination_key_id, coin.public_key)
        return coin.message_prefix + message


def blind_withdrawal(
    keys: Sequence[DenominationKey], bank_code: str, account_id: str, request_id: str | None = None
) -> PendingWithdrawal:
    """A withdrawal of one coin per key: a fresh Ed25519 key pair per coin, its coin
    message prepared with 32 random bytes and blinded with the denomination key."""
    coins = []
    for key in keys:
        private = ed25519.Ed25519PrivateKey.generate()
        prepared = blind_rsa.prepare(cash.coin_message(bank_code, key.key_id, _raw_public(private)))
        for attempt in range(3):
            try:
                blinded, inv = blind_rsa.blind(key.public_key, prepared)
                break
            except blind_rsa.BlindingError:  # a blind without an inverse: draw another
                if attempt == 2:
                    raise
        coins.append(
            PendingCoin(
                denomination_key_id=key.key_id,
                value_minor=key.value_minor,
                currency=key.currency,
                deposit_until=key.deposit_until,
                private_key=_raw_private(private),
                message_prefix=prepared[: blind_rsa.MSG_PREFIX_BYTES],
                blinded_message=blinded,
                inv=inv,
            )
        )
    return PendingWithdrawal(request_id or str(uuid.uuid4()), account_id, bank_code, tuple(coins))


def finish_withdrawal(
    pending: PendingWithdrawal, reply: cash_pb2.WithdrawResponse, key_set: KeySet
) -> list[WalletCoin]:
    """The coins of an answered withdrawal: each blind signature unblinded and verified
    with the published denomination key. ValueError if the answer is not one signature
    per coin or a signature does not verify (the bank signed with another key)."""
    if len(reply.blind_signatures) != len(pending.coins):
        raise ValueError(
            f"the bank answered {len(reply.blind_signatures)} signatures for "
            f"{len(pending.coins)} coins"
        )
    coins = []
    for index, (coin, blind_signature) in enumerate(
        zip(pending.coins, reply.blind_signatures, strict=True)
    ):
        key = key_set.key(coin.denomination_key_id)
        if key is None:
            raise ValueError(f"coin {index}: its denomination key is no longer published")
        try:
            signature = blind_rsa.finalize(
                key.public_key, pending.prepared(coin), blind_signature, coin.inv
            )
        except blind_rsa.BlindRSAError:
            raise ValueError(
                f"coin {index}: the bank's signature does not verify with the published key"
            ) from None
        coins.append(
            WalletCoin(
                bank_code=pending.bank_code,
                denomination_key_id=coin.denomination_key_id,
                value_minor=coin.value_minor,
                currency=coin.currency,
                private_key=coin.private_key,
                public_key=coin.public_key,
                message_prefix=coin.message_prefix,
                denomination_signature=signature,
                deposit_until=coin.deposit_until,
                withdrawal=pending.request_id,
            )
        )
    return coins


def sign_coins(coins: Iterable[WalletCoin], order: order_pb2.Order) -> list[cash_pb2.Coin]:
    """The coins as SubmitCoins carries them, each signing order's contract (order id,
    digest, merchant) for its own face value. Whether a coin is spent is not checked
    here: :meth:`CoinWallet.mark_spent` is the wallet's guard."""
    return [
        cash_pb2.Coin(
            bank_code=coin.bank_code,
            denomination_key_id=coin.denomination_key_id,
            coin_public_key=coin.public_key,
            message_prefix=coin.message_prefix,
            denomination_signature=coin.denomination_signature,
            coin_signature=cash.sign_contract(
                coin.signing_key(),
                order.order_id,
                order.order_digest,
                order.merchant_name,
                coin.value_minor,
                coin.currency,
            ),
        )
        for coin in coins
    ]
