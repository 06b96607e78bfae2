"""The acquirer's RefundNotice books a refund on the order, whoever asked for the refund.

The notice carries the payment's settled refunds so far, a running total: the
same refund seen twice (in the gateway's answer to the back office and in the
notice), or notices in any order, count once.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from interbank.v1 import authorization_pb2, common_pb2, notification_pb2, order_pb2

from merchant.settlement_listener import Outcome, load_cursor
from payment import errors
from tests.merchant.conftest import rpc_error

S = order_pb2.OrderStatus


def refund_notice(
    order: order_pb2.Order,
    refunded: int,
    *,
    amount: int | None = None,
    refund_id: str | None = None,
    sequence: int = 1,
    account_id: str = "shop-sales",
    currency: str = "EUR",
) -> notification_pb2.SubscribeResponse:
    """The acquirer's notice that a refund of the order's payment settled."""
    return notification_pb2.SubscribeResponse(
        sequence=sequence,
        event_id=str(uuid.uuid4()),
        refund=notification_pb2.RefundNotice(
            refund_id=refund_id or str(uuid.uuid4()),
            order_id=order.order_id,
            account=common_pb2.AccountRef(bank_code="BETAXX02", account_id=account_id),
            original_instruction_id="instr-1",
            amount=common_pb2.Money(
                amount_minor=refunded if amount is None else amount, currency_code=currency
            ),
            refunded_total=common_pb2.Money(amount_minor=refunded, currency_code=currency),
        ),
    )


async def delivered(shopper, storefront, listener, notice) -> order_pb2.Order:
    """An order paid, settled and delivered (2 x 45.00 EUR)."""
    order = await shopper.order()
    await storefront.submit_payment("alice", order.order_id, shopper.sealed())
    assert await listener.apply(notice(order, sequence=1)) is Outcome.SETTLED
    confirmed = await storefront.get_order("alice", order.order_id)
    assert confirmed.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    return confirmed


async def order_updates(store, order_id: str) -> list[order_pb2.Order]:
    rows = await store.read(
        lambda conn: conn.execute("SELECT event FROM outbox ORDER BY sequence").fetchall()
    )
    updates = [notification_pb2.SubscribeResponse.FromString(r[0]).order_update for r in rows]
    return [u.order for u in updates if u.order.order_id == order_id]


async def test_a_refund_the_node_did_not_ask_for_is_booked_on_the_order(
    shopper, storefront, store, listener, notice
) -> None:
    order = await delivered(shopper, storefront, listener, notice)

    assert await listener.apply(refund_notice(order, 1_500, sequence=2)) is Outcome.REFUNDED
    partly = await storefront.get_order("alice", order.order_id)
    assert partly.status == S.ORDER_STATUS_PARTIALLY_REFUNDED
    assert partly.refunded_total == common_pb2.Money(amount_minor=1_500, currency_code="EUR")

    rest = refund_notice(order, 9_000, amount=7_500, sequence=3)
    assert await listener.apply(rest) is Outcome.REFUNDED
    refunded = await storefront.get_order("alice", order.order_id)
    assert refunded.status == S.ORDER_STATUS_REFUNDED
    assert refunded.refunded_total.amount_minor == 9_000
    assert await store.read(load_cursor) == 3
    # The customer heard of each step.
    statuses = [o.status for o in await order_updates(store, order.order_id)]
    assert statuses[-2:] == [S.ORDER_STATUS_PARTIALLY_REFUNDED, S.ORDER_STATUS_REFUNDED]


async def test_the_same_notice_twice_and_an_older_total_late_change_nothing(
    shopper, storefront, store, listener, notice
) -> None:
    order = await delivered(shopper, storefront, listener, notice)
    first = refund_notice(order, 1_000, sequence=2)
    second = refund_notice(order, 3_000, amount=2_000, sequence=3)

    assert await listener.apply(second) is Outcome.REFUNDED
    assert await listener.apply(second) is Outcome.DUPLICATE
    assert await listener.apply(first) is Outcome.DUPLICATE  # its refund is in the total already

    after = await storefront.get_order("alice", order.order_id)
    assert (after.status, after.refunded_total.amount_minor) == (
        S.ORDER_STATUS_PARTIALLY_REFUNDED,
        3_000,
    )
    statuses = [o.status for o in await order_updates(store, order.order_id)]
    assert statuses.count(S.ORDER_STATUS_PARTIALLY_REFUNDED) == 1


async def test_the_back_office_refund_and_its_notice_count_once_in_either_order(
    shopper, storefront, listener, gateway, notice
) -> None:
    answers: list[int] = []

    async def refund_payment(request: Any, timeout: float) -> Any:
        answers.append(request.amount.amount_minor)
        return authorization_pb2.RefundPaymentResponse(
            refund_id=f"ret-{len(answers)}",
            refunded_total=common_pb2.Money(amount_minor=sum(answers), currency_code="EUR"),
        )

    gateway.RefundPayment = refund_payment
    order = await delivered(shopper, storefront, listener, notice)
    wanted = common_pb2.Money(amount_minor=2_000, currency_code="EUR")

    # The back office's answer first, then the acquirer's notice of the same refund.
    reply = await storefront.refund_order(order.order_id, wanted, "refund-1")
    assert reply.order.refunded_total.amount_minor == 2_000
    same = refund_notice(order, 2_000, refund_id=reply.refund_id, sequence=2)
    assert await listener.apply(same) is Outcome.DUPLICATE
    # The notice first (it is committed before the gateway answers), then the answer.
    assert await listener.apply(refund_notice(order, 4_000, amount=2_000, sequence=3)) is (
        Outcome.REFUNDED
    )
    reply = await storefront.refund_order(order.order_id, wanted, "refund-2")
    assert reply.order.refunded_total.amount_minor == 4_000
    assert reply.order.status == S.ORDER_STATUS_PARTIALLY_REFUNDED
    assert (await storefront.get_order("alice", order.order_id)).refunded_total.amount_minor == (
        4_000
    )


async def test_a_refund_notice_the_order_cannot_take_moves_nothing(
    shopper, storefront, store, listener, notice
) -> None:
    order = await delivered(shopper, storefront, listener, notice)
    unpaid = await shopper.order()
    strangers = order_pb2.Order(order_id="not-ours", total=order.total)

    assert await listener.apply(refund_notice(strangers, 100, sequence=2)) is Outcome.IGNORED
    other_account = refund_notice(order, 100, sequence=3, account_id="elsewhere")
    assert await listener.apply(other_account) is Outcome.IGNORED
    assert await listener.apply(refund_notice(order, 100, sequence=4, currency="USD")) is (
        Outcome.SKIPPED
    )
    assert await listener.apply(refund_notice(order, 9_001, sequence=5)) is Outcome.SKIPPED
    assert await listener.apply(refund_notice(unpaid, 100, sequence=6)) is Outcome.SKIPPED

    assert (await storefront.get_order("alice", order.order_id)).refunded_total.amount_minor == 0
    assert (await storefront.get_order("alice", unpaid.order_id)).status == S.ORDER_STATUS_CREATED
    assert await store.read(load_cursor) == 6


async def test_a_refund_retried_after_its_notice_refunded_the_order_reaches_the_gateway(
    shopper, storefront, listener, gateway, notice
) -> None:
    """The whole rest refunded, the answer lost on the way back, the acquirer's notice
    booking the refund meanwhile: the retry of the same request is still sent to the
    gateway (which replays it and records it too), not refused ORDER_NOT_REFUNDABLE."""
    sent: list[str] = []
    lost = True

    async def refund_payment(request: Any, timeout: float) -> Any:
        nonlocal lost
        sent.append(request.request_id)
        if lost:
            lost = False
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "PEER_UNAVAILABLE")
        return authorization_pb2.RefundPaymentResponse(
            refund_id="ret-1",
            refunded_total=common_pb2.Money(amount_minor=9_000, currency_code="EUR"),
        )

    gateway.RefundPayment = refund_payment
    order = await delivered(shopper, storefront, listener, notice)
    with pytest.raises(errors.Unavailable):
        await storefront.refund_order(order.order_id, None, "refund-all")
    assert await listener.apply(refund_notice(order, 9_000, sequence=2)) is Outcome.REFUNDED
    assert (await storefront.get_order("alice", order.order_id)).status == (S.ORDER_STATUS_REFUNDED)

    reply = await storefront.refund_order(order.order_id, None, "refund-all")
    assert reply.refund_id == "ret-1"
    assert reply.order.status == S.ORDER_STATUS_REFUNDED
    assert reply.order.refunded_total.amount_minor == 9_000
    assert len(sent) == 2 and sent[0] == sent[1]  # the same request, sent again
    # Answered from the record from now on, without asking the gateway again.
    again = await storefront.refund_order(order.order_id, None, "refund-all")
    assert again.refund_id == "ret-1" and len(sent) == 2
    # Another amount under the same id is another request.
    with pytest.raises(errors.AlreadyExists):
        other = common_pb2.Money(amount_minor=100, currency_code="EUR")
        await storefront.refund_order(order.order_id, other, "refund-all")
