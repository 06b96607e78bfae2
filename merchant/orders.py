"""Orders: their state machine and their rows in the merchant's store.

Every change of an order goes through :func:`transition`, which checks the
move against :data:`TRANSITIONS`, saves the order and queues an OrderUpdate for
the customer in the same transaction. A move the table does not allow is a
programming error (:class:`IllegalTransition`), never a caller's mistake.

The store keeps the order and, for its payment, only the gateway's transaction
id and an opaque reference to the sealed instruction (its SHA-256): never the
sealed bytes, never instrument data. A cheque taken for an order is kept beside
it by :mod:`merchant.cheque_deposits`, coins by :mod:`merchant.coin_deposits`.
"""

from __future__ import annotations

import secrets
import sqlite3
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

from interbank.v1 import common_pb2, notification_pb2, order_pb2

from payment import errors
from payment.clock import now, timestamp
from payment.config import Role
from payment.identity import spiffe_id
from payment.notifications import emit

__all__ = [
    "PAID",
    "REFUNDABLE",
    "SCHEMA",
    "TRANSITIONS",
    "IllegalTransition",
    "OrderRecord",
    "OrderStatus",
    "all_orders",
    "check_transition",
    "customer_order",
    "insert_order",
    "load_order",
    "mark_credit_pending",
    "raise_refunded_total",
    "settle",
    "status_name",
    "transition",
]

OrderStatus: TypeAlias = order_pb2.OrderStatus.ValueType

CREATED: Final = order_pb2.ORDER_STATUS_CREATED
PAYMENT_PENDING: Final = order_pb2.ORDER_STATUS_PAYMENT_PENDING
CHALLENGE_REQUIRED: Final = order_pb2.ORDER_STATUS_CHALLENGE_REQUIRED
AUTHORIZED: Final = order_pb2.ORDER_STATUS_AUTHORIZED
CAPTURED: Final = order_pb2.ORDER_STATUS_CAPTURED
SETTLED: Final = order_pb2.ORDER_STATUS_SETTLED
DELIVERY_CONFIRMED: Final = order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED
FAILED: Final = order_pb2.ORDER_STATUS_FAILED
CANCELED: Final = order_pb2.ORDER_STATUS_CANCELED
PARTIALLY_REFUNDED: Final = order_pb2.ORDER_STATUS_PARTIALLY_REFUNDED
REFUNDED: Final = order_pb2.ORDER_STATUS_REFUNDED
REVERSED: Final = order_pb2.ORDER_STATUS_REVERSED

TRANSITIONS: Final[Mapping[OrderStatus, frozenset[OrderStatus]]] = {
    CREATED: frozenset({PAYMENT_PENDING, CANCELED}),
    # Back to CREATED when the authorization (or a cheque's or coins' deposit) is refused, so
    # the customer may pay again. Straight to SETTLED, or FAILED, when the drawee bank pays or
    # returns a deposited cheque (merchant.cheques), or the issuer takes the coins
    # (merchant.coins): a cheque or a coin has no hold and no capture.
    PAYMENT_PENDING: frozenset({CREATED, CHALLENGE_REQUIRED, AUTHORIZED, FAILED, SETTLED}),
    # Straight to CAPTURED: after a challenge the merchant captures the authorized hold.
    CHALLENGE_REQUIRED: frozenset({AUTHORIZED, CAPTURED, FAILED, CANCELED}),
    # Straight to SETTLED when the acquirer's credit overtakes the capture response.
    AUTHORIZED: frozenset({CAPTURED, CANCELED, FAILED, SETTLED}),
    # REVERSED: the interbank settlement was rejected and the customer's debit reversed.
    CAPTURED: frozenset({SETTLED, FAILED, REVERSED}),
    SETTLED: frozenset({DELIVERY_CONFIRMED, PARTIALLY_REFUNDED, REFUNDED}),
    DELIVERY_CONFIRMED: frozenset({PARTIALLY_REFUNDED, REFUNDED}),
    PARTIALLY_REFUNDED: frozenset({PARTIALLY_REFUNDED, REFUNDED}),
}
"""Every allowed move of an order; FAILED, CANCELED, REFUNDED and REVERSED are final."""

REFUNDABLE: Final = frozenset({SETTLED, DELIVERY_CONFIRMED, PARTIALLY_REFUNDED})
"""Statuses in which the merchant has the money and can refund some of it."""

PAID: Final = frozenset(
    {
        PAYMENT_PENDING,
        CHALLENGE_REQUIRED,
        AUTHORIZED,
        CAPTURED,
        SETTLED,
        DELIVERY_CONFIRMED,
        PARTIALLY_REFUNDED,
        REFUNDED,
    }
)
"""Statuses in which a payment was submitted and has not failed."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    customer_name TEXT NOT NULL,
    status INTEGER NOT NULL,
    transaction_id TEXT NOT NULL DEFAULT '',
    payment_ref TEXT NOT NULL DEFAULT '',
    credit_pending INTEGER NOT NULL DEFAULT 0,
    order_message BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_customer ON orders (customer_name, created_at);
-- Each refund the merchant recorded, by the back office's request_id: a retry whose
-- first answer was lost finds it here, after the order may no longer be refundable.
CREATE TABLE IF NOT EXISTS refunds (
    order_id TEXT NOT NULL REFERENCES orders (order_id),
    request_id TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    refund_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (order_id, request_id)
);
CREATE TABLE IF NOT EXISTS refund_attempts (
    order_id TEXT NOT NULL REFERENCES orders (order_id),
    request_id TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    PRIMARY KEY (order_id, request_id)
);
"""

_TRACKING_ALPHABET = string.ascii_uppercase + string.digits


class IllegalTransition(Exception):
    """An order was asked to make a move the state machine does not allow."""


def status_name(status: OrderStatus) -> str:
    """The enum name of a status, for messages and logs."""
    return order_pb2.OrderStatus.Name(status)


def check_transition(current: OrderStatus, target: OrderStatus) -> None:
    """Raise IllegalTransition unless the table allows current -> target."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(
            f"order cannot go from {status_name(current)} to {status_name(target)}"
        )


@dataclass(frozen=True)
class OrderRecord:
    """An order and what the merchant keeps about its payment."""

    order: order_pb2.Order
    """The order as the customer sees it."""
    transaction_id: str
    """The gateway's transaction, once authorization was answered."""
    payment_ref: str
    """Hex SHA-256 of the sealed instruction last submitted (an opaque reference)."""
    credit_pending: bool
    """The acquirer's credit arrived before the capture was recorded."""


def insert_order(conn: sqlite3.Connection, trust_domain: str, order: order_pb2.Order) -> None:
    """Store a new order and tell its customer."""
    conn.execute(
        "INSERT INTO orders (order_id, customer_name, status, order_message, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            order.order_id,
            order.customer_name,
            int(order.status),
            order.SerializeToString(),
            order.created_at.ToJsonString(),
            order.updated_at.ToJsonString(),
        ),
    )
    _announce(conn, trust_domain, order)


_SELECT_RECORDS = "SELECT order_message, transaction_id, payment_ref, credit_pending FROM orders"


def _record(row: tuple[bytes, str, str, int]) -> OrderRecord:
    return OrderRecord(
        order=order_pb2.Order.FromString(row[0]),
        transaction_id=row[1],
        payment_ref=row[2],
        credit_pending=bool(row[3]),
    )


def load_order(conn: sqlite3.Connection, order_id: str) -> OrderRecord | None:
    """The order with this id, or None."""
    row = conn.execute(_SELECT_RECORDS + " WHERE order_id = ?", (order_id,)).fetchone()
    return None if row is None else _record(row)


def orders_in(conn: sqlite3.Connection, status: OrderStatus) -> list[OrderRecord]:
    """Every order with this status, oldest first."""
    rows = conn.execute(
        _SELECT_RECORDS + " WHERE status = ? ORDER BY created_at", (status,)
    ).fetchall()
    return [_record(row) for row in rows]


def all_orders(conn: sqlite3.Connection) -> list[OrderRecord]:
    """Every order the merchant keeps, oldest first."""
    rows = conn.execute(_SELECT_RECORDS + " ORDER BY created_at").fetchall()
    return [_record(row) for row in rows]


def customer_order(conn: sqlite3.Connection, order_id: str, customer_name: str) -> OrderRecord:
    """One of the customer's orders; NotFound(ORDER_NOT_FOUND) for anyone else's."""
    record = load_order(conn, order_id) if order_id else None
    # Another customer's order is reported as missing: its existence is not theirs to know.
    if record is None or record.order.customer_name != customer_name:
        raise errors.NotFound(
            "ORDER_NOT_FOUND", f"no order {order_id!r} for this customer", order_id=order_id
        )
    return record


def transition(
    conn: sqlite3.Connection,
    trust_domain: str,
    record: OrderRecord,
    target: OrderStatus,
    *,
    failure_reason: str | None = None,
    transaction_id: str | None = None,
    payment_ref: str | None = None,
    challenge: order_pb2.ChallengeRef | None = None,
    delivery: order_pb2.DeliveryConfirmation | None = None,
    refunded_total: common_pb2.Money | None = None,
) -> OrderRecord:
    """Move an order to target, save it and queue an OrderUpdate for its customer.

    record must have been read in the same transaction. Raises
    IllegalTransition if the table does not allow the move.
    """
    check_transition(record.order.status, target)
    order = order_pb2.Order()
    order.CopyFrom(record.order)
    order.status = target
    order.updated_at.GetCurrentTime()
    if target == PAYMENT_PENDING:
        order.ClearField("failure_reason")
    if failure_reason is not None:
        order.failure_reason = failure_reason
    if challenge is not None:
        order.challenge.CopyFrom(challenge)
    elif target != CHALLENGE_REQUIRED:
        order.ClearField("challenge")
    if delivery is not None:
        order.delivery.CopyFrom(delivery)
    if refunded_total is not None:
        order.refunded_total.CopyFrom(refunded_total)
    updated = OrderRecord(
        order=order,
        transaction_id=record.transaction_id if transaction_id is None else transaction_id,
        payment_ref=record.payment_ref if payment_ref is None else payment_ref,
        credit_pending=record.credit_pending,
    )
    conn.execute(
        "UPDATE orders SET status = ?, transaction_id = ?, payment_ref = ?, order_message = ?,"
        " updated_at = ? WHERE order_id = ?",
        (
            int(order.status),
            updated.transaction_id,
            updated.payment_ref,
            order.SerializeToString(),
            order.updated_at.ToJsonString(),
            order.order_id,
        ),
    )
    _announce(conn, trust_domain, order)
    return updated


def mark_credit_pending(conn: sqlite3.Connection, order_id: str) -> None:
    """Remember that the acquirer credited an order whose capture is not recorded yet."""
    conn.execute("UPDATE orders SET credit_pending = 1 WHERE order_id = ?", (order_id,))


def settle(conn: sqlite3.Connection, trust_domain: str, record: OrderRecord) -> OrderRecord:
    """The acquirer credited the order: SETTLED, then DELIVERY_CONFIRMED with a tracking number."""
    settled = transition(conn, trust_domain, record, SETTLED)
    conn.execute(
        "UPDATE orders SET credit_pending = 0 WHERE order_id = ?", (record.order.order_id,)
    )
    delivery = order_pb2.DeliveryConfirmation(
        tracking_reference="TRK-" + "".join(secrets.choice(_TRACKING_ALPHABET) for _ in range(10)),
        confirmed_at=timestamp(now()),
    )
    return transition(conn, trust_domain, settled, DELIVERY_CONFIRMED, delivery=delivery)


def raise_refunded_total(
    conn: sqlite3.Connection,
    trust_domain: str,
    record: OrderRecord,
    refunded_total: common_pb2.Money,
) -> OrderRecord:
    """Record that refunded_total of the order's payment is refunded, all refunds together.

    A running total, never an increment: the same refund reported twice (in the
    gateway's answer to the merchant's RefundOrder and in the acquirer's
    RefundNotice) counts once, and a total not above the one recorded changes
    nothing. Otherwise the order becomes PARTIALLY_REFUNDED, or REFUNDED once
    the whole total is. record must have been read in the same transaction;
    IllegalTransition unless it is REFUNDABLE.
    """
    if refunded_total.amount_minor <= record.order.refunded_total.amount_minor:
        return record
    target = (
        REFUNDED
        if refunded_total.amount_minor >= record.order.total.amount_minor
        else PARTIALLY_REFUNDED
    )
    return transition(conn, trust_domain, record, target, refunded_total=refunded_total)


def _announce(conn: sqlite3.Connection, trust_domain: str, order: order_pb2.Order) -> None:
    recipient = spiffe_id(trust_domain, Role.CUSTOMER, order.customer_name)
    update = notification_pb2.SubscribeResponse(
        order_update=notification_pb2.OrderUpdate(order=order)
    )
    emit(conn, recipient, update)
