"""The acquirer's credit notice settles an order exactly once and confirms delivery."""

from __future__ import annotations

import re

from interbank.v1 import authorization_pb2, notification_pb2, order_pb2

from merchant.settlement_listener import Outcome, load_cursor


async def order_updates(store, order_id: str) -> list[order_pb2.Order]:
    rows = await store.read(
        lambda conn: conn.execute("SELECT event FROM outbox ORDER BY sequence").fetchall()
    )
    updates = [
        notification_pb2.SubscribeResponse.FromString(row[0]).order_update.order for row in rows
    ]
    return [order for order in updates if order.order_id == order_id]


async def test_the_same_credit_twice_settles_once_and_confirms_delivery_once(
    shopper, storefront, store, listener, notice
) -> None:
    order = await shopper.order()
    await storefront.submit_payment("alice", order.order_id, shopper.sealed())
    event = notice(order, sequence=7)

    assert await listener.apply(event) is Outcome.SETTLED
    assert await listener.apply(event) is Outcome.DUPLICATE

    confirmed = await storefront.get_order("alice", order.order_id)
    assert confirmed.status == order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED
    assert re.fullmatch(r"TRK-[A-Z0-9]{10}", confirmed.delivery.tracking_reference)
    statuses = [o.status for o in await order_updates(store, order.order_id)]
    assert statuses.count(order_pb2.ORDER_STATUS_SETTLED) == 1
    assert statuses.count(order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED) == 1
    assert await store.read(load_cursor) == 7


async def test_a_credit_for_a_challenged_order_settles_it_and_its_completion_finds_it_paid(
    shopper, storefront, listener, gateway, notice
) -> None:
    # The money arrived: the hold was captured, whoever asked the gateway to capture it.
    gateway.decision = authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
    order = await shopper.order()
    await storefront.submit_payment("alice", order.order_id, shopper.sealed())

    assert await listener.apply(notice(order)) is Outcome.SETTLED
    completed = await storefront.complete_payment("alice", order.order_id)
    assert completed.status == order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED


async def test_a_credit_for_an_unpaid_or_unknown_order_moves_nothing_but_advances_the_cursor(
    shopper, storefront, store, listener, notice
) -> None:
    order = await shopper.order()
    assert await listener.apply(notice(order, sequence=3)) is Outcome.SKIPPED
    unknown = order_pb2.Order(order_id="not-ours", total=order.total)
    assert await listener.apply(notice(unknown, sequence=4)) is Outcome.IGNORED

    assert (await storefront.get_order("alice", order.order_id)).status == (
        order_pb2.ORDER_STATUS_CREATED
    )
    assert await store.read(load_cursor) == 4


async def test_debits_and_other_events_are_ignored(shopper, storefront, listener, notice) -> None:
    order = await shopper.order()
    await storefront.submit_payment("alice", order.order_id, shopper.sealed())
    debit = notice(order, sequence=1)
    debit.account_entry.direction = notification_pb2.ACCOUNT_ENTRY_DIRECTION_DEBIT
    hold = notification_pb2.SubscribeResponse(
        sequence=2, event_id="e-2", hold=notification_pb2.HoldNotice(order_id="x")
    )

    assert await listener.apply(debit) is Outcome.IGNORED
    assert await listener.apply(hold) is Outcome.IGNORED
    assert (await storefront.get_order("alice", order.order_id)).status == (
        order_pb2.ORDER_STATUS_CAPTURED
    )
