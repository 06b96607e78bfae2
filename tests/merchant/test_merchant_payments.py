"""SubmitPayment, CompletePayment and CancelOrder: the order follows the gateway's answers."""

from __future__ import annotations

import hashlib

import grpc
import pytest
from interbank.v1 import authorization_pb2, order_pb2

from payment import errors
from tests.merchant.test_merchant_settlement import order_updates

CHALLENGE = authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED


async def test_a_frictionless_payment_is_forwarded_unopened_then_captured(
    shopper, storefront, gateway
) -> None:
    order = await shopper.order()
    payment = shopper.sealed()

    paid = await storefront.submit_payment("alice", order.order_id, payment)

    assert paid.status == order_pb2.ORDER_STATUS_CAPTURED
    assert gateway.methods() == ["AuthorizePayment", "CapturePayment"]
    authorize = gateway.calls[0][1]
    ref = hashlib.sha256(payment.sealed_instruction).hexdigest()
    assert authorize.request_id == f"authorize:{order.order_id}:{ref[:16]}"
    assert authorize.payment == payment
    assert authorize.amount == order.total
    assert authorize.order_digest == order.order_digest
    capture = gateway.calls[1][1]
    assert capture.request_id == f"capture:{order.order_id}"
    assert capture.transaction_id == f"tx-{order.order_id}"


async def test_a_sale_is_authorized_and_captured_in_one_gateway_call(
    shopper, storefront, gateway, store
) -> None:
    gateway.sale_settlement = authorization_pb2.SETTLEMENT_STATE_PENDING
    order = await shopper.order()

    paid = await storefront.submit_payment("alice", order.order_id, shopper.sealed())

    assert paid.status == order_pb2.ORDER_STATUS_CAPTURED
    assert gateway.methods() == ["AuthorizePayment"]
    assert gateway.calls[0][1].capture is True
    statuses = [o.status for o in await order_updates(store, order.order_id)]
    assert statuses == [
        order_pb2.ORDER_STATUS_CREATED,
        order_pb2.ORDER_STATUS_PAYMENT_PENDING,
        order_pb2.ORDER_STATUS_AUTHORIZED,
        order_pb2.ORDER_STATUS_CAPTURED,
    ]
    # Completing it again is a no-op: it is captured.
    again = await storefront.complete_payment("alice", order.order_id)
    assert again.status == order_pb2.ORDER_STATUS_CAPTURED
    assert gateway.methods() == ["AuthorizePayment"]


async def test_a_sale_whose_settlement_was_rejected_is_reversed(
    shopper, storefront, gateway
) -> None:
    gateway.sale_settlement = authorization_pb2.SETTLEMENT_STATE_REJECTED
    order = await shopper.order()

    paid = await storefront.submit_payment("alice", order.order_id, shopper.sealed())

    assert paid.status == order_pb2.ORDER_STATUS_REVERSED
    assert paid.failure_reason == "NET_DEBIT_CAP_EXCEEDED"
    assert gateway.methods() == ["AuthorizePayment"]


async def test_a_challenged_payment_waits_for_completion_and_then_captures(
    shopper, storefront, gateway
) -> None:
    gateway.decision = CHALLENGE
    order = await shopper.order()

    challenged = await storefront.submit_payment("alice", order.order_id, shopper.sealed())
    assert challenged.status == order_pb2.ORDER_STATUS_CHALLENGE_REQUIRED
    assert challenged.challenge.challenge_id == "challenge-1"

    completed = await storefront.complete_payment("alice", order.order_id)
    assert completed.status == order_pb2.ORDER_STATUS_CAPTURED
    assert not completed.HasField("challenge")
    again = await storefront.complete_payment("alice", order.order_id)
    assert again.status == order_pb2.ORDER_STATUS_CAPTURED
    assert gateway.methods() == ["AuthorizePayment", "CapturePayment"]


async def test_a_refused_authorization_is_relayed_and_the_order_can_be_paid_again(
    shopper, storefront, gateway
) -> None:
    order = await shopper.order()
    gateway.fail("AuthorizePayment", grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_FUNDS")

    with pytest.raises(errors.FailedPrecondition) as raised:
        await storefront.submit_payment("alice", order.order_id, shopper.sealed())
    assert raised.value.reason == "INSUFFICIENT_FUNDS"
    reset = await storefront.get_order("alice", order.order_id)
    assert reset.status == order_pb2.ORDER_STATUS_CREATED
    assert reset.failure_reason == "INSUFFICIENT_FUNDS"

    gateway.failures.clear()
    paid = await storefront.submit_payment("alice", order.order_id, shopper.sealed())
    assert paid.status == order_pb2.ORDER_STATUS_CAPTURED
    assert paid.failure_reason == ""


async def test_a_failed_capture_leaves_the_order_authorized_for_completion(
    shopper, storefront, gateway
) -> None:
    order = await shopper.order()
    gateway.fail("CapturePayment", grpc.StatusCode.UNAVAILABLE, "PEER_UNAVAILABLE")

    with pytest.raises(errors.Unavailable):
        await storefront.submit_payment("alice", order.order_id, shopper.sealed())
    assert (await storefront.get_order("alice", order.order_id)).status == (
        order_pb2.ORDER_STATUS_AUTHORIZED
    )

    gateway.failures.clear()
    completed = await storefront.complete_payment("alice", order.order_id)
    assert completed.status == order_pb2.ORDER_STATUS_CAPTURED


async def test_an_order_with_a_payment_cannot_be_paid_twice(shopper, storefront) -> None:
    order = await shopper.order()
    await storefront.submit_payment("alice", order.order_id, shopper.sealed())

    with pytest.raises(errors.FailedPrecondition) as raised:
        await storefront.submit_payment("alice", order.order_id, shopper.sealed())
    assert raised.value.reason == "ORDER_ALREADY_PAID"


async def test_a_canceled_order_is_not_payable(shopper, storefront, gateway) -> None:
    order = await shopper.order()
    canceled = await storefront.cancel_order("alice", order.order_id)
    assert canceled.status == order_pb2.ORDER_STATUS_CANCELED

    with pytest.raises(errors.FailedPrecondition) as raised:
        await storefront.submit_payment("alice", order.order_id, shopper.sealed())
    assert raised.value.reason == "ORDER_NOT_PAYABLE"
    assert gateway.calls == []


async def test_another_customer_cannot_pay_for_an_order(shopper, storefront, gateway) -> None:
    order = await shopper.order("alice")
    with pytest.raises(errors.NotFound) as raised:
        await storefront.submit_payment("bob", order.order_id, shopper.sealed())
    assert raised.value.reason == "ORDER_NOT_FOUND"
    assert gateway.calls == []


@pytest.mark.parametrize(
    "reason", ["CHALLENGE_LOCKED", "CHALLENGE_EXPIRED", "HOLD_EXPIRED", "HOLD_NOT_CAPTURABLE"]
)
async def test_a_capture_that_can_never_succeed_fails_the_order(
    shopper, storefront, gateway, reason: str
) -> None:
    gateway.decision = CHALLENGE
    order = await shopper.order()
    await storefront.submit_payment("alice", order.order_id, shopper.sealed())
    gateway.fail("CapturePayment", grpc.StatusCode.FAILED_PRECONDITION, reason)

    with pytest.raises(errors.FailedPrecondition) as raised:
        await storefront.complete_payment("alice", order.order_id)
    assert raised.value.reason == reason
    failed = await storefront.get_order("alice", order.order_id)
    assert failed.status == order_pb2.ORDER_STATUS_FAILED
    assert failed.failure_reason == reason


async def test_completing_before_the_challenge_is_answered_leaves_the_order_waiting(
    shopper, storefront, gateway
) -> None:
    gateway.decision = CHALLENGE
    order = await shopper.order()
    await storefront.submit_payment("alice", order.order_id, shopper.sealed())
    gateway.fail("CapturePayment", grpc.StatusCode.FAILED_PRECONDITION, "CHALLENGE_NOT_ANSWERED")

    with pytest.raises(errors.FailedPrecondition) as raised:
        await storefront.complete_payment("alice", order.order_id)
    assert raised.value.reason == "CHALLENGE_NOT_ANSWERED"
    waiting = await storefront.get_order("alice", order.order_id)
    assert waiting.status == order_pb2.ORDER_STATUS_CHALLENGE_REQUIRED


async def test_canceling_a_challenged_order_voids_its_hold(shopper, storefront, gateway) -> None:
    gateway.decision = CHALLENGE
    order = await shopper.order()
    await storefront.submit_payment("alice", order.order_id, shopper.sealed())

    canceled = await storefront.cancel_order("alice", order.order_id)

    assert canceled.status == order_pb2.ORDER_STATUS_CANCELED
    assert gateway.methods() == ["AuthorizePayment", "VoidPayment"]
    assert gateway.calls[1][1].request_id == f"void:{order.order_id}"


async def test_a_captured_order_cannot_be_canceled(shopper, storefront, gateway) -> None:
    order = await shopper.order()
    await storefront.submit_payment("alice", order.order_id, shopper.sealed())

    with pytest.raises(errors.FailedPrecondition) as raised:
        await storefront.cancel_order("alice", order.order_id)
    assert raised.value.reason == "ORDER_NOT_CANCELABLE"
    assert "VoidPayment" not in gateway.methods()


async def test_the_store_never_contains_the_sealed_bytes(
    shopper, storefront, store, store_dir
) -> None:
    order = await shopper.order()
    payment = shopper.sealed()
    await storefront.submit_payment("alice", order.order_id, payment)
    await store.close()

    stored = b"".join(p.read_bytes() for p in store_dir.iterdir() if p.is_file())
    assert payment.sealed_instruction not in stored
    assert payment.dual_signature not in stored
    assert hashlib.sha256(payment.sealed_instruction).hexdigest().encode() in stored
