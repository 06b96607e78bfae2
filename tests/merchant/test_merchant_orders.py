"""Orders are priced from the catalog, bound by their digest, and move only as the table allows."""

from __future__ import annotations

import itertools

import pytest
from interbank.v1 import notification_pb2, order_pb2

from merchant import orders
from payment import errors
from payment.envelope import OrderLineText, order_digest
from payment.pki import Pki


async def test_an_order_is_priced_from_the_catalog_and_bound_by_its_digest(shopper) -> None:
    order = await shopper.order(book_001=2, lamp_002=3)

    assert [(line.sku, line.quantity, line.line_total.amount_minor) for line in order.lines] == [
        ("book-001", 2, 9000),
        ("lamp-002", 3, 9750),
    ]
    assert order.total.amount_minor == 18750
    assert order.total.currency_code == "EUR"
    assert order.status == order_pb2.ORDER_STATUS_CREATED
    assert order.order_digest == order_digest(
        order.order_id,
        "shop",
        "alice",
        "EUR",
        18750,
        [OrderLineText("book-001", 2, 4500), OrderLineText("lamp-002", 3, 3250)],
    )


async def test_create_order_hands_out_the_gateway_key_and_announces_the_order(
    storefront, store, network
) -> None:
    lines = [order_pb2.CreateOrderLine(sku="book-001", quantity=1)]
    response = await store.transaction(lambda conn: storefront.create_order(conn, "alice", lines))

    assert response.gateway_public_key.hex() == (
        Pki(network.pki_dir).hpke_public_key("gateway").read_text().strip()
    )
    assert len(response.gateway_key_id) == 16
    rows = await store.read(
        lambda conn: conn.execute("SELECT recipient, event FROM outbox").fetchall()
    )
    assert [recipient for recipient, _ in rows] == ["spiffe://paynet.test/customer/alice"]
    update = notification_pb2.SubscribeResponse.FromString(rows[0][1]).order_update
    assert update.order.order_id == response.order.order_id


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ([], "EMPTY_ORDER"),
        ([("pen-999", 1)], "UNKNOWN_SKU"),
        ([("book-001", 0)], "QUANTITY_INVALID"),
        ([("book-001", 1001)], "QUANTITY_INVALID"),
        ([("book-001", -1)], "QUANTITY_INVALID"),
        ([("book-001", 1), ("book-001", 2)], "DUPLICATE_SKU"),
    ],
)
async def test_an_invalid_order_is_refused_with_its_reason_and_nothing_is_stored(
    storefront, store, lines, reason: str
) -> None:
    wanted = [order_pb2.CreateOrderLine(sku=sku, quantity=quantity) for sku, quantity in lines]
    with pytest.raises(errors.InvalidArgument) as raised:
        await store.transaction(lambda conn: storefront.create_order(conn, "alice", wanted))
    assert raised.value.reason == reason
    count = await store.read(lambda conn: conn.execute("SELECT count(*) FROM orders").fetchone())
    assert count == (0,)


async def test_a_customer_cannot_see_another_customers_order(shopper, storefront) -> None:
    order = await shopper.order("alice")
    assert (await storefront.get_order("alice", order.order_id)).order_id == order.order_id
    with pytest.raises(errors.NotFound) as raised:
        await storefront.get_order("bob", order.order_id)
    assert raised.value.reason == "ORDER_NOT_FOUND"


ALL_STATUSES = [
    s for s in order_pb2.OrderStatus.values() if s != order_pb2.ORDER_STATUS_UNSPECIFIED
]
ALLOWED = {(a, b) for a, targets in orders.TRANSITIONS.items() for b in targets}


@pytest.mark.parametrize(
    ("current", "target"),
    [pair for pair in itertools.product(ALL_STATUSES, ALL_STATUSES) if pair not in ALLOWED],
    ids=lambda s: order_pb2.OrderStatus.Name(s).removeprefix("ORDER_STATUS_"),
)
def test_the_state_machine_rejects_every_move_not_in_its_table(current, target) -> None:
    with pytest.raises(orders.IllegalTransition):
        orders.check_transition(current, target)


def test_the_state_machine_allows_the_payment_path_and_keeps_final_states_final() -> None:
    path = [
        orders.CREATED,
        orders.PAYMENT_PENDING,
        orders.CHALLENGE_REQUIRED,
        orders.AUTHORIZED,
        orders.CAPTURED,
        orders.SETTLED,
        orders.DELIVERY_CONFIRMED,
        orders.PARTIALLY_REFUNDED,
        orders.PARTIALLY_REFUNDED,
        orders.REFUNDED,
    ]
    for current, target in itertools.pairwise(path):
        orders.check_transition(current, target)
    orders.check_transition(orders.CAPTURED, orders.REVERSED)
    for final in (orders.FAILED, orders.CANCELED, orders.REFUNDED, orders.REVERSED):
        assert final not in orders.TRANSITIONS
