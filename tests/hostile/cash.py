"""Electronic cash in the hostile world, and fresh coins for the boundary cases.

:func:`build_cash` drives real withdrawals and deposits (every coin blind-signed
by its bank's mint, unblinded and verified by the wallet, as
:mod:`tests.support.cash` does) and keeps what a hostile request may name:

- the banks' key sets (public keys and their ids);
- W: carol's withdrawal at alfa (its blinded coins and the blind signatures: without
  the wallet's blinding factors, which are dropped, they show nothing of the coins);
- X: alice's coins from alfa, signing order K's contract, deposited by the shop at beta
  and taken by alfa through the settlement bank (ACCEPTED);
- Z: X's coins again, signing another contract: REJECTED COIN_DOUBLE_SPENT, X's first
  spending as proof;
- Y: bob's coins from beta, deposited by the shop at beta itself (ACCEPTED).

Every coin the world shows is spent, so no hostile request can move money with one;
the coins' private keys are dropped once they have signed. A boundary case that needs
coins no bank has seen withdraws them through :class:`CoinKit` (carol's at alfa, bob's
at beta), which keeps their private keys in memory only.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf.message import Message
from interbank.v1 import cash_pb2, common_pb2, order_pb2

from payment.config import NetworkConfig
from tests.support.cash import (
    WalletCoin,
    Withdrawal,
    denominations,
    deposit,
    prepare_withdrawal,
    send_withdrawal,
    spend,
    withdraw,
)

__all__ = [
    "DENOMINATIONS_MINOR",
    "CoinKit",
    "WorldCash",
    "WorldCoinDeposit",
    "WorldDenomination",
    "build_cash",
    "coin_values",
]

DENOMINATIONS_MINOR = (5000, 2000, 1000, 500, 200, 100, 50, 20, 10, 5, 2, 1)
"""The mint's coin values, largest first (bank.mint.DENOMINATIONS_MINOR)."""

_STATE = cash_pb2.CoinDepositState


def coin_values(total_minor: int) -> list[int]:
    """The fewest coins whose face values add up to total_minor exactly."""
    values, left = [], total_minor
    for value in DENOMINATIONS_MINOR:
        while left >= value:
            values.append(value)
            left -= value
    return values


@dataclass(frozen=True)
class WorldDenomination:
    """One key of a bank's published key set."""

    bank_code: str
    """The bank."""
    key_id: str
    """The key's id."""
    value_minor: int
    """Its coins' face value."""
    public_key: bytes
    """The RSA public key, DER SubjectPublicKeyInfo."""

    @property
    def modulus(self) -> int:
        """The key's modulus."""
        key = serialization.load_der_public_key(self.public_key)
        assert isinstance(key, rsa.RSAPublicKey)
        return key.public_numbers().n


@dataclass(frozen=True)
class WorldCoinDeposit:
    """A deposit of coins the shop made at beta in the world, decided."""

    request: bytes
    """The DepositCoinsRequest, serialized as the shop sent it."""
    deposit_id: str
    """beta's deposit id (also the CoinDeposit's id)."""
    state: int
    """Where it stands (CoinDepositState): ACCEPTED or REJECTED."""
    reason: str
    """Why it was rejected (empty when ACCEPTED)."""
    proof: bytes
    """The double-spend proof it was answered with, serialized (empty if none)."""
    message: bytes
    """The CoinDeposit beta made of it, serialized as beta keeps it."""

    def deposit_request(self, request_id: str | None = None) -> cash_pb2.DepositCoinsRequest:
        """The deposit again, under its own request_id unless another is given."""
        request = cash_pb2.DepositCoinsRequest.FromString(self.request)
        if request_id is not None:
            request.request_id = request_id
        return request

    @property
    def request_id(self) -> str:
        """The shop's DepositCoins request_id."""
        return cash_pb2.DepositCoinsRequest.FromString(self.request).request_id

    @property
    def coins(self) -> list[cash_pb2.Coin]:
        """The coins, as spent."""
        return list(cash_pb2.DepositCoinsRequest.FromString(self.request).coins)

    @property
    def contract(self) -> cash_pb2.CoinContract:
        """The contract the coins signed."""
        return cash_pb2.DepositCoinsRequest.FromString(self.request).contract

    @property
    def amount_minor(self) -> int:
        """The sum of the coins' face values."""
        return cash_pb2.DepositCoinsRequest.FromString(self.request).amount.amount_minor

    def deposited(self, **fields: object) -> cash_pb2.CoinDeposit:
        """beta's CoinDeposit of it, with fields changed (a message field is copied in)."""
        message = cash_pb2.CoinDeposit.FromString(self.message)
        for name, value in fields.items():
            if isinstance(value, Message):
                getattr(message, name).CopyFrom(value)
            elif isinstance(value, list):
                del getattr(message, name)[:]
                getattr(message, name).extend(value)
            else:
                setattr(message, name, value)
        return message


@dataclass(frozen=True)
class WorldCash:
    """The world's coins and key sets (module docstring); nothing here is secret."""

    denominations: tuple[WorldDenomination, ...]
    """alfa's and beta's key sets."""
    withdrawal: bytes
    """W: carol's WithdrawRequest at alfa, serialized."""
    withdrawn: bytes
    """W's WithdrawResponse, serialized."""
    paid: WorldCoinDeposit
    """X: alice's alfa coins for order K, taken through the settlement bank."""
    double_spent: WorldCoinDeposit
    """Z: X's coins again for another contract, REJECTED COIN_DOUBLE_SPENT."""
    on_us: WorldCoinDeposit
    """Y: bob's beta coins, taken by beta at deposit."""

    @property
    def deposits(self) -> tuple[WorldCoinDeposit, ...]:
        """Every deposit of the world: all decided, every coin in them spent."""
        return (self.paid, self.double_spent, self.on_us)

    def keys(self, bank_code: str) -> tuple[WorldDenomination, ...]:
        """A bank's key set, by value ascending."""
        found = [d for d in self.denominations if d.bank_code == bank_code]
        return tuple(sorted(found, key=lambda d: d.value_minor))

    def key(self, bank_code: str, value_minor: int) -> WorldDenomination:
        """A bank's key of one value."""
        return next(d for d in self.keys(bank_code) if d.value_minor == value_minor)

    def withdraw_request(self, request_id: str | None = None) -> cash_pb2.WithdrawRequest:
        """W again, under its own request_id unless another is given."""
        request = cash_pb2.WithdrawRequest.FromString(self.withdrawal)
        if request_id is not None:
            request.request_id = request_id
        return request


async def build_cash(
    network: NetworkConfig, order_k: order_pb2.Order, beta_store: sqlite3.Connection
) -> WorldCash:
    """W, X, Z and Y of the module docstring; beta_store reads beta's CoinDeposits."""
    alfa = network.node("alfa").bank_code or ""
    beta = network.node("beta").bank_code or ""
    keys = [
        WorldDenomination(bank_code, k.key_id, k.value_minor, k.public_der)
        for bank, bank_code in (("alfa", alfa), ("beta", beta))
        for k in await denominations(network, bank, "shop")
    ]
    drawn = await prepare_withdrawal(network, "carol", [500, 20, 1])
    drawn_reply = await send_withdrawal(network, "carol", drawn)
    contract_k = cash_pb2.CoinContract(
        order_id=order_k.order_id, order_digest=order_k.order_digest, merchant_name="shop"
    )
    coins_k, _ = await withdraw(network, "alice", coin_values(order_k.total.amount_minor))
    paid = await _deposited(network, coins_k, contract_k, beta_store)
    other = cash_pb2.CoinContract(
        order_id=f"cash-world-double-spend-{uuid.uuid4()}",
        order_digest=os.urandom(32),
        merchant_name="shop",
    )
    double_spent = await _deposited(network, coins_k, other, beta_store)
    coins_y, _ = await withdraw(network, "bob", [1000, 200])
    on_us_contract = cash_pb2.CoinContract(
        order_id=f"cash-world-on-us-{uuid.uuid4()}",
        order_digest=os.urandom(32),
        merchant_name="shop",
    )
    on_us = await _deposited(network, coins_y, on_us_contract, beta_store)
    del coins_k, coins_y  # the private keys: every coin is spent, none is needed again
    states = {
        name: (d.state, d.reason) for name, d in (("X", paid), ("Z", double_spent), ("Y", on_us))
    }
    assert states == {
        "X": (_STATE.COIN_DEPOSIT_STATE_ACCEPTED, ""),
        "Z": (_STATE.COIN_DEPOSIT_STATE_REJECTED, "COIN_DOUBLE_SPENT"),
        "Y": (_STATE.COIN_DEPOSIT_STATE_ACCEPTED, ""),
    }, states
    proof = cash_pb2.CoinSpendProof.FromString(double_spent.proof)
    assert proof.contract == contract_k, proof
    return WorldCash(
        denominations=tuple(keys),
        withdrawal=drawn.request.SerializeToString(),
        withdrawn=drawn_reply.SerializeToString(),
        paid=paid,
        double_spent=double_spent,
        on_us=on_us,
    )


async def _deposited(
    network: NetworkConfig,
    coins: list[WalletCoin],
    contract: cash_pb2.CoinContract,
    beta_store: sqlite3.Connection,
) -> WorldCoinDeposit:
    """The shop deposits the coins, signing contract, at beta; the deposit as decided."""
    request_id = str(uuid.uuid4())
    spent = spend(coins, contract.order_id, contract.order_digest, contract.merchant_name)
    total = sum(c.value_minor for c in coins)
    answer = await deposit(network, "shop", spent, contract, total, request_id=request_id)
    # The request as tests.support.cash.deposit sent it.
    request = cash_pb2.DepositCoinsRequest(
        request_id=request_id,
        contract=contract,
        coins=spent,
        amount=common_pb2.Money(amount_minor=total, currency_code=network.currency),
    )
    row = beta_store.execute(
        "SELECT message FROM coin_deposits WHERE deposit_id = ?", (answer.deposit_id,)
    ).fetchone()
    assert row is not None, f"beta keeps no coin deposit {answer.deposit_id}"
    return WorldCoinDeposit(
        request=request.SerializeToString(),
        deposit_id=answer.deposit_id,
        state=answer.state,
        reason=answer.reason,
        proof=(
            answer.double_spend_proof.SerializeToString()
            if answer.HasField("double_spend_proof")
            else b""
        ),
        message=bytes(row[0]),
    )


class CoinKit:
    """Withdraws fresh coins (carol's from alfa, bob's from beta) and spends them. Secret
    (it holds coins' private keys and blinding factors): its repr shows none."""

    def __init__(self, network: NetworkConfig) -> None:
        self._network = network
        self._holders = {
            network.node("alfa").bank_code or "": "carol",
            network.node("beta").bank_code or "": "bob",
        }

    def __repr__(self) -> str:
        return "CoinKit(<redacted>)"

    def coins(self, bank_code: str, values: Sequence[int]) -> list[WalletCoin]:
        """Fresh coins of these values from the bank (by code), no bank has seen spent."""
        coins, _ = asyncio.run(withdraw(self._network, self._holders[bank_code], list(values)))
        return coins

    def prepared(self, customer: str, values: Sequence[int], request_id: str) -> Withdrawal:
        """A withdrawal of these values for the customer, blinded and not yet sent."""
        return asyncio.run(prepare_withdrawal(self._network, customer, list(values), request_id))

    @staticmethod
    def spent(coins: list[WalletCoin], contract: cash_pb2.CoinContract) -> list[cash_pb2.Coin]:
        """The coins, each signing contract for its face value."""
        return spend(coins, contract.order_id, contract.order_digest, contract.merchant_name)
