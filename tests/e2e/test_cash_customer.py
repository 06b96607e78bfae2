"""The customer's side of electronic cash: the key set checked, coins withdrawn into a
wallet file, a lost withdrawal answer retried, coin purchases through the real
storefront, a double spending refused, and the issuing bank unable to link what it
kept at withdrawal to the coins it saw at deposit.

The first tests need no node: the wallet's coin choice, and the key set checks on
answers signed here with the banks' real published keys. The rest run over real mTLS
sockets on a network of their own: buyers at alfa (the shop banks at beta, so their
coins go through the settlement bank) and at beta (taken by beta itself).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from interbank.v1 import cash_pb2, cash_pb2_grpc, common_pb2, order_pb2

from customer.client import Customer
from customer.coins import CoinSpending, KeySet, WalletCoin, check_key_set, sign_coins
from customer.shop import all_balances, purchase_with_coins
from customer.wallet import CoinWallet, default_wallet_path, render_wallet
from ops.audit import audit_network
from ops.cli import main as paynet
from payment import blind_rsa, cash
from payment.cheque_trust import ChequeKeys
from payment.clock import timestamp
from payment.config import NetworkConfig
from payment.errors import PaynetError
from payment.storage import read_snapshot
from tests.e2e.conftest import RunningNetwork, start_network, stop
from tests.support import make_pki, write_network

S = order_pb2.OrderStatus
ACROSS, ON_US, PRIVATE, SPENDER = "cash-alfa", "cash-beta", "cash-private", "cash-spender"
"""Buyers at alfa, at beta, at alfa (the privacy test's own) and at beta."""
BOOK, LAMP = 4500, 3250


def quiet(*_args: str) -> None:
    """A step printer that prints nothing."""


# -- without a node ----------------------------------------------------------------------------


def a_coin(value: int, serial: int, *, bank: str = "ALFAXX01", spent: bool = False) -> WalletCoin:
    """A wallet coin of a value (its signatures are not checked by the wallet)."""
    return WalletCoin(
        bank_code=bank,
        denomination_key_id="0" * 32,
        value_minor=value,
        currency="EUR",
        private_key=serial.to_bytes(32, "big"),
        public_key=(serial + 10**6).to_bytes(32, "big"),
        message_prefix=bytes(32),
        denomination_signature=b"\x01" * 384,
        deposit_until=2**40,
        withdrawal="w-1",
        spent=CoinSpending("o-0", "shop", "r-0") if spent else None,
    )


def test_the_wallet_pays_with_the_fewest_coins_that_add_up_exactly() -> None:
    wallet = CoinWallet()
    coins = [a_coin(v, i) for i, v in enumerate([2000, 2000, 2000, 5000, 500, 200, 50])]
    wallet.complete_withdrawal("w-1", coins)
    chosen = wallet.select(6000, "EUR")
    assert chosen is not None and sorted(c.value_minor for c in chosen) == [2000, 2000, 2000]
    chosen = wallet.select(5500, "EUR")
    assert chosen is not None and sorted(c.value_minor for c in chosen) == [500, 5000]
    assert wallet.select(10, "EUR") is None  # no coin that small: withdraw 0.10 exactly
    assert wallet.select(6000, "USD") is None
    assert wallet.select(6000, "EUR", max_coins=2) is None


def test_spent_coins_and_coins_of_two_banks_never_make_one_payment() -> None:
    wallet = CoinWallet()
    wallet.complete_withdrawal(
        "w-1", [a_coin(2000, 1), a_coin(2000, 2, spent=True), a_coin(500, 3, bank="BETAXX02")]
    )
    assert wallet.select(4000, "EUR") is None
    assert wallet.select(2500, "EUR") is None
    assert [c.value_minor for c in wallet.select(2000, "EUR") or []] == [2000]


def test_a_coin_shown_for_one_order_is_not_shown_for_another() -> None:
    wallet = CoinWallet()
    coin = a_coin(500, 1)
    wallet.complete_withdrawal("w-1", [coin])
    wallet.mark_spent([coin], "order-1", "shop", "r-1")
    wallet.mark_spent([coin], "order-1", "shop", "r-1")  # the same payment again
    with pytest.raises(ValueError, match="already shown for another order"):
        wallet.mark_spent([coin], "order-2", "shop", "r-2")
    assert wallet.unspent() == []


def test_a_damaged_wallet_file_is_refused_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / "wallet.json"
    coin = a_coin(500, 7)
    CoinWallet(path).complete_withdrawal("w-1", [coin])
    assert CoinWallet(path).coins == [coin]
    text = path.read_text()
    for damaged in (text[: len(text) // 2], text.replace('"withdrawal"', '"withdrawl"')):
        path.write_text(damaged)
        with pytest.raises(ValueError, match="not a readable coin wallet") as refused:
            CoinWallet(path)
        assert coin.private_key.hex() not in str(refused.value)


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> NetworkConfig:
    """A network file and its PKI (banks' signing keys included); no node runs."""
    return make_pki(write_network(tmp_path_factory.mktemp("offline-cash")))


@pytest.fixture(scope="module")
def denomination() -> cash.DenominationKey:
    """One 2048-bit denomination key (the smallest the module takes: quick to make)."""
    key = blind_rsa.generate_signing_key(2048)
    return cash.DenominationKey(
        cash.denomination_key_id(key.public_key()), 500, "EUR", key.public_key(), 2**33, 2**34
    )


def signed_key_set(
    network: NetworkConfig,
    keys: list[cash.DenominationKey],
    *,
    signer: str = "alfa",
    bank_code: str = "ALFAXX01",
) -> cash_pb2.GetDenominationsResponse:
    """A GetDenominations answer as a bank makes it, signed with signer's published key."""
    key_id, bank_key = ChequeKeys(network).signing_key(signer)
    encoding = cash.key_set_encoding(bank_code, keys)
    return cash_pb2.GetDenominationsResponse(
        bank_code=bank_code,
        key_set=encoding,
        signature=cash.sign_key_set(bank_key, encoding),
        bank_key_id=key_id,
        denominations=[
            cash_pb2.Denomination(
                denomination_key_id=k.key_id,
                value=common_pb2.Money(amount_minor=k.value_minor, currency_code=k.currency),
                public_key=k.public_der,
                withdraw_until=timestamp(dt.datetime.fromtimestamp(k.withdraw_until, dt.UTC)),
                deposit_until=timestamp(dt.datetime.fromtimestamp(k.deposit_until, dt.UTC)),
            )
            for k in keys
        ],
    )


def test_a_key_set_signed_by_the_bank_is_taken_as_signed(
    offline: NetworkConfig, denomination: cash.DenominationKey
) -> None:
    key_set = check_key_set(
        signed_key_set(offline, [denomination]), "ALFAXX01", ChequeKeys(offline)
    )
    assert [(k.key_id, k.value_minor, k.deposit_until) for k in key_set.keys] == [
        (denomination.key_id, 500, 2**34)
    ]


def test_a_key_set_signed_by_another_bank_is_refused(
    offline: NetworkConfig, denomination: cash.DenominationKey
) -> None:
    reply = signed_key_set(offline, [denomination], signer="beta")  # beta's key, alfa's code
    with pytest.raises(ValueError, match="names no published signing key"):
        check_key_set(reply, "ALFAXX01", ChequeKeys(offline))
    reply = signed_key_set(offline, [denomination])
    reply.signature = bytes(64)
    with pytest.raises(ValueError, match="key_set signature does not verify"):
        check_key_set(reply, "ALFAXX01", ChequeKeys(offline))
    with pytest.raises(ValueError, match="bank_code is not BETAXX02"):
        check_key_set(signed_key_set(offline, [denomination]), "BETAXX02", ChequeKeys(offline))


def test_denominations_that_are_not_what_the_bank_signed_are_refused(
    offline: NetworkConfig, denomination: cash.DenominationKey
) -> None:
    reply = signed_key_set(offline, [denomination])
    reply.denominations[0].value.amount_minor = 5000  # a 5.00 key passed off as 50.00
    with pytest.raises(ValueError, match="do not encode to the signed key set"):
        check_key_set(reply, "ALFAXX01", ChequeKeys(offline))
    reply = signed_key_set(offline, [denomination])
    reply.denominations[0].denomination_key_id = "f" * 32
    with pytest.raises(ValueError, match=r"denomination_key_id is not its key's id"):
        check_key_set(reply, "ALFAXX01", ChequeKeys(offline))
    reply = signed_key_set(offline, [denomination])
    del reply.denominations[:]
    with pytest.raises(ValueError, match="do not encode to the signed key set"):
        check_key_set(reply, "ALFAXX01", ChequeKeys(offline))


# -- over the network --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cash_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The dev network with buyers at alfa, beta, alfa and beta; no net debit cap in the way."""
    running = start_network(
        tmp_path_factory.mktemp("cash-customer"),
        buyers=(ACROSS, ON_US, PRIVATE, SPENDER),
        net_debit_cap_minor=10**12,
    )
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


async def outstanding(network: NetworkConfig) -> int:
    """The banks' e-cash outstanding liability, from an audit that passes."""
    report = await audit_network(network)
    assert report.ok, report.to_json()
    value = report.to_json()["checks"]["cash_outstanding"]["outstanding"]
    assert isinstance(value, int)
    return value


async def test_a_withdrawal_debits_exactly_its_face_value_into_the_outstanding_liability(
    cash_net: RunningNetwork, tmp_path: Path
) -> None:
    network = cash_net.network
    before, owed = await all_balances(network), await outstanding(network)
    async with Customer(network, ACROSS, wallet=tmp_path / "wallet.json") as customer:
        coins = await customer.withdraw_coins(BOOK + LAMP)
        kept = customer.wallet.unspent()
    assert sorted((c.value_minor for c in coins), reverse=True) == [5000, 2000, 500, 200, 50]
    assert kept == coins
    assert {c.bank_code for c in coins} == {"ALFAXX01"}
    after = await all_balances(network)
    assert after[f"{ACROSS}-current"] == before[f"{ACROSS}-current"] - (BOOK + LAMP)
    assert await outstanding(network) == owed + BOOK + LAMP
    assert sum(after.values()) + await outstanding(network) == network.total_opening_money()


async def test_a_withdrawal_whose_answer_was_lost_is_sent_again_and_debited_once(
    cash_net: RunningNetwork, tmp_path: Path
) -> None:
    network = cash_net.network
    path = tmp_path / "wallet.json"
    before = (await all_balances(network))[f"{ON_US}-current"]
    async with Customer(network, ON_US, wallet=path) as customer:
        pending = await customer.prepare_withdrawal(1250, request_id="lost-answer")
        # The call reaches the bank; its answer never reaches the wallet.
        stub = cash_pb2_grpc.CashServiceStub(customer.channel("beta"))
        lost: cash_pb2.WithdrawResponse = await stub.Withdraw(pending.request())
    assert lost.debited.amount_minor == 1250
    # The client starts again from its wallet file and retries the same request.
    async with Customer(network, ON_US, wallet=path) as again:
        assert [p.request_id for p in again.wallet.pending()] == ["lost-answer"]
        coins = await again.withdraw_coins(request_id="lost-answer")
        assert again.wallet.pending() == []
        assert await again.withdraw_coins(request_id="lost-answer") == coins  # kept, not sent
    key_set = await denominations_of(network, ON_US)
    unblinded = []
    for coin, signature in zip(pending.coins, lost.blind_signatures, strict=True):
        key = key_set.key(coin.denomination_key_id)
        assert key is not None
        unblinded.append(
            blind_rsa.finalize(key.public_key, pending.prepared(coin), signature, coin.inv)
        )
    assert [c.denomination_signature for c in coins] == unblinded  # the same blind signatures
    assert [c.value_minor for c in coins] == [1000, 200, 50]
    assert (await all_balances(network))[f"{ON_US}-current"] == before - 1250


async def denominations_of(network: NetworkConfig, customer: str) -> KeySet:
    """The customer's bank's checked key set."""
    async with Customer(network, customer) as client:
        return await client.denominations()


async def test_a_refused_withdrawal_is_forgotten_and_debits_nothing(
    cash_net: RunningNetwork, tmp_path: Path
) -> None:
    network = cash_net.network
    before = await all_balances(network)
    async with Customer(network, "bob", wallet=tmp_path / "wallet.json") as customer:
        with pytest.raises(PaynetError) as refused:
            await customer.withdraw_coins(100_000)  # bob has 900.00 EUR
        assert customer.wallet.pending() == []
        assert customer.wallet.coins == []
    assert refused.value.reason == "INSUFFICIENT_FUNDS"
    assert await all_balances(network) == before


async def test_the_wallet_file_survives_a_restart_and_only_its_owner_may_read_it(
    cash_net: RunningNetwork, tmp_path: Path
) -> None:
    path = tmp_path / "alice" / "wallet.json"
    async with Customer(cash_net.network, ACROSS, wallet=path) as customer:
        coins = await customer.withdraw_coins(720)
    assert path.stat().st_mode & 0o777 == 0o600
    reopened = CoinWallet(path)
    assert reopened.unspent() == coins
    assert [c.private_key for c in reopened.coins] == [c.private_key for c in coins]
    assert [c.signing_key().public_key().public_bytes_raw() for c in reopened.coins] == [
        c.public_key for c in coins
    ]
    shown = render_wallet(reopened) + repr(reopened.coins)
    assert "unspent: 3 coins, 7.20 EUR; spent: 0 coins" in shown
    assert not any(c.private_key.hex() in shown for c in coins)


async def test_a_coin_purchase_is_delivered_and_moves_exactly_its_total(
    cash_net: RunningNetwork, tmp_path: Path
) -> None:
    network = cash_net.network
    before, owed = await all_balances(network), await outstanding(network)
    async with Customer(network, SPENDER, wallet=tmp_path / "wallet.json") as customer:
        result = await purchase_with_coins(customer, "shop", [("lamp-002", 1)], say=quiet)
        spent = customer.wallet.spent_for(result.order.order_id)
    assert result.order.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    assert result.withdrawn_minor == LAMP
    assert sorted(c.value_minor for c in spent) == [50, 200, 1000, 2000]
    after = await all_balances(network)
    assert after[f"{SPENDER}-current"] == before[f"{SPENDER}-current"] - LAMP
    assert after["shop-sales"] == before["shop-sales"] + LAMP
    assert await outstanding(network) == owed
    assert sum(after.values()) + owed == network.total_opening_money()


async def test_coins_already_in_the_wallet_pay_without_a_withdrawal(
    cash_net: RunningNetwork, tmp_path: Path
) -> None:
    network = cash_net.network
    async with Customer(network, ACROSS, wallet=tmp_path / "wallet.json") as customer:
        await customer.withdraw_coins(BOOK)
        before, owed = await all_balances(network), await outstanding(network)
        result = await purchase_with_coins(customer, "shop", [("book-001", 1)], say=quiet)
        left = customer.wallet.unspent()
    assert result.order.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    assert result.withdrawn_minor == 0
    assert left == []
    after = await all_balances(network)
    assert after[f"{ACROSS}-current"] == before[f"{ACROSS}-current"]
    assert after["shop-sales"] == before["shop-sales"] + BOOK
    assert await outstanding(network) == owed - BOOK


async def test_spent_coins_shown_again_for_another_order_are_refused_double_spent(
    cash_net: RunningNetwork, tmp_path: Path
) -> None:
    network = cash_net.network
    async with Customer(network, SPENDER, wallet=tmp_path / "wallet.json") as customer:
        paid = await purchase_with_coins(customer, "shop", [("book-001", 1)], say=quiet)
        before = await all_balances(network)
        second = (await customer.create_order("shop", [("book-001", 1)])).order
        with pytest.raises(ValueError, match="already shown for another order"):
            await customer.pay_with_coins("shop", second, coins=list(paid.coins))
        # Past the wallet: copies of the spent coins, signing the second order's contract.
        with pytest.raises(PaynetError) as refused:
            await customer.submit_coins("shop", second.order_id, sign_coins(paid.coins, second))
        order = await customer.get_order("shop", second.order_id)
    assert refused.value.code.name == "ALREADY_EXISTS"
    assert refused.value.reason == "COIN_DOUBLE_SPENT"
    assert refused.value.metadata["coin_public_key"] in {c.public_key.hex() for c in paid.coins}
    assert order.status == S.ORDER_STATUS_CREATED
    assert await all_balances(network) == before


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | memoryview):
        return bytes(value)
    return str(value).encode()


def _forms(secret: bytes) -> list[bytes]:
    """The ways a value could be stored: raw, hex, base64, and hashed."""
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        hashlib.sha256(secret).digest(),
        hashlib.sha256(secret).hexdigest().encode(),
    ]


async def test_the_issuing_bank_cannot_link_a_deposited_coin_to_its_withdrawal(
    cash_net: RunningNetwork, tmp_path: Path
) -> None:
    """Unlinkability at the wallet level, through the real storefront: PRIVATE withdraws
    twice at alfa and pays two orders at the shop (beta), whose bank has alfa take the
    coins. Everything alfa stored, every table, column and value, is read; what it kept
    of the withdrawals (their rows, and every row that names a withdrawal's request id or
    ledger transfer) contains no coin public key, message prefix, denomination signature
    or coin signature that alfa saw at deposit, in any form."""
    network = cash_net.network
    orders: list[order_pb2.Order] = []
    async with Customer(network, PRIVATE, wallet=tmp_path / "wallet.json") as customer:
        for lines in ([("lamp-002", 1)], [("book-001", 1)]):
            result = await purchase_with_coins(customer, "shop", lines, say=quiet)
            assert result.order.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
            orders.append(result.order)
        paid = {o.order_id: customer.wallet.spent_for(o.order_id) for o in orders}
    shown_coins = [coin for o in orders for coin in sign_coins(paid[o.order_id], o)]
    assert len(shown_coins) == 7  # 20 + 10 + 2 + 0.50, then 20 + 20 + 5

    def read_store() -> dict[str, list[tuple[str, dict[str, bytes]]]]:
        tables: dict[str, list[tuple[str, dict[str, bytes]]]] = {}
        with read_snapshot(network.node("alfa").store_path) as conn:
            conn.row_factory = sqlite3.Row
            names = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            for name in names:
                rows = conn.execute(f'SELECT * FROM "{name}"').fetchall()  # noqa: S608
                tables[name] = [
                    (name, {key: _as_bytes(row[key]) for key in row.keys()}) for row in rows
                ]
        return tables

    tables = await asyncio.to_thread(read_store)
    withdrawals = [
        row for _, row in tables["withdrawals"] if row["customer_name"] == PRIVATE.encode()
    ]
    assert len(withdrawals) == 2
    # The bank did see every coin at deposit: its spent-coins record has each one, with
    # the very signature the coin made over its contract.
    spent = {row["coin_public_key"]: row["coin_signature"] for _, row in tables["spent_coins"]}
    assert all(spent.get(c.coin_public_key) == c.coin_signature for c in shown_coins)

    secrets = [
        form
        for coin in shown_coins
        for value in (
            coin.coin_public_key,
            coin.message_prefix,
            coin.denomination_signature,
            coin.coin_signature,
        )
        for form in _forms(value)
    ]
    links = [
        value for row in withdrawals for value in (row["request_id"], row["ledger_transfer_id"])
    ]
    kept_at_withdrawal = [
        (table, column, value)
        for rows in tables.values()
        for table, row in rows
        if table == "withdrawals" or any(link in v for link in links for v in row.values())
        for column, value in row.items()
    ]
    assert {t for t, _, _ in kept_at_withdrawal} >= {"withdrawals", "transfers"}
    leaks = [
        (table, column)
        for table, column, value in kept_at_withdrawal
        for secret in secrets
        if secret in value
    ]
    assert leaks == []
    # Across the whole store, a coin shows up only where the deposit recorded it spent.
    found = {
        table
        for rows in tables.values()
        for table, row in rows
        for value in row.values()
        if any(secret in value for secret in secrets)
    }
    assert found == {"spent_coins"}
    # The withdrawals' stored bytes (blinded digests, answers with the blind signatures)
    # hold none of them either, whatever part is looked at.
    stored = b"".join(row["blinded_digests"] + row["response"] for row in withdrawals)
    assert not any(secret in stored for secret in secrets)
    answers = [cash_pb2.WithdrawResponse.FromString(row["response"]) for row in withdrawals]
    signatures = [s for answer in answers for s in answer.blind_signatures]
    assert len(signatures) == 7
    assert not {c.denomination_signature for c in shown_coins} & set(signatures)
    # Nor does what alfa recorded at deposit hold anything of the withdrawals.
    digests = [
        row["blinded_digests"][i : i + 32]
        for row in withdrawals
        for i in range(0, len(row["blinded_digests"]), 32)
    ]
    assert len(digests) == 7
    deposit_side = [v for _, row in tables["spent_coins"] for v in row.values()]
    assert not any(kept in v for kept in digests + signatures for v in deposit_side)


def test_paynet_shop_pays_with_coins_and_paynet_wallet_shows_them_without_a_key(
    cash_net: RunningNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    network_file = str(cash_net.path)
    shop = ["shop", "--network", network_file, "--customer", ON_US, "--buy", "lamp-002"]
    assert paynet([*shop, "--instrument", "coins"]) == 0
    assert "DELIVERY_CONFIRMED" in capsys.readouterr().out
    path = default_wallet_path(cash_net.network, ON_US)

    async def withdraw() -> list[WalletCoin]:
        async with Customer(cash_net.network, ON_US, wallet=path) as customer:
            await customer.withdraw_coins(4020)
            return customer.wallet.coins

    coins = asyncio.run(withdraw())
    assert paynet(["wallet", "--network", network_file, "--customer", ON_US]) == 0
    out = capsys.readouterr().out
    assert f"wallet of {ON_US}: {path}" in out
    assert "BETAXX02  20.00 EUR     2        1" in out
    assert "BETAXX02  0.20 EUR      1        0" in out
    assert "unspent: 3 coins, 40.20 EUR; spent: 4 coins" in out
    assert not any(c.private_key.hex() in out for c in coins)
    with pytest.raises(SystemExit):
        paynet(["wallet", "--help"])
    assert "never shows a coin's key" in capsys.readouterr().out
