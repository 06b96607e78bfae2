"""Refunds: all or part of a settled order, asked of the gateway by the back office.

The gateway asks the merchant's acquirer to return the money (an interbank
payment return). A refund is recorded as attempted before the gateway is
asked, so a retry of the same request after a lost answer asks again with the
same id and the gateway and the merchant record it alike. It is the same for
every instrument whose payment was captured.
"""

from __future__ import annotations

import sqlite3

from interbank.v1 import authorization_pb2, common_pb2, order_pb2

from merchant import orders
from merchant.ordering import OrderBook
from merchant.orders import OrderRecord
from payment import errors, ids
from payment.clock import now_iso
from payment.errors import relayed
from payment.logs import get_logger

__all__ = ["Refunds"]

_log = get_logger("paynet.merchant")


class Refunds:
    """Refunds settled orders through the gateway and the acquirer."""

    def __init__(self, book: OrderBook) -> None:
        self._book = book

    async def refund_order(
        self, order_id: str, amount: common_pb2.Money | None, request_id: str
    ) -> order_pb2.RefundOrderResponse:
        """Refund (part of) a settled order through the gateway and the acquirer."""
        book = self._book
        record, recorded, attempted = await book.store.read(
            lambda conn: (
                book.load(conn, order_id),
                _recorded_refund(conn, order_id, request_id),
                _refund_attempt(conn, order_id, request_id),
            )
        )
        order = record.order
        if recorded is None and attempted is not None:
            # This very request reached the gateway before and its answer was lost: ask
            # again with the same id, whatever the order's state now (a RefundNotice may
            # already have refunded it), so the gateway and the merchant record it alike.
            if amount is not None and amount.amount_minor != attempted:
                raise errors.AlreadyExists(
                    "IDEMPOTENCY_KEY_REUSED",
                    f"request_id {request_id!r} asked to refund {attempted} minor units; "
                    "choose a new request_id for a new refund",
                    request_id=request_id,
                )
            wanted = common_pb2.Money(
                amount_minor=attempted, currency_code=order.total.currency_code
            )
            return await self._send_refund(record, request_id, wanted)
        if recorded is not None:
            # This very request was refunded before and its answer lost: the same answer.
            amount_minor, refund_id = recorded
            if amount is not None and amount.amount_minor != amount_minor:
                raise errors.AlreadyExists(
                    "IDEMPOTENCY_KEY_REUSED",
                    f"request_id {request_id!r} already refunded {amount_minor} minor units; "
                    "choose a new request_id for a new refund",
                    request_id=request_id,
                )
            return order_pb2.RefundOrderResponse(order=order, refund_id=refund_id)
        if order.status not in orders.REFUNDABLE:
            raise errors.FailedPrecondition(
                "ORDER_NOT_REFUNDABLE",
                f"order {order_id!r} is {orders.status_name(order.status)}: only a settled order"
                " can be refunded (cancel an unpaid one instead)",
                order_id=order_id,
            )
        remaining = order.total.amount_minor - order.refunded_total.amount_minor
        wanted = (
            amount
            if amount is not None
            else common_pb2.Money(amount_minor=remaining, currency_code=order.total.currency_code)
        )
        if wanted.currency_code != order.total.currency_code or wanted.amount_minor <= 0:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                f"amount must be above 0 in {order.total.currency_code}",
                field="amount",
            )
        if wanted.amount_minor > remaining:
            raise errors.FailedPrecondition(
                "REFUND_EXCEEDS_PAYMENT",
                f"at most {remaining} minor units of order {order_id!r} can still be refunded",
                refundable_minor=str(remaining),
            )
        await book.store.transaction(
            lambda conn: conn.execute(
                "INSERT OR IGNORE INTO refund_attempts (order_id, request_id, amount_minor)"
                " VALUES (?, ?, ?)",
                (order_id, request_id, wanted.amount_minor),
            )
        )
        return await self._send_refund(record, request_id, wanted)

    async def _send_refund(
        self, record: OrderRecord, request_id: str, wanted: common_pb2.Money
    ) -> order_pb2.RefundOrderResponse:
        """Ask the gateway for a refund recorded as attempted, and record its answer."""
        book = self._book
        order_id = record.order.order_id
        reply = await relayed(
            book.gateway().RefundPayment(
                authorization_pb2.RefundPaymentRequest(
                    request_id=ids.derived_request_id("refund", order_id, request_id),
                    transaction_id=record.transaction_id,
                    amount=wanted,
                ),
                timeout=book.call_timeout_s,
            )
        )

        def record_refund(conn: sqlite3.Connection) -> order_pb2.Order:
            current = book.load(conn, order_id)
            conn.execute(
                "INSERT OR IGNORE INTO refunds (order_id, request_id, amount_minor, refund_id,"
                " recorded_at) VALUES (?, ?, ?, ?, ?)",
                (order_id, request_id, wanted.amount_minor, reply.refund_id, now_iso()),
            )
            refunded = reply.refunded_total
            if refunded.amount_minor <= current.order.refunded_total.amount_minor:
                return current.order  # a replayed answer: already recorded
            target = (
                orders.REFUNDED
                if refunded.amount_minor >= current.order.total.amount_minor
                else orders.PARTIALLY_REFUNDED
            )
            return orders.transition(
                conn, book.trust_domain, current, target, refunded_total=refunded
            ).order

        refunded_order = await book.store.transaction(record_refund)
        _log.info(
            "order.refunded",
            order_id=order_id,
            refund_id=reply.refund_id,
            refunded_minor=reply.refunded_total.amount_minor,
        )
        return order_pb2.RefundOrderResponse(order=refunded_order, refund_id=reply.refund_id)


def _refund_attempt(conn: sqlite3.Connection, order_id: str, request_id: str) -> int | None:
    """The amount of a refund this request asked the gateway for, or None if it never did."""
    row = conn.execute(
        "SELECT amount_minor FROM refund_attempts WHERE order_id = ? AND request_id = ?",
        (order_id, request_id),
    ).fetchone()
    return None if row is None else int(row[0])


def _recorded_refund(
    conn: sqlite3.Connection, order_id: str, request_id: str
) -> tuple[int, str] | None:
    """(amount_minor, refund_id) of a refund recorded for this request, or None."""
    row = conn.execute(
        "SELECT amount_minor, refund_id FROM refunds WHERE order_id = ? AND request_id = ?",
        (order_id, request_id),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))
