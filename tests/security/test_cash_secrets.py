"""No coin private key and no mint key where it should not be, after electronic cash.

Over the dev network, alice and bob withdraw coins (blinded, blind-signed, unblinded and
checked: :mod:`tests.support.cash`, the coins' private keys and the blinding factors
kept in this test's memory only), a withdrawal is sent twice, alice pays an order at the
shop with coins (SubmitCoins), the shop deposits coins of alfa's (taken through the
settlement bank) and of beta's (taken by beta itself), a coin is spent twice and a
forged coin is refused. Then:

- every log and store of every node is scanned for the PKI's private keys, the banks'
  RSA denomination keys (``<bank>/mint/*.key``) among them, and instrument numbers;
- every file the network wrote (logs, stores, the PKI directory but a wallet file), and
  every refusal's message, for the coins' private keys and the blinding factors, in raw,
  hex or base64 form;
- every file but the key's own, for each mint key (PEM body, private exponent and
  primes): a denomination key is in its bank's mint folder only, mode 0600.
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from interbank.v1 import cash_pb2, order_pb2, order_pb2_grpc

from customer.client import Customer
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel
from tests.e2e.conftest import RunningNetwork, start_network, stop
from tests.security.secrets_scan import scan
from tests.support.cash import (
    WalletCoin,
    Withdrawal,
    deposit,
    finish,
    prepare_withdrawal,
    send_withdrawal,
    spend,
)

STATE = cash_pb2.CoinDepositState
S = order_pb2.OrderStatus
DENOMINATION_KEYS = 12
"""Denomination keys per bank: 0.01 to 50.00."""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = start_network(tmp_path_factory.mktemp("cash-secrets"))
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


def _coin_values(total_minor: int) -> list[int]:
    values, left = [], total_minor
    for value in (5000, 2000, 1000, 500, 200, 100, 50, 20, 10, 5, 2, 1):
        while left >= value:
            values.append(value)
            left -= value
    return values


class _Secrets:
    """What the flows made that no node may keep: coin private keys, blinding factors."""

    def __init__(self) -> None:
        self.coin_keys: list[bytes] = []
        self.alfa_coin_publics: list[bytes] = []
        self.blinding: list[bytes] = []
        self.refusals: list[str] = []

    def __repr__(self) -> str:
        return f"_Secrets({len(self.coin_keys)} coin keys, {len(self.blinding)} factors)"

    def kept(self, withdrawal: Withdrawal, coins: list[WalletCoin]) -> list[WalletCoin]:
        """Note the coins' private keys and the withdrawal's blinding factors."""
        for coin in coins:
            if coin.bank_code == "ALFAXX01":
                self.alfa_coin_publics.append(coin.public_key)
            self.coin_keys.append(
                coin.private_key.private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
            )
        for key, *_rest, inv in withdrawal.pending:
            size = (key.public_key.key_size + 7) // 8
            self.blinding.append(inv.to_bytes(size, "big"))
        return coins


async def _withdrawn(
    net: RunningNetwork, customer: str, values: list[int], secrets: _Secrets, *, twice: bool = False
) -> list[WalletCoin]:
    """Coins withdrawn by the customer (the request sent twice if twice: the same answer)."""
    withdrawal = await prepare_withdrawal(net.network, customer, values)
    reply = await send_withdrawal(net.network, customer, withdrawal)
    if twice:
        again = await send_withdrawal(net.network, customer, withdrawal)
        assert list(again.blind_signatures) == list(reply.blind_signatures)
    return secrets.kept(withdrawal, finish(withdrawal, reply))


async def _cash(net: RunningNetwork) -> _Secrets:
    """The flows of the module docstring."""
    network = net.network
    secrets = _Secrets()
    async with Customer(network, "alice") as alice:
        placed = await alice.create_order("shop", [("book-001", 1)])
        order = placed.order
        coins = await _withdrawn(
            net, "alice", _coin_values(order.total.amount_minor), secrets, twice=True
        )
        identity = TlsIdentity.load(Pki(network.pki_dir), "alice")
        async with secure_channel(network.node("shop").address, identity) as channel:
            shop = order_pb2_grpc.OrderServiceStub(channel)
            forged = spend(coins, order.order_id, order.order_digest, order.merchant_name)
            forged[0].denomination_signature = bytes(len(forged[0].denomination_signature))
            try:
                await shop.SubmitCoins(
                    order_pb2.SubmitCoinsRequest(
                        request_id=str(uuid.uuid4()), order_id=order.order_id, coins=forged
                    ),
                    timeout=10,
                )
            except grpc.aio.AioRpcError as exc:
                secrets.refusals.append(exc.details() or "")
            else:
                raise AssertionError("a forged coin was taken")
            paid = await shop.SubmitCoins(
                order_pb2.SubmitCoinsRequest(
                    request_id=str(uuid.uuid4()),
                    order_id=order.order_id,
                    coins=spend(coins, order.order_id, order.order_digest, order.merchant_name),
                ),
                timeout=10,
            )
        assert paid.order.status in (S.ORDER_STATUS_SETTLED, S.ORDER_STATUS_DELIVERY_CONFIRMED)
        await alice.wait_for_order("shop", order.order_id, S.ORDER_STATUS_DELIVERY_CONFIRMED)
    for customer, values in (("alice", [200, 50]), ("bob", [100, 5])):
        coins = await _withdrawn(net, customer, values, secrets)
        contract = cash_pb2.CoinContract(
            order_id=f"cash-secrets-{uuid.uuid4()}",
            order_digest=os.urandom(32),
            merchant_name="shop",
        )
        spent = spend(coins, contract.order_id, contract.order_digest, "shop")
        first = await deposit(network, "shop", spent, contract, sum(values))
        assert first.state == STATE.COIN_DEPOSIT_STATE_ACCEPTED, first
        again = cash_pb2.CoinContract(
            order_id=f"cash-secrets-{uuid.uuid4()}",
            order_digest=os.urandom(32),
            merchant_name="shop",
        )
        twice = spend(coins, again.order_id, again.order_digest, "shop")
        second = await deposit(network, "shop", twice, again, sum(values))
        assert (second.state, second.reason) == (
            STATE.COIN_DEPOSIT_STATE_REJECTED,
            "COIN_DOUBLE_SPENT",
        ), second
    return secrets


def _forms(data: bytes) -> list[bytes]:
    """How bytes would appear if written: raw, hex (either case), base64."""
    return [data, data.hex().encode(), data.hex().upper().encode(), base64.b64encode(data)]


def _files(net: RunningNetwork) -> dict[Path, bytes]:
    """Every file the network wrote: logs, stores, the PKI directory."""
    roots = {net.workdir.resolve(), net.network.pki_dir.resolve()}
    found = {
        path.resolve(): b""
        for root in roots
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink()
    }
    return {path: path.read_bytes() for path in sorted(found)}


def _mint_forms(key_file: Path) -> list[bytes]:
    """A mint key as it could leak: a piece of its PEM body (from a line in the middle:
    the start is the same for every key of a size), its private exponent and primes (raw
    and hex)."""
    pem = key_file.read_bytes()
    lines = [line for line in pem.splitlines() if not line.startswith(b"-----")]
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey), key_file
    numbers = key.private_numbers()
    forms = [lines[len(lines) // 2][:40]]
    for value in (numbers.d, numbers.p, numbers.q):
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        forms += [raw, raw.hex().encode()]
    return forms


def test_no_coin_key_blinding_factor_or_mint_key_where_it_does_not_belong(
    net: RunningNetwork, report: Callable[[str], None]
) -> None:
    secrets = asyncio.run(_cash(net))
    assert len(secrets.coin_keys) == len(set(secrets.coin_keys)) == 7  # 45.00, 2.50, 1.05
    assert len(secrets.refusals) == 1

    # The PKI's keys (the mint keys among them) and the instrument numbers.
    found = scan(net.network, net.workdir / "logs", [])
    assert found.leaks == (), found.leaks
    pki = net.network.pki_dir
    mint_keys = sorted(pki.glob("*/mint/*.key"))
    assert len(mint_keys) == 2 * DENOMINATION_KEYS, [str(p.relative_to(pki)) for p in mint_keys]
    assert found.keys >= len(mint_keys)

    files = _files(net)
    # Coin keys and blinding factors: in no file (no wallet file is made here) and in no
    # refusal's message.
    leaked = [
        f"coin secret {n} in {path.relative_to(net.workdir.resolve())}"
        for n, secret in enumerate(secrets.coin_keys + secrets.blinding)
        for path, data in files.items()
        if path.name != "wallet.json" and any(form in data for form in _forms(secret))
    ]
    leaked += [
        f"coin secret {n} in a refusal"
        for n, secret in enumerate(secrets.coin_keys + secrets.blinding)
        for message in secrets.refusals
        if any(form.decode("ascii") in message for form in _forms(secret)[1:])
    ]
    assert leaked == [], leaked
    # The search finds what belongs in a store: alfa keeps the public keys of its coins
    # deposited back (spent_coins).
    alfa = b"".join(data for path, data in files.items() if "alfa" in path.parts)
    assert all(public in alfa for public in secrets.alfa_coin_publics)

    # Each mint key: in its own file only, readable by its owner only.
    misplaced = []
    for key_file in mint_keys:
        assert key_file.stat().st_mode & 0o777 == 0o600, key_file
        forms = _mint_forms(key_file)
        assert forms[0] in files[key_file.resolve()], key_file  # the PEM piece: the search works
        misplaced += [
            f"{key_file.relative_to(pki)} in {path}"
            for path, data in files.items()
            if path != key_file.resolve() and any(form in data for form in forms)
        ]
    assert misplaced == [], misplaced
    report(
        f"cash secrets scan: {found.summary()}; {len(secrets.coin_keys)} coin private keys and"
        f" {len(secrets.blinding)} blinding factors looked for in {len(files)} files and"
        f" {len(secrets.refusals)} refusal, {len(mint_keys)} mint keys in every other file:"
        " none found"
    )
