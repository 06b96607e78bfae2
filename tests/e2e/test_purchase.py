"""Both purchases of DESIGN section 1, end to end over real mTLS sockets."""

from __future__ import annotations

import grpc
import pytest
from interbank.v1 import (
    account_pb2,
    account_pb2_grpc,
    order_pb2,
)

from customer.client import Customer
from customer.shop import all_balances, purchase
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

S = order_pb2.OrderStatus


def quiet(*_args: str) -> None:
    """A step printer that prints nothing."""


async def test_a_frictionless_card_purchase_is_delivered_and_moves_money_exactly(net) -> None:
    network = net.network
    before = await all_balances(network)
    async with Customer(network, "alice") as alice:
        result = await purchase(alice, "shop", [("book-001", 2), ("lamp-002", 1)], say=quiet)
        statement = await alice.statement()
    total = 2 * 4500 + 3250
    assert result.challenged is False
    assert result.order.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    assert result.order.total.amount_minor == total
    assert result.order.delivery.tracking_reference.startswith("TRK-")
    after = await all_balances(network)
    assert after["alice-current"] == before["alice-current"] - total
    assert after["shop-sales"] == before["shop-sales"] + total
    assert after["bob-current"] == before["bob-current"]
    assert sum(after.values()) == sum(before.values())
    debits = [e for e in statement.entries if e.order_id == result.order.order_id]
    assert [e.amount.amount_minor for e in debits] == [total]
    assert statement.closing_balance.amount_minor == after["alice-current"]


async def test_a_challenged_purchase_is_answered_from_the_device_inbox_and_delivered(net) -> None:
    network = net.network
    before = await all_balances(network)
    async with Customer(network, "bob") as bob:
        result = await purchase(bob, "shop", [("bike-003", 1)], instrument="account", say=quiet)
    assert result.challenged is True
    assert result.order.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    after = await all_balances(network)
    assert after["bob-current"] == before["bob-current"] - 72000
    assert after["shop-sales"] == before["shop-sales"] + 72000
    assert sum(after.values()) == sum(before.values()) == network.total_opening_money()


async def test_the_merchant_sees_its_own_balance_and_statement_only(net) -> None:
    pki = Pki(net.network.pki_dir)
    beta = net.network.node("beta")
    async with secure_channel(beta.address, TlsIdentity.load(pki, "shop")) as channel:
        stub = account_pb2_grpc.AccountServiceStub(channel)
        own = await stub.GetBalance(account_pb2.GetBalanceRequest(account_id="shop-sales"))
        assert own.account.account_id == "shop-sales"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetBalance(account_pb2.GetBalanceRequest(account_id="bob-current"))
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_no_instrument_number_reaches_the_merchant_store_or_any_log(net) -> None:
    network = net.network
    async with Customer(network, "alice") as alice:
        await purchase(alice, "shop", [("lamp-002", 1)], instrument="account", say=quiet)
    secrets = [c.card_number for c in network.customers] + [
        c.account_number for c in network.customers
    ]
    merchant = network.node("shop")
    stored = b"".join(p.read_bytes() for p in merchant.data_dir.rglob("*") if p.is_file())
    assert stored, "the merchant store should exist"
    for secret in secrets:
        assert secret.encode() not in stored
        for node in network.nodes:
            assert secret.encode() not in net.log(node.name), node.name
    gateway_store = b"".join(
        p.read_bytes() for p in network.node("gateway").data_dir.rglob("*") if p.is_file()
    )
    for secret in secrets:
        assert secret.encode() not in gateway_store
