"""A refusal that speaks of the instruction's time or of its reuse is not final for a
payment the gateway may already have: the merchant looks the payment up first."""

from __future__ import annotations

import grpc
import pytest
from interbank.v1 import authorization_pb2, order_pb2

from merchant import orders
from payment import errors, ids

NEVER = 10_000.0  # not_received_after_s: a missing transaction may still arrive


async def lost_sale(shopper, storefront, gateway) -> tuple[order_pb2.Order, str, object]:
    """An order whose AuthorizePayment answer never came back; its transaction id."""
    order = await shopper.order()
    payment = shopper.sealed()
    gateway.fail("AuthorizePayment", grpc.StatusCode.UNAVAILABLE, "CONNECTION_RESET")
    with pytest.raises(errors.Unavailable):
        await storefront.submit_payment("alice", order.order_id, payment)
    gateway.failures.clear()
    return order, ids.transaction_id("shop", gateway.calls[-1][1].request_id), payment


def transaction(tx_id: str, order: order_pb2.Order, **fields) -> object:
    return authorization_pb2.PaymentTransaction(
        transaction_id=tx_id, order_id=order.order_id, merchant_name="shop", **fields
    )


async def status(storefront, order) -> order_pb2.Order:
    return await storefront.get_order("alice", order.order_id)


LATE_REFUSALS = [
    (grpc.StatusCode.INVALID_ARGUMENT, "INSTRUCTION_EXPIRED"),
    (grpc.StatusCode.INVALID_ARGUMENT, "INSTRUCTION_FROM_FUTURE"),
    (grpc.StatusCode.ALREADY_EXISTS, "INSTRUCTION_REPLAYED"),
    (grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED"),
]


@pytest.mark.parametrize(("code", "reason"), LATE_REFUSALS)
async def test_a_late_retry_refused_for_a_sale_that_went_through_ends_captured_not_reopened(
    shopper, storefront, gateway, code, reason
) -> None:
    order, tx_id, payment = await lost_sale(shopper, storefront, gateway)
    # The issuer captured the sale; the gateway refuses the retry for its instruction's time.
    gateway.transactions[tx_id] = transaction(
        tx_id, order, hold_status=authorization_pb2.HOLD_STATUS_CAPTURED, hold_id="h-1"
    )
    gateway.fail("AuthorizePayment", code, reason)

    paid = await storefront.submit_payment("alice", order.order_id, payment)

    assert paid.status == orders.CAPTURED
    assert (await status(storefront, order)).status == orders.CAPTURED
    captures = [r for name, r in gateway.calls if name == "CapturePayment"]
    assert [c.transaction_id for c in captures] == [tx_id]


@pytest.mark.parametrize(("code", "reason"), LATE_REFUSALS)
async def test_a_late_refusal_of_a_payment_the_gateway_never_recorded_reopens_the_order(
    shopper, storefront, gateway, code, reason
) -> None:
    order = await shopper.order()
    gateway.fail("AuthorizePayment", code, reason)
    with pytest.raises(errors.PaynetError) as raised:
        await storefront.submit_payment("alice", order.order_id, shopper.sealed())
    assert (raised.value.code, raised.value.reason) == (code, reason)
    reopened = await status(storefront, order)
    assert (reopened.status, reopened.failure_reason) == (orders.CREATED, reason)
    assert "GetPaymentTransaction" in gateway.methods()


async def test_a_late_refusal_while_the_gateway_is_still_authorizing_leaves_the_payment_pending(
    shopper, storefront, gateway
) -> None:
    order, tx_id, payment = await lost_sale(shopper, storefront, gateway)
    gateway.transactions[tx_id] = transaction(tx_id, order)  # recorded, no answer yet
    gateway.fail("AuthorizePayment", grpc.StatusCode.INVALID_ARGUMENT, "INSTRUCTION_EXPIRED")

    with pytest.raises(errors.Unavailable) as raised:
        await storefront.submit_payment("alice", order.order_id, payment)

    assert raised.value.reason == "PAYMENT_OUTCOME_UNKNOWN"
    assert (await status(storefront, order)).status == orders.PAYMENT_PENDING


async def test_a_late_refusal_of_a_payment_the_gateway_recorded_as_refused_reopens_with_that_reason(
    shopper, storefront, gateway
) -> None:
    order, tx_id, payment = await lost_sale(shopper, storefront, gateway)
    gateway.transactions[tx_id] = transaction(tx_id, order, failure_reason="INSUFFICIENT_FUNDS")
    gateway.fail("AuthorizePayment", grpc.StatusCode.INVALID_ARGUMENT, "INSTRUCTION_EXPIRED")

    with pytest.raises(errors.PaynetError):
        await storefront.submit_payment("alice", order.order_id, payment)

    reopened = await status(storefront, order)
    assert (reopened.status, reopened.failure_reason) == (orders.CREATED, "INSUFFICIENT_FUNDS")


async def test_a_pending_payment_whose_hold_awaits_a_challenge_becomes_challenged_and_cancelable(
    shopper, storefront, gateway
) -> None:
    order, tx_id, _ = await lost_sale(shopper, storefront, gateway)
    gateway.transactions[tx_id] = transaction(
        tx_id, order, hold_status=authorization_pb2.HOLD_STATUS_CHALLENGE_PENDING, hold_id="h-1"
    )
    assert await storefront.resolve_pending(older_than_s=0, not_received_after_s=NEVER) == 1
    challenged = await status(storefront, order)
    assert challenged.status == orders.CHALLENGE_REQUIRED

    # The hold is not left in limbo: the customer can still give up, and it is released.
    canceled = await storefront.cancel_order("alice", order.order_id)
    assert canceled.status == order_pb2.ORDER_STATUS_CANCELED
    voids = [r for name, r in gateway.calls if name == "VoidPayment"]
    assert [v.transaction_id for v in voids] == [tx_id]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_CONCURRENT_CALLS"),
        (grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_REVOKED"),
        (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_FUNDS"),
    ],
)
async def test_any_refusal_of_a_resubmitted_payment_is_looked_up_before_the_order_is_reopened(
    shopper, storefront, gateway, code, reason
) -> None:
    # The first attempt's answer was lost, and the sale went through meanwhile.
    order, tx_id, payment = await lost_sale(shopper, storefront, gateway)
    gateway.transactions[tx_id] = transaction(
        tx_id, order, hold_status=authorization_pb2.HOLD_STATUS_CAPTURED, hold_id="h-1"
    )
    gateway.fail("AuthorizePayment", code, reason)

    paid = await storefront.submit_payment("alice", order.order_id, payment)

    assert paid.status == orders.CAPTURED
