"""Withdrawing, spending and depositing coins in tests, over the network's real nodes.

What a wallet and a merchant holding their own keys do: the customer fetches its
bank's key set, blinds coin messages and withdraws; the coins sign an order's
contract; the merchant deposits them at its bank. Nothing bypasses a node's
checks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from interbank.v1 import cash_pb2, cash_pb2_grpc, common_pb2

from payment import blind_rsa, cash
from payment.config import NetworkConfig
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

__all__ = [
    "WalletCoin",
    "Withdrawal",
    "denominations",
    "deposit",
    "finish",
    "prepare_withdrawal",
    "send_withdrawal",
    "spend",
    "withdraw",
]


@dataclass(frozen=True)
class WalletCoin:
    """A withdrawn coin with its private key."""

    bank_code: str
    key_id: str
    value_minor: int
    currency: str
    private_key: ed25519.Ed25519PrivateKey
    public_key: bytes
    message_prefix: bytes
    signature: bytes


async def denominations(
    network: NetworkConfig, bank: str, as_name: str
) -> list[cash.DenominationKey]:
    """A bank's key set, asked by as_name (signature checked by the caller if it cares)."""
    identity = TlsIdentity.load(Pki(network.pki_dir), as_name)
    async with secure_channel(network.node(bank).address, identity) as channel:
        reply = await cash_pb2_grpc.CashServiceStub(channel).GetDenominations(
            cash_pb2.GetDenominationsRequest()
        )
    keys = []
    for d in reply.denominations:
        public = serialization.load_der_public_key(d.public_key)
        assert isinstance(public, rsa.RSAPublicKey)
        keys.append(
            cash.DenominationKey(
                d.denomination_key_id,
                d.value.amount_minor,
                d.value.currency_code,
                public,
                d.withdraw_until.seconds,
                d.deposit_until.seconds,
            )
        )
    return keys


@dataclass(frozen=True)
class Withdrawal:
    """A withdrawal request and what the wallet keeps to finish it."""

    request: cash_pb2.WithdrawRequest
    pending: list[tuple[cash.DenominationKey, ed25519.Ed25519PrivateKey, bytes, bytes, int]]
    bank_code: str


async def prepare_withdrawal(
    network: NetworkConfig, customer: str, values: list[int], request_id: str | None = None
) -> Withdrawal:
    """Blinded coins of the given values for the customer's bank, not yet sent."""
    config = network.customer(customer)
    bank = network.node(config.bank)
    assert bank.bank_code is not None
    keys = {k.value_minor: k for k in await denominations(network, config.bank, customer)}
    pending = []
    blinded_coins = []
    for value in values:
        key = keys[value]
        private = ed25519.Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        prepared = blind_rsa.prepare(cash.coin_message(bank.bank_code, key.key_id, public))
        blinded, inv = blind_rsa.blind(key.public_key, prepared)
        pending.append((key, private, public, prepared, inv))
        blinded_coins.append(
            cash_pb2.BlindedCoin(denomination_key_id=key.key_id, blinded_message=blinded)
        )
    request = cash_pb2.WithdrawRequest(
        request_id=request_id or str(uuid.uuid4()),
        account_id=config.account_id,
        coins=blinded_coins,
    )
    return Withdrawal(request, pending, bank.bank_code)


async def send_withdrawal(
    network: NetworkConfig, customer: str, withdrawal: Withdrawal
) -> cash_pb2.WithdrawResponse:
    """Withdraw at the customer's bank, as the customer."""
    identity = TlsIdentity.load(Pki(network.pki_dir), customer)
    bank = network.node(network.customer(customer).bank)
    async with secure_channel(bank.address, identity) as channel:
        reply: cash_pb2.WithdrawResponse = await cash_pb2_grpc.CashServiceStub(channel).Withdraw(
            withdrawal.request
        )
    return reply


def finish(withdrawal: Withdrawal, reply: cash_pb2.WithdrawResponse) -> list[WalletCoin]:
    """The coins: each blind signature unblinded (and verified with the published key)."""
    coins = []
    for (key, private, public, prepared, inv), blind_sig in zip(
        withdrawal.pending, reply.blind_signatures, strict=True
    ):
        signature = blind_rsa.finalize(key.public_key, prepared, blind_sig, inv)
        coins.append(
            WalletCoin(
                withdrawal.bank_code,
                key.key_id,
                key.value_minor,
                key.currency,
                private,
                public,
                prepared[: blind_rsa.MSG_PREFIX_BYTES],
                signature,
            )
        )
    return coins


async def withdraw(
    network: NetworkConfig, customer: str, values: list[int], request_id: str | None = None
) -> tuple[list[WalletCoin], cash_pb2.WithdrawResponse]:
    """Withdraw one coin of each value from the customer's bank."""
    withdrawal = await prepare_withdrawal(network, customer, values, request_id)
    reply = await send_withdrawal(network, customer, withdrawal)
    return finish(withdrawal, reply), reply


def spend(
    coins: list[WalletCoin], order_id: str, order_digest: bytes, merchant: str
) -> list[cash_pb2.Coin]:
    """The coins, each signing the contract for its face value."""
    return [
        cash_pb2.Coin(
            bank_code=c.bank_code,
            denomination_key_id=c.key_id,
            coin_public_key=c.public_key,
            message_prefix=c.message_prefix,
            denomination_signature=c.signature,
            coin_signature=cash.sign_contract(
                c.private_key, order_id, order_digest, merchant, c.value_minor, c.currency
            ),
        )
        for c in coins
    ]


async def deposit(
    network: NetworkConfig,
    merchant: str,
    coins: list[cash_pb2.Coin],
    contract: cash_pb2.CoinContract,
    amount_minor: int,
    request_id: str | None = None,
) -> cash_pb2.DepositCoinsResponse:
    """DepositCoins at the merchant's bank, as the merchant."""
    config = network.merchant(merchant)
    identity = TlsIdentity.load(Pki(network.pki_dir), merchant)
    async with secure_channel(network.node(config.bank).address, identity) as channel:
        response: cash_pb2.DepositCoinsResponse = await cash_pb2_grpc.CashServiceStub(
            channel
        ).DepositCoins(
            cash_pb2.DepositCoinsRequest(
                request_id=request_id or str(uuid.uuid4()),
                contract=contract,
                coins=coins,
                amount=common_pb2.Money(amount_minor=amount_minor, currency_code=network.currency),
            )
        )
    return response
