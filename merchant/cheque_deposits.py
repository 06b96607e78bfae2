"""What the merchant keeps of each cheque it takes, and the acquirer's word on its deposit.

One row per order paid by cheque (:mod:`merchant.cheques` writes it in the
transaction that makes the order PAYMENT_PENDING, before the acquirer is
asked): the signed documents, the endorsement and the DepositCheque
request_id, so a deposit whose answer was lost can be sent again as it was;
then the acquirer's deposit id and the deposit's state. :func:`apply_deposit`
applies the acquirer's word on a deposit (the answer to DepositCheque, or the
ChequeNotice that :mod:`merchant.settlement_listener` receives) to the order,
exactly once. The documents never reach a log line or an error message.
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass, field
from typing import Final

from interbank.v1 import cheque_pb2

from merchant import orders
from payment.clock import now_iso

__all__ = [
    "DEPOSITING",
    "SCHEMA",
    "ChequePayment",
    "DepositApplied",
    "all_cheque_payments",
    "apply_deposit",
    "drop_cheque_payment",
    "insert_cheque_payment",
    "load_cheque_payment",
    "paid_by_cheque",
    "waiting_deposits",
]

SCHEMA = """
-- Cheques taken for orders (merchant.cheque_deposits), one per order: recorded with the deposit
-- request before the acquirer is asked, so a lost answer can be asked again.
CREATE TABLE IF NOT EXISTS cheque_payments (
    order_id TEXT PRIMARY KEY REFERENCES orders (order_id),
    deposit_request_id TEXT NOT NULL,
    cheque_digest BLOB NOT NULL,
    signed_cheque BLOB NOT NULL,
    signed_certificate BLOB NOT NULL,
    signed_endorsement BLOB NOT NULL,
    drawee_bank_code TEXT NOT NULL,
    serial INTEGER NOT NULL,
    deposit_id TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('DEPOSITING', 'IN_CLEARING', 'PAID', 'RETURNED')),
    return_reason TEXT NOT NULL DEFAULT '',
    submitted_at TEXT NOT NULL,
    decided_at TEXT
);
CREATE INDEX IF NOT EXISTS cheque_payments_state ON cheque_payments (state, submitted_at);
"""

DEPOSITING: Final = "DEPOSITING"
"""Recorded and sent (or about to be); the acquirer's answer is not in yet."""
_IN_CLEARING: Final = "IN_CLEARING"
_PAID: Final = "PAID"
_RETURNED: Final = "RETURNED"
_STATE_NAMES: Final = {
    cheque_pb2.CHEQUE_STATE_IN_CLEARING: _IN_CLEARING,
    cheque_pb2.CHEQUE_STATE_PAID: _PAID,
    cheque_pb2.CHEQUE_STATE_RETURNED: _RETURNED,
}
_RETURNED_WITHOUT_REASON: Final = "CHEQUE_RETURNED"
"""The failure reason of an order whose cheque came back without one."""


@dataclass(frozen=True)
class ChequePayment:
    """A cheque taken for an order, as the merchant keeps it."""

    order_id: str
    """The order it pays (the cheque's order_reference)."""
    deposit_request_id: str
    """The DepositCheque request_id, derived from the customer's request_id."""
    cheque_digest: bytes
    """SHA-256 of the signed cheque: what the endorsement names."""
    signed_cheque: bytes = field(repr=False)
    """The cheque as the drawer signed it."""
    signed_certificate: bytes = field(repr=False)
    """Its account certificate, signed by the drawee bank."""
    signed_endorsement: bytes = field(repr=False)
    """The merchant's endorsement to its acquirer."""
    drawee_bank_code: str
    """The bank the cheque is drawn on."""
    serial: int
    """The cheque's serial."""
    deposit_id: str
    """The acquirer's id of the deposit, once it answered (else empty)."""
    state: str
    """DEPOSITING, then the deposit's state: IN_CLEARING, PAID or RETURNED."""
    return_reason: str
    """When RETURNED, why."""
    submitted_at: str
    """When the deposit was first recorded (ISO-8601)."""


class DepositApplied(enum.Enum):
    """What applying the acquirer's word on a deposit did (:func:`apply_deposit`)."""

    SETTLED = "settled"
    """The cheque was paid: the order is SETTLED and its delivery confirmed."""
    RETURNED = "returned"
    """The cheque was returned: the order is FAILED with the return reason."""
    RECORDED = "recorded"
    """The deposit is in clearing; its id is recorded, the order stays PAYMENT_PENDING."""
    DUPLICATE = "duplicate"
    """Applied before: nothing changed."""
    UNKNOWN = "unknown"
    """No cheque of ours pays that order."""
    MISMATCH = "mismatch"
    """Not the deposit recorded for the order (id, cheque or amount), or the order cannot
    take it: nothing changed."""


_SELECT = (
    "SELECT order_id, deposit_request_id, cheque_digest, signed_cheque, signed_certificate,"
    " signed_endorsement, drawee_bank_code, serial, deposit_id, state, return_reason,"
    " submitted_at FROM cheque_payments"
)


_Row = tuple[str, str, bytes, bytes, bytes, bytes, str, int, str, str, str, str]


def _payment(row: _Row) -> ChequePayment:
    return ChequePayment(
        order_id=row[0],
        deposit_request_id=row[1],
        cheque_digest=bytes(row[2]),
        signed_cheque=bytes(row[3]),
        signed_certificate=bytes(row[4]),
        signed_endorsement=bytes(row[5]),
        drawee_bank_code=row[6],
        serial=int(row[7]),
        deposit_id=row[8],
        state=row[9],
        return_reason=row[10],
        submitted_at=row[11],
    )


def load_cheque_payment(conn: sqlite3.Connection, order_id: str) -> ChequePayment | None:
    """The cheque taken for an order, or None."""
    row = conn.execute(_SELECT + " WHERE order_id = ?", (order_id,)).fetchone()
    return None if row is None else _payment(row)


def paid_by_cheque(conn: sqlite3.Connection, order_id: str) -> bool:
    """Whether a cheque was taken for the order (deposited, or being deposited)."""
    return (
        conn.execute("SELECT 1 FROM cheque_payments WHERE order_id = ?", (order_id,)).fetchone()
        is not None
    )


def all_cheque_payments(conn: sqlite3.Connection) -> list[ChequePayment]:
    """Every cheque the merchant took, oldest first (for the operator's tools)."""
    return [_payment(row) for row in conn.execute(_SELECT + " ORDER BY submitted_at")]


def apply_deposit(
    conn: sqlite3.Connection,
    trust_domain: str,
    deposit: cheque_pb2.ChequeDeposit,
    *,
    order_id: str | None = None,
) -> DepositApplied:
    """Apply the acquirer's word on a deposit (its answer or its ChequeNotice) to the order.

    The deposit is found by its order_id (order_id, when given, must be it) and must
    be the one recorded for the order: the same deposit id once one is known, the
    same drawee bank, serial and amount. IN_CLEARING records the deposit id; PAID
    settles the order (SETTLED, then DELIVERY_CONFIRMED); RETURNED fails it with the
    return reason. Idempotent: a decision already applied changes nothing.
    """
    if order_id is not None and deposit.order_id != order_id:
        return DepositApplied.MISMATCH
    payment = load_cheque_payment(conn, deposit.order_id) if deposit.order_id else None
    if payment is None:
        return DepositApplied.UNKNOWN
    record = orders.load_order(conn, payment.order_id)
    if record is None:
        return DepositApplied.UNKNOWN
    total = record.order.total
    if (
        (payment.deposit_id and deposit.deposit_id != payment.deposit_id)
        or not deposit.deposit_id
        or deposit.drawee_bank_code != payment.drawee_bank_code
        or deposit.serial != payment.serial
        or deposit.amount.amount_minor != total.amount_minor
        or deposit.amount.currency_code != total.currency_code
    ):
        return DepositApplied.MISMATCH
    state = _STATE_NAMES.get(deposit.state)
    if state is None:
        return DepositApplied.MISMATCH
    if payment.state in (_PAID, _RETURNED):
        return DepositApplied.DUPLICATE
    if state == _IN_CLEARING:
        if payment.state == _IN_CLEARING:
            return DepositApplied.DUPLICATE
        _record_state(conn, payment.order_id, deposit.deposit_id, _IN_CLEARING, "")
        return DepositApplied.RECORDED
    if record.order.status != orders.PAYMENT_PENDING:
        return DepositApplied.MISMATCH
    if state == _PAID:
        _record_state(conn, payment.order_id, deposit.deposit_id, _PAID, "")
        orders.settle(conn, trust_domain, record)
        return DepositApplied.SETTLED
    reason = deposit.return_reason or _RETURNED_WITHOUT_REASON
    _record_state(conn, payment.order_id, deposit.deposit_id, _RETURNED, reason)
    orders.transition(conn, trust_domain, record, orders.FAILED, failure_reason=reason)
    return DepositApplied.RETURNED


def insert_cheque_payment(conn: sqlite3.Connection, payment: ChequePayment) -> None:
    """Record a cheque taken for an order, DEPOSITING (one per order)."""
    conn.execute(
        "INSERT INTO cheque_payments (order_id, deposit_request_id, cheque_digest,"
        " signed_cheque, signed_certificate, signed_endorsement, drawee_bank_code,"
        " serial, state, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            payment.order_id,
            payment.deposit_request_id,
            payment.cheque_digest,
            payment.signed_cheque,
            payment.signed_certificate,
            payment.signed_endorsement,
            payment.drawee_bank_code,
            payment.serial,
            DEPOSITING,
            payment.submitted_at,
        ),
    )


def waiting_deposits(conn: sqlite3.Connection, submitted_before: str) -> list[ChequePayment]:
    """The deposits still DEPOSITING (no answer yet) recorded before an ISO-8601 time."""
    rows = conn.execute(
        _SELECT + " WHERE state = ? AND submitted_at <= ? ORDER BY submitted_at",
        (DEPOSITING, submitted_before),
    )
    return [_payment(row) for row in rows]


def drop_cheque_payment(conn: sqlite3.Connection, order_id: str) -> None:
    """Forget a cheque whose deposit the acquirer refused (it recorded nothing)."""
    conn.execute("DELETE FROM cheque_payments WHERE order_id = ?", (order_id,))


def _record_state(
    conn: sqlite3.Connection, order_id: str, deposit_id: str, state: str, return_reason: str
) -> None:
    decided_at = now_iso() if state in (_PAID, _RETURNED) else None
    conn.execute(
        "UPDATE cheque_payments SET deposit_id = ?, state = ?, return_reason = ?,"
        " decided_at = ? WHERE order_id = ?",
        (deposit_id, state, return_reason, decided_at, order_id),
    )
