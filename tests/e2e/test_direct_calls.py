"""The merchant's certificate calling the gateway directly, past the merchant node's books.

The merchant node and its operator share one certificate, so the authorization
table cannot tell them apart: whatever the operator asks of the gateway
directly, every node's books must agree afterwards (``paynet reconcile``). The
merchant's node learns of money moved past it from its acquirer: the credit
notice of a capture, the RefundNotice of a refund.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing

import grpc
import pytest
from interbank.v1 import (
    authorization_pb2,
    authorization_pb2_grpc,
    common_pb2,
    order_pb2,
    order_pb2_grpc,
)

from customer.client import Customer
from customer.shop import all_balances, purchase
from ops.reconcile import reconcile, render_table
from payment import errors
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

from .conftest import RunningNetwork, start_network, stop

S = order_pb2.OrderStatus
BOOK = 4500
BIKE = 72000  # above the challenge threshold


def quiet(*_args: str) -> None:
    """A step printer that prints nothing."""


@pytest.fixture
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """A network of its own for each test: reconciliation reads the whole network."""
    running = start_network(tmp_path_factory.mktemp("direct"))
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


def transaction_of(net: RunningNetwork, order_id: str) -> str:
    """The gateway's transaction id of an order, as the merchant's store keeps it."""
    store = net.network.node("shop").store_path
    with closing(sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        (transaction_id,) = conn.execute(
            "SELECT transaction_id FROM orders WHERE order_id = ?", (order_id,)
        ).fetchone()
    return str(transaction_id)


@asynccontextmanager
async def gateway_as_the_merchant(
    net: RunningNetwork,
) -> AsyncIterator[authorization_pb2_grpc.GatewayServiceStub]:
    """The gateway, called with the merchant's own certificate but not by its node."""
    identity = TlsIdentity.load(Pki(net.network.pki_dir), "shop")
    async with secure_channel(net.network.node("gateway").address, identity) as channel:
        yield authorization_pb2_grpc.GatewayServiceStub(channel)


async def order_reaching(
    net: RunningNetwork, customer: Customer, order_id: str, status: order_pb2.OrderStatus.ValueType
) -> order_pb2.Order:
    """The order once the merchant's node moved it to status; else what reconcile finds."""
    try:
        return await customer.wait_for_order("shop", order_id, status, timeout=10)
    except TimeoutError:
        pytest.fail(
            f"the merchant's order never became {S.Name(status)}:\n"
            + render_table(reconcile(net.network))
        )


async def challenged_bike(bob: Customer) -> order_pb2.Order:
    """bob orders the bike, above the challenge threshold: the order awaits his answer."""
    placed = await bob.create_order("shop", [("bike-003", 1)])
    order = await bob.submit_payment(placed, bob.seal_payment(placed, bob.instrument("account")))
    assert order.status == S.ORDER_STATUS_CHALLENGE_REQUIRED
    return order


def assert_reconciled(net: RunningNetwork) -> None:
    report = reconcile(net.network)
    assert report.ok, render_table(report)


async def test_a_refund_asked_of_the_gateway_directly_is_recorded_on_the_merchants_order(
    net: RunningNetwork,
) -> None:
    async with Customer(net.network, "alice") as alice:
        bought = await purchase(alice, "shop", [("book-001", 2)], say=quiet)
        order_id = bought.order.order_id
        async with gateway_as_the_merchant(net) as gateway:
            refund = await gateway.RefundPayment(
                authorization_pb2.RefundPaymentRequest(
                    request_id=str(uuid.uuid4()),
                    transaction_id=transaction_of(net, order_id),
                    amount=common_pb2.Money(amount_minor=1500, currency_code="EUR"),
                ),
                timeout=15,
            )
            assert refund.refunded_total.amount_minor == 1500
            order = await order_reaching(net, alice, order_id, S.ORDER_STATUS_PARTIALLY_REFUNDED)
            assert order.refunded_total.amount_minor == 1500
            assert_reconciled(net)

            rest = await gateway.RefundPayment(
                authorization_pb2.RefundPaymentRequest(
                    request_id=str(uuid.uuid4()),
                    transaction_id=transaction_of(net, order_id),
                    amount=common_pb2.Money(amount_minor=2 * BOOK - 1500, currency_code="EUR"),
                ),
                timeout=15,
            )
        assert rest.refunded_total.amount_minor == 2 * BOOK
        order = await order_reaching(net, alice, order_id, S.ORDER_STATUS_REFUNDED)
    assert order.refunded_total.amount_minor == 2 * BOOK
    assert_reconciled(net)


async def test_a_refund_through_the_back_office_and_its_notice_count_once(
    net: RunningNetwork,
) -> None:
    """The node's own refund path and the acquirer's notice record the same refund once."""
    async with Customer(net.network, "alice") as alice:
        bought = await purchase(alice, "shop", [("book-001", 2)], say=quiet)
    identity = TlsIdentity.load(Pki(net.network.pki_dir), "shop")
    async with secure_channel(net.network.node("shop").address, identity) as channel:
        back_office = order_pb2_grpc.BackOfficeServiceStub(channel)
        reply = await back_office.RefundOrder(
            order_pb2.RefundOrderRequest(
                request_id=str(uuid.uuid4()),
                order_id=bought.order.order_id,
                amount=common_pb2.Money(amount_minor=1000, currency_code="EUR"),
            ),
            timeout=15,
        )
    assert reply.order.refunded_total.amount_minor == 1000
    assert_reconciled(net)


async def test_a_void_asked_of_the_gateway_directly_leaves_the_books_agreeing(
    net: RunningNetwork,
) -> None:
    """A void moves no money: the order, still awaiting its challenge, is simply unpaid.

    The merchant's node learns of the void at the next capture of the order,
    which fails it for good, as it would learn of a hold that expired.
    """
    async with Customer(net.network, "bob") as bob:
        before = await bob.balance()
        order = await challenged_bike(bob)
        async with gateway_as_the_merchant(net) as gateway:
            voided = await gateway.VoidPayment(
                authorization_pb2.VoidPaymentRequest(
                    request_id=str(uuid.uuid4()),
                    transaction_id=transaction_of(net, order.order_id),
                ),
                timeout=15,
            )
        assert voided.hold_status == authorization_pb2.HOLD_STATUS_VOIDED
        assert_reconciled(net)
        # The hold is gone: the customer's money is free again, nothing was posted.
        after = await bob.balance()
        assert after.available.amount_minor == before.available.amount_minor
        assert after.booked.amount_minor == before.booked.amount_minor
        # The order cannot be paid any more: its completion fails it for good.
        with pytest.raises(errors.FailedPrecondition) as refused:
            await bob.complete_payment("shop", order.order_id)
        assert refused.value.reason == "HOLD_NOT_CAPTURABLE"
        failed = await bob.get_order("shop", order.order_id)
    assert failed.status == S.ORDER_STATUS_FAILED
    assert_reconciled(net)


async def test_a_challenged_payment_captured_at_the_gateway_directly_settles_the_order(
    net: RunningNetwork,
) -> None:
    before = await all_balances(net.network)
    async with Customer(net.network, "bob") as bob:
        order = await challenged_bike(bob)
        code = await bob.read_one_time_code(order.challenge.challenge_id)
        await bob.answer_challenge(order.challenge.challenge_id, code)
        async with gateway_as_the_merchant(net) as gateway:
            captured = await gateway.CapturePayment(
                authorization_pb2.CapturePaymentRequest(
                    request_id=str(uuid.uuid4()),
                    transaction_id=transaction_of(net, order.order_id),
                ),
                timeout=15,
            )
            assert captured.hold_status == authorization_pb2.HOLD_STATUS_CAPTURED
            delivered = await order_reaching(
                net, bob, order.order_id, S.ORDER_STATUS_DELIVERY_CONFIRMED
            )
            # Money that moved is not voided: only a refund gives it back.
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await gateway.VoidPayment(
                    authorization_pb2.VoidPaymentRequest(
                        request_id=str(uuid.uuid4()),
                        transaction_id=transaction_of(net, order.order_id),
                    ),
                    timeout=15,
                )
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert errors.error_info(refused.value).reason == "HOLD_NOT_VOIDABLE"
        # The customer's completion, arriving after, finds the order paid.
        completed = await bob.complete_payment("shop", order.order_id)
    assert completed.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    assert delivered.delivery.tracking_reference.startswith("TRK-")
    after = await all_balances(net.network)
    assert after["bob-current"] == before["bob-current"] - BIKE
    assert after["shop-sales"] == before["shop-sales"] + BIKE
    assert_reconciled(net)
