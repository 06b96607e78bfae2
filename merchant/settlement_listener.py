"""The settlement listener: the acquirer's credit, refund and cheque notices move orders.

It follows the merchant's notification stream at its acquirer from the
persisted cursor. Delivery is at least once; each event is applied in one
transaction that records its id, so it takes effect exactly once. A credit for
one of our orders marks the order SETTLED and confirms delivery to the customer.
A RefundNotice raises the order's refunded total to the payment's settled
refunds (PARTIALLY_REFUNDED, REFUNDED). A ChequeNotice decides an order paid
by cheque (:func:`merchant.cheque_deposits.apply_deposit`): PAID settles it and
confirms delivery, RETURNED fails it with the return reason; a credit entry
for such an order is left to its ChequeNotice.

These notices are the merchant's books' view of its money, whoever moved it:
the node's certificate is also its operator's, and a capture or a refund asked
of the gateway directly, past the node, still reaches the order through them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import sqlite3
from collections.abc import Callable
from typing import Final

from interbank.v1 import cheque_pb2, common_pb2, notification_pb2, notification_pb2_grpc

from merchant import cheque_deposits, coin_deposits, orders
from merchant.cheque_deposits import DepositApplied
from payment.clock import now_iso
from payment.logs import get_logger
from payment.notifications import follow
from payment.storage import Store

__all__ = ["SCHEMA", "Outcome", "SettlementListener", "load_cursor"]

_log = get_logger("paynet.merchant.settlement")

SCHEMA = """
CREATE TABLE IF NOT EXISTS processed_events (
    event_id TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL,
    processed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscription_cursor (
    source TEXT PRIMARY KEY,
    after_sequence INTEGER NOT NULL
);
"""

_SOURCE = "acquirer"
_RESTART_DELAY_S = 1.0
_SETTLEABLE = frozenset({orders.CAPTURED, orders.AUTHORIZED})
# The authorization's answer is on its way (or was lost: the merchant's resolver asks the
# gateway for it): the credit is remembered and applied once the capture is recorded.
_CAPTURE_IN_FLIGHT = frozenset({orders.PAYMENT_PENDING})


class Outcome(enum.StrEnum):
    """What applying one event did."""

    DUPLICATE = "duplicate"
    """The event, or the refund it reports, was applied before; nothing changed."""
    IGNORED = "ignored"
    """Not a credit, refund or cheque decision for one of our orders (a credit for an order
    paid by cheque is left to its ChequeNotice)."""
    SETTLED = "settled"
    """The order was settled and its delivery confirmed."""
    DEFERRED = "deferred"
    """The credit arrived before the capture was recorded; it settles on capture."""
    SKIPPED = "skipped"
    """A credit or refund the order cannot take (wrong amount or status)."""
    REFUNDED = "refunded"
    """The order's refunded total was raised to the settled refunds of its payment."""
    RETURNED = "returned"
    """The order's cheque was returned unpaid: the order FAILED with the return reason."""


_CHEQUE_OUTCOMES: Final = {
    DepositApplied.SETTLED: Outcome.SETTLED,
    DepositApplied.RETURNED: Outcome.RETURNED,
    DepositApplied.RECORDED: Outcome.IGNORED,
    DepositApplied.DUPLICATE: Outcome.DUPLICATE,
    DepositApplied.UNKNOWN: Outcome.IGNORED,
    DepositApplied.MISMATCH: Outcome.SKIPPED,
}


def load_cursor(conn: sqlite3.Connection) -> int:
    """The last sequence applied from the acquirer's stream (0 before the first)."""
    row = conn.execute(
        "SELECT after_sequence FROM subscription_cursor WHERE source = ?", (_SOURCE,)
    ).fetchone()
    return int(row[0]) if row else 0


class SettlementListener:
    """Applies the acquirer's credit and refund notices to orders."""

    def __init__(
        self,
        store: Store,
        trust_domain: str,
        account_id: str,
        subscribe: Callable[[], notification_pb2_grpc.NotificationServiceStub],
    ) -> None:
        self._store = store
        self._trust_domain = trust_domain
        self._account_id = account_id
        self._subscribe = subscribe

    async def run(self) -> None:
        """Follow the acquirer's stream until cancelled, restarting after failures."""
        while True:
            try:
                after = await self._store.read(load_cursor)
                following = follow(self._subscribe(), after_sequence=after)
                async with contextlib.aclosing(following) as events:
                    async for event in events:
                        await self.apply(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A refused subscription or a store failure must not end settlement for good.
                _log.error(
                    "settlement.listener_failed", error_type=type(exc).__name__, error=str(exc)
                )
            await asyncio.sleep(_RESTART_DELAY_S)

    async def apply(self, event: notification_pb2.SubscribeResponse) -> Outcome:
        """Apply one event exactly once; always advance the cursor."""
        outcome, order_id, status = await self._store.transaction(
            lambda conn: self._apply(conn, event)
        )
        kind = event.WhichOneof("event")
        notice = kind if kind in ("refund", "cheque") else "credit"
        if outcome is Outcome.SKIPPED:
            _log.warning(
                f"settlement.{notice}_skipped",
                event_id=event.event_id,
                order_id=order_id,
                status=status,
            )
        elif outcome is Outcome.DEFERRED:
            _log.info(
                "settlement.credit_deferred",
                event_id=event.event_id,
                order_id=order_id,
                status=status,
            )
        elif outcome is Outcome.SETTLED:
            _log.info("settlement.order_settled", event_id=event.event_id, order_id=order_id)
        elif outcome is Outcome.RETURNED:
            _log.info(
                "settlement.cheque_returned",
                event_id=event.event_id,
                order_id=order_id,
                reason=event.cheque.deposit.return_reason,
            )
        elif outcome is Outcome.REFUNDED:
            _log.info(
                "settlement.refund_recorded",
                event_id=event.event_id,
                order_id=order_id,
                refund_id=event.refund.refund_id,
                refunded_minor=event.refund.refunded_total.amount_minor,
            )
        return outcome

    def _apply(
        self, conn: sqlite3.Connection, event: notification_pb2.SubscribeResponse
    ) -> tuple[Outcome, str, str]:
        conn.execute(
            "INSERT INTO subscription_cursor (source, after_sequence) VALUES (?, ?)"
            " ON CONFLICT (source) DO UPDATE"
            " SET after_sequence = max(after_sequence, excluded.after_sequence)",
            (_SOURCE, event.sequence),
        )
        if conn.execute(
            "SELECT 1 FROM processed_events WHERE event_id = ?", (event.event_id,)
        ).fetchone():
            return Outcome.DUPLICATE, "", ""
        conn.execute(
            "INSERT INTO processed_events (event_id, sequence, processed_at) VALUES (?, ?, ?)",
            (event.event_id, event.sequence, now_iso()),
        )
        kind = event.WhichOneof("event")
        if kind == "refund":
            return self._apply_refund(conn, event.refund)
        if kind == "cheque":
            return self._apply_cheque(conn, event.cheque.deposit)
        entry = event.account_entry
        if (
            kind != "account_entry"
            or entry.direction != notification_pb2.ACCOUNT_ENTRY_DIRECTION_CREDIT
            or not entry.order_id
            or not self._ours(entry.account)
        ):
            return Outcome.IGNORED, entry.order_id, ""
        record = orders.load_order(conn, entry.order_id)
        if (
            record is None
            or cheque_deposits.paid_by_cheque(conn, entry.order_id)
            or coin_deposits.paid_by_coins(conn, entry.order_id)
        ):
            # A cheque's notice, or the deposit's own answer, decides those orders.
            return Outcome.IGNORED, entry.order_id, ""
        status = record.order.status
        if (
            entry.amount.amount_minor != record.order.total.amount_minor
            or entry.amount.currency_code != record.order.total.currency_code
        ):
            return Outcome.SKIPPED, entry.order_id, "AMOUNT_MISMATCH"
        if status == orders.CHALLENGE_REQUIRED:
            # The money arrived, so the hold was captured, by whoever asked the gateway:
            # the order is captured (a completion still on its way then finds it paid).
            record = orders.transition(conn, self._trust_domain, record, orders.CAPTURED)
        if record.order.status in _SETTLEABLE:
            orders.settle(conn, self._trust_domain, record)
            return Outcome.SETTLED, entry.order_id, orders.status_name(status)
        if status in _CAPTURE_IN_FLIGHT:
            orders.mark_credit_pending(conn, entry.order_id)
            return Outcome.DEFERRED, entry.order_id, orders.status_name(status)
        return Outcome.SKIPPED, entry.order_id, orders.status_name(status)

    def _apply_refund(
        self, conn: sqlite3.Connection, refund: notification_pb2.RefundNotice
    ) -> tuple[Outcome, str, str]:
        """Raise the order's refunded total to the acquirer's settled total."""
        record = orders.load_order(conn, refund.order_id) if refund.order_id else None
        if record is None or not self._ours(refund.account):
            return Outcome.IGNORED, refund.order_id, ""
        order, total = record.order, refund.refunded_total
        if (
            total.currency_code != order.total.currency_code
            or not 0 < total.amount_minor <= order.total.amount_minor
        ):
            return Outcome.SKIPPED, refund.order_id, "AMOUNT_MISMATCH"
        if total.amount_minor <= order.refunded_total.amount_minor:
            # Recorded already: the node's own RefundOrder got the same total in its answer.
            return Outcome.DUPLICATE, refund.order_id, orders.status_name(order.status)
        if order.status not in orders.REFUNDABLE:
            return Outcome.SKIPPED, refund.order_id, orders.status_name(order.status)
        orders.raise_refunded_total(conn, self._trust_domain, record, total)
        return Outcome.REFUNDED, refund.order_id, orders.status_name(order.status)

    def _apply_cheque(
        self, conn: sqlite3.Connection, deposit: cheque_pb2.ChequeDeposit
    ) -> tuple[Outcome, str, str]:
        """Settle or fail the order a deposited cheque pays, as the drawee decided."""
        before = orders.load_order(conn, deposit.order_id) if deposit.order_id else None
        status = "" if before is None else orders.status_name(before.order.status)
        applied = cheque_deposits.apply_deposit(conn, self._trust_domain, deposit)
        return _CHEQUE_OUTCOMES[applied], deposit.order_id, status

    def _ours(self, account: common_pb2.AccountRef) -> bool:
        """True unless the notice names another account than the merchant's."""
        return not account.account_id or account.account_id == self._account_id
