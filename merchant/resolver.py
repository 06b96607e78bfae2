"""Pending-order resolution: what became of payments whose answer was lost.

An order stays PAYMENT_PENDING when the gateway's answer to its
AuthorizePayment was lost (its outcome is unknown), until the customer submits
the same sealed payment again. The merchant's background job
(:meth:`PendingPayments.resolve_pending`) and a refused resubmission
(:mod:`merchant.paying`) settle it by the gateway's record of the payment
(GetPaymentTransaction, with the transaction id derived from the request).
An order paid by cheque or with coins is not the gateway's: :mod:`merchant.cheques`
and :mod:`merchant.coins` finish their deposits.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Final

from interbank.v1 import authorization_pb2

from merchant import cheque_deposits, coin_deposits, orders
from merchant.ordering import OrderBook
from merchant.orders import OrderRecord
from merchant.paying import Captures, authorize_request_id
from payment import errors, ids
from payment.clock import now
from payment.errors import relayed
from payment.logs import get_logger

__all__ = ["RESOLVE_AFTER_S", "PendingPayments"]

_log = get_logger("paynet.merchant")

RESOLVE_AFTER_S: Final = 60.0
"""How long a payment stays PAYMENT_PENDING before the merchant asks the gateway about it."""
_RELEASED = {
    authorization_pb2.HOLD_STATUS_VOIDED: "HOLD_VOIDED",
    authorization_pb2.HOLD_STATUS_EXPIRED: "HOLD_EXPIRED",
}
_POSTABLE = frozenset(
    {authorization_pb2.HOLD_STATUS_AUTHORIZED, authorization_pb2.HOLD_STATUS_CAPTURED}
)


class PendingPayments:
    """Settles PAYMENT_PENDING orders by asking the gateway for their payments."""

    def __init__(self, book: OrderBook, captures: Captures) -> None:
        self._book = book
        self._captures = captures

    async def resolve_pending(
        self, *, not_received_after_s: float, older_than_s: float = RESOLVE_AFTER_S
    ) -> int:
        """Find out what became of payments whose answer was lost; how many orders moved.

        An order stays PAYMENT_PENDING when the gateway's answer was lost, until
        the customer submits the same sealed payment again. For each one pending
        longer than older_than_s, the merchant asks the gateway for the
        transaction (its id is derived from the request): a hold that is
        authorized or posted is captured, so the order is paid as the customer
        meant; a hold waiting for its challenge makes the order
        CHALLENGE_REQUIRED, where the customer completes or cancels it; a
        refused payment or a released hold puts the order back to CREATED with
        the reason. A transaction the gateway does not know, once
        not_received_after_s has passed (the sealed instruction can no longer be
        fresh), puts it back to CREATED with PAYMENT_NOT_RECEIVED. A transaction
        the gateway is still authorizing is left.
        """
        moment = now()
        pending = await self._book.store.read(
            lambda conn: [
                record
                for record in orders.orders_in(conn, orders.PAYMENT_PENDING)
                if not cheque_deposits.paid_by_cheque(conn, record.order.order_id)
                and not coin_deposits.paid_by_coins(conn, record.order.order_id)
            ]
        )
        moved = 0
        for record in pending:
            age_s = (moment - record.order.updated_at.ToDatetime(dt.UTC)).total_seconds()
            if age_s < older_than_s:
                continue
            late = age_s >= not_received_after_s
            if await self.resolve(
                record, not_found_reason="PAYMENT_NOT_RECEIVED" if late else None
            ):
                moved += 1
        return moved

    async def resolve(self, record: OrderRecord, *, not_found_reason: str | None) -> bool:
        """Settle a pending order by the gateway's record of its payment; whether it moved.

        not_found_reason: what reopens the order if the gateway has no such
        transaction; None leaves it pending (the payment may still arrive).
        """
        book = self._book
        order_id = record.order.order_id
        transaction_id = ids.transaction_id(
            book.merchant_name, authorize_request_id(order_id, record.payment_ref)
        )
        try:
            reply = await relayed(
                book.gateway().GetPaymentTransaction(
                    authorization_pb2.GetPaymentTransactionRequest(transaction_id=transaction_id),
                    timeout=book.call_timeout_s,
                )
            )
        except errors.PaynetError as exc:
            if exc.reason != "TRANSACTION_NOT_FOUND" or not_found_reason is None:
                return False  # the gateway is unreachable, or the payment may still arrive
            return await self._reopen(record, not_found_reason)
        found = reply.transaction
        if found.failure_reason:
            return await self._reopen(record, found.failure_reason)
        if found.hold_status in _RELEASED:
            return await self._reopen(record, _RELEASED[found.hold_status])
        if found.hold_status == authorization_pb2.HOLD_STATUS_CHALLENGE_PENDING:
            # Held for a challenge the customer never saw here: as a challenged order, it
            # can be completed once answered, or canceled, which releases the hold.
            challenged = await self._still_pending(
                record, orders.CHALLENGE_REQUIRED, transaction_id=transaction_id
            )
            if challenged:
                _log.info("payment.resolved", order_id=order_id, transaction_id=transaction_id)
            return challenged
        if found.hold_status not in _POSTABLE:
            return False  # still authorizing
        if not await self._still_pending(record, orders.AUTHORIZED, transaction_id=transaction_id):
            return False
        _log.info("payment.resolved", order_id=order_id, transaction_id=transaction_id)
        try:
            await self._captures.capture(order_id, transaction_id)
        except errors.PaynetError as exc:
            # AUTHORIZED now: the customer's CompletePayment, or a retry, captures it.
            _log.warning("payment.resolve_capture_failed", order_id=order_id, reason=exc.reason)
        return True

    async def _reopen(self, record: OrderRecord, reason: str) -> bool:
        """Back to CREATED with the reason, so the customer can pay again."""
        if not await self._still_pending(record, orders.CREATED, failure_reason=reason):
            return False
        _log.info("payment.resolved", order_id=record.order.order_id, reason=reason)
        return True

    async def _still_pending(
        self,
        record: OrderRecord,
        target: orders.OrderStatus,
        *,
        failure_reason: str | None = None,
        transaction_id: str | None = None,
    ) -> bool:
        """Move the order to target if it is still pending on the same payment."""
        book = self._book

        def move(conn: sqlite3.Connection) -> bool:
            current = book.load(conn, record.order.order_id)
            if (
                current.order.status != orders.PAYMENT_PENDING
                or current.payment_ref != record.payment_ref
            ):
                return False  # the customer's own retry got there first
            orders.transition(
                conn,
                book.trust_domain,
                current,
                target,
                failure_reason=failure_reason,
                transaction_id=transaction_id,
            )
            return True

        return await book.store.transaction(move)
