"""A payment whose answer was lost is resolved by asking the gateway, not left pending."""

from __future__ import annotations

import grpc
import pytest
from interbank.v1 import authorization_pb2, order_pb2

from merchant import orders
from merchant.settlement_listener import Outcome
from payment import errors, ids

NEVER = 10_000.0  # not_received_after_s: a missing transaction may still arrive


async def lost_sale(shopper, storefront, gateway) -> tuple[order_pb2.Order, str, object]:
    """An order whose AuthorizePayment answer never came back; its transaction id."""
    order = await shopper.order()
    payment = shopper.sealed()
    gateway.fail("AuthorizePayment", grpc.StatusCode.UNAVAILABLE, "CONNECTION_RESET")
    with pytest.raises(errors.Unavailable) as raised:
        await storefront.submit_payment("alice", order.order_id, payment)
    assert raised.value.reason == "PAYMENT_OUTCOME_UNKNOWN"
    gateway.failures.clear()
    request = gateway.calls[-1][1]
    return order, ids.transaction_id("shop", request.request_id), payment


def transaction(
    tx_id: str, order: order_pb2.Order, **fields
) -> authorization_pb2.PaymentTransaction:
    return authorization_pb2.PaymentTransaction(
        transaction_id=tx_id, order_id=order.order_id, merchant_name="shop", **fields
    )


async def status(storefront, order) -> order_pb2.Order:
    return await storefront.get_order("alice", order.order_id)


async def test_a_sale_the_gateway_captured_is_recorded_and_its_early_credit_settles_it(
    shopper, storefront, store, gateway, listener, notice
) -> None:
    order, tx_id, _ = await lost_sale(shopper, storefront, gateway)
    # The money reached the merchant before the merchant knew the sale went through.
    assert await listener.apply(notice(order)) is Outcome.DEFERRED
    gateway.transactions[tx_id] = transaction(
        tx_id, order, hold_status=authorization_pb2.HOLD_STATUS_CAPTURED, hold_id="h-1"
    )

    assert await storefront.resolve_pending(older_than_s=0, not_received_after_s=NEVER) == 1

    resolved = await status(storefront, order)
    assert resolved.status == orders.DELIVERY_CONFIRMED
    record = await store.read(lambda conn: orders.load_order(conn, order.order_id))
    assert record.transaction_id == tx_id
    captures = [r for name, r in gateway.calls if name == "CapturePayment"]
    assert [c.transaction_id for c in captures] == [tx_id]
    # Nothing is left to resolve: a second round asks nothing more.
    asked = gateway.methods().count("GetPaymentTransaction")
    assert await storefront.resolve_pending(older_than_s=0, not_received_after_s=NEVER) == 0
    assert gateway.methods().count("GetPaymentTransaction") == asked


async def test_an_authorized_hold_is_captured(shopper, storefront, gateway) -> None:
    order, tx_id, _ = await lost_sale(shopper, storefront, gateway)
    gateway.transactions[tx_id] = transaction(
        tx_id, order, hold_status=authorization_pb2.HOLD_STATUS_AUTHORIZED, hold_id="h-1"
    )
    assert await storefront.resolve_pending(older_than_s=0, not_received_after_s=NEVER) == 1
    assert (await status(storefront, order)).status == orders.CAPTURED


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"failure_reason": "INSUFFICIENT_FUNDS"}, "INSUFFICIENT_FUNDS"),
        ({"hold_status": authorization_pb2.HOLD_STATUS_VOIDED}, "HOLD_VOIDED"),
        ({"hold_status": authorization_pb2.HOLD_STATUS_EXPIRED}, "HOLD_EXPIRED"),
    ],
)
async def test_a_refused_payment_or_released_hold_reopens_the_order_for_another_payment(
    shopper, storefront, gateway, fields, reason
) -> None:
    order, tx_id, _ = await lost_sale(shopper, storefront, gateway)
    gateway.transactions[tx_id] = transaction(tx_id, order, **fields)

    assert await storefront.resolve_pending(older_than_s=0, not_received_after_s=NEVER) == 1

    reopened = await status(storefront, order)
    assert reopened.status == orders.CREATED
    assert reopened.failure_reason == reason
    assert "CapturePayment" not in gateway.methods()
    # The customer pays again, with a new sealed payment.
    paid = await storefront.submit_payment("alice", order.order_id, shopper.sealed())
    assert paid.status == orders.CAPTURED


async def test_a_transaction_the_gateway_never_saw_reopens_only_once_it_can_no_longer_arrive(
    shopper, storefront, gateway
) -> None:
    order, _, _ = await lost_sale(shopper, storefront, gateway)
    assert await storefront.resolve_pending(older_than_s=0, not_received_after_s=NEVER) == 0
    assert (await status(storefront, order)).status == orders.PAYMENT_PENDING

    assert await storefront.resolve_pending(older_than_s=0, not_received_after_s=0) == 1
    reopened = await status(storefront, order)
    assert reopened.status == orders.CREATED
    assert reopened.failure_reason == "PAYMENT_NOT_RECEIVED"


async def test_an_authorization_in_progress_is_left(shopper, storefront, gateway) -> None:
    order, tx_id, _ = await lost_sale(shopper, storefront, gateway)
    gateway.transactions[tx_id] = transaction(tx_id, order)  # recorded, the issuer still asked
    assert await storefront.resolve_pending(older_than_s=0, not_received_after_s=0) == 0
    assert (await status(storefront, order)).status == orders.PAYMENT_PENDING


async def test_a_recent_payment_is_not_asked_about_and_an_unreachable_gateway_moves_nothing(
    shopper, storefront, gateway
) -> None:
    order, tx_id, _ = await lost_sale(shopper, storefront, gateway)
    gateway.transactions[tx_id] = transaction(tx_id, order, failure_reason="INSUFFICIENT_FUNDS")
    assert await storefront.resolve_pending(not_received_after_s=0) == 0  # not 60 s old yet
    assert "GetPaymentTransaction" not in gateway.methods()

    gateway.fail("GetPaymentTransaction", grpc.StatusCode.UNAVAILABLE, "CONNECTION_RESET")
    assert await storefront.resolve_pending(older_than_s=0, not_received_after_s=0) == 0
    assert (await status(storefront, order)).status == orders.PAYMENT_PENDING


async def test_the_customers_own_retry_wins_over_the_resolver(shopper, storefront, gateway) -> None:
    gateway.sale_settlement = authorization_pb2.SETTLEMENT_STATE_SETTLED
    order, tx_id, payment = await lost_sale(shopper, storefront, gateway)
    gateway.transactions[tx_id] = transaction(tx_id, order, failure_reason="INSUFFICIENT_FUNDS")

    async def customer_resubmits() -> None:
        gateway.on_lookup = None
        paid = await storefront.submit_payment("alice", order.order_id, payment)
        assert paid.status == orders.CAPTURED

    gateway.on_lookup = customer_resubmits
    # The (stale) refusal the resolver read does not undo the sale the retry recorded.
    assert await storefront.resolve_pending(older_than_s=0, not_received_after_s=0) == 0
    assert (await status(storefront, order)).status == orders.CAPTURED
