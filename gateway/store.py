"""The gateway's durable record of payment transactions.

A row holds what the gateway needs to capture, void and report a payment: the
order, the merchant, the amount, the issuer it was routed to and the issuer's
hold. It never holds the instrument or the instruction: those live only in the
memory of the request that opened them.
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interbank.v1 import authorization_pb2, common_pb2

from payment import errors
from payment.clock import now_iso, timestamp
from payment.storage import DEFAULT_RETENTION_S, Store

__all__ = [
    "SCHEMA",
    "TransactionRecord",
    "TransactionState",
    "all_transactions",
    "authorizing",
    "begin_call",
    "claim_nonce",
    "end_call",
    "insert_transaction",
    "load_transaction",
    "mark_failed",
    "open_store",
    "pending_calls",
    "record_capture",
    "record_hold",
    "record_refund",
    "set_hold_status",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS payment_transaction (
    transaction_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    merchant_name TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency_code TEXT NOT NULL,
    issuer_bank_code TEXT NOT NULL,
    state TEXT NOT NULL,
    hold_id TEXT NOT NULL DEFAULT '',
    hold_status INTEGER NOT NULL DEFAULT 0,
    failure_reason TEXT NOT NULL DEFAULT '',
    instruction_id TEXT NOT NULL DEFAULT '',
    refunded_minor INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payment_transaction_order
    ON payment_transaction (merchant_name, order_id);
-- The few authorizations whose issuer answer is not recorded yet, for the resolver.
CREATE INDEX IF NOT EXISTS payment_transaction_authorizing
    ON payment_transaction (created_at) WHERE state = 'authorizing';
-- A capture or void asked of the issuer and not yet recorded: resumed after a crash.
CREATE TABLE IF NOT EXISTS pending_call (
    transaction_id TEXT NOT NULL REFERENCES payment_transaction (transaction_id),
    action TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    PRIMARY KEY (transaction_id, action)
);
-- The nonce of every sealed instruction accepted within the time window, and the one
-- transaction it may pay: the same instruction again under another request is a replay.
CREATE TABLE IF NOT EXISTS instruction_nonce (
    nonce BLOB PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS instruction_nonce_expiry ON instruction_nonce (expires_at);
"""


class TransactionState(enum.StrEnum):
    """Where the gateway's side of a transaction stands."""

    AUTHORIZING = "authorizing"
    """Recorded; the issuer has been asked for a hold."""
    HELD = "held"
    """The issuer placed a hold; hold_status tracks it."""
    FAILED = "failed"
    """The issuer refused or could not be reached; failure_reason says why."""


@dataclass(frozen=True)
class TransactionRecord:
    """One payment as the gateway knows it."""

    transaction_id: str
    """The gateway's id (a UUID)."""
    order_id: str
    """The merchant's order."""
    merchant_name: str
    """The merchant that asked for the authorization."""
    amount_minor: int
    """Amount in minor units."""
    currency_code: str
    """ISO 4217 code of the amount."""
    issuer_bank_code: str
    """The bank the instruction was routed to."""
    state: TransactionState
    """The gateway's state of the transaction."""
    hold_id: str = ""
    """The issuer's hold, once placed."""
    hold_status: authorization_pb2.HoldStatus.ValueType = authorization_pb2.HOLD_STATUS_UNSPECIFIED
    """The hold's state as last reported by the issuer."""
    failure_reason: str = ""
    """The reason of the failure when state is FAILED."""
    created_at: str = ""
    """When the gateway recorded it (ISO-8601)."""
    instruction_id: str = ""
    """The interbank credit transfer of the capture, once captured."""
    refunded_minor: int = 0
    """Money refunded so far, in minor units."""

    def to_proto(self) -> authorization_pb2.PaymentTransaction:
        """The record as the contract's PaymentTransaction."""
        return authorization_pb2.PaymentTransaction(
            transaction_id=self.transaction_id,
            order_id=self.order_id,
            merchant_name=self.merchant_name,
            amount=common_pb2.Money(
                amount_minor=self.amount_minor, currency_code=self.currency_code
            ),
            issuer_bank_code=self.issuer_bank_code,
            hold_id=self.hold_id,
            hold_status=self.hold_status,
            created_at=timestamp(self.created_at) if self.created_at else None,
            refunded_total=common_pb2.Money(
                amount_minor=self.refunded_minor, currency_code=self.currency_code
            ),
            instruction_id=self.instruction_id,
            failure_reason=self.failure_reason,
        )


def open_store(path: Path, retention_s: float = DEFAULT_RETENTION_S) -> Store:
    """The gateway's store at path, its node's store_path (not opened yet)."""
    return Store(path, SCHEMA, retention_s=retention_s)


def insert_transaction(conn: sqlite3.Connection, record: TransactionRecord) -> None:
    """Record a new transaction, or keep the one a retried request recorded before."""
    moment = now_iso()
    conn.execute(
        "INSERT OR IGNORE INTO payment_transaction (transaction_id, order_id, merchant_name,"
        " amount_minor, currency_code, issuer_bank_code, state, hold_id, hold_status,"
        " failure_reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.transaction_id,
            record.order_id,
            record.merchant_name,
            record.amount_minor,
            record.currency_code,
            record.issuer_bank_code,
            str(record.state),
            record.hold_id,
            int(record.hold_status),
            record.failure_reason,
            record.created_at or moment,
            moment,
        ),
    )


def claim_nonce(
    conn: sqlite3.Connection, nonce: bytes, transaction_id: str, expires_at: str
) -> None:
    """Bind an instruction's nonce to the transaction it pays, until expires_at.

    The same transaction claiming it again (a retried request) is fine; another
    one raises AlreadyExists INSTRUCTION_REPLAYED, which rolls back the caller's
    store transaction. Nonces whose window has passed are forgotten here: an
    instruction that old is refused by its time anyway.
    """
    moment = now_iso()
    conn.execute("DELETE FROM instruction_nonce WHERE expires_at < ?", (moment,))
    row = conn.execute(
        "SELECT transaction_id FROM instruction_nonce WHERE nonce = ?", (nonce,)
    ).fetchone()
    if row is not None and row[0] != transaction_id:
        raise errors.AlreadyExists(
            "INSTRUCTION_REPLAYED",
            "this sealed instruction already paid another request; the customer must seal "
            "a new one (a retry of the same payment must reuse its request_id)",
        )
    conn.execute(
        "INSERT OR IGNORE INTO instruction_nonce (nonce, transaction_id, expires_at)"
        " VALUES (?, ?, ?)",
        (nonce, transaction_id, expires_at),
    )


_SELECT_RECORDS = (
    "SELECT transaction_id, order_id, merchant_name, amount_minor, currency_code,"
    " issuer_bank_code, state, hold_id, hold_status, failure_reason, created_at,"
    " instruction_id, refunded_minor FROM payment_transaction"
)


def load_transaction(conn: sqlite3.Connection, transaction_id: str) -> TransactionRecord | None:
    """The transaction with this id, or None."""
    row = conn.execute(_SELECT_RECORDS + " WHERE transaction_id = ?", (transaction_id,)).fetchone()
    return None if row is None else _record(row)


def all_transactions(conn: sqlite3.Connection) -> list[TransactionRecord]:
    """Every transaction the gateway recorded, in the order they were recorded."""
    return [_record(row) for row in conn.execute(_SELECT_RECORDS + " ORDER BY rowid")]


def authorizing(conn: sqlite3.Connection) -> list[TransactionRecord]:
    """Every transaction still AUTHORIZING (the issuer's answer not recorded), oldest first."""
    # The state is spelled out, not bound, so that SQLite uses the partial index.
    rows = conn.execute(
        _SELECT_RECORDS + " WHERE state = 'authorizing' ORDER BY created_at"
    ).fetchall()
    return [_record(row) for row in rows]


def _record(row: tuple[Any, ...]) -> TransactionRecord:
    return TransactionRecord(
        transaction_id=row[0],
        order_id=row[1],
        merchant_name=row[2],
        amount_minor=row[3],
        currency_code=row[4],
        issuer_bank_code=row[5],
        state=TransactionState(row[6]),
        hold_id=row[7],
        hold_status=authorization_pb2.HoldStatus.ValueType(row[8]),
        failure_reason=row[9],
        created_at=row[10],
        instruction_id=row[11],
        refunded_minor=row[12],
    )


def record_hold(
    conn: sqlite3.Connection,
    transaction_id: str,
    hold_id: str,
    hold_status: authorization_pb2.HoldStatus.ValueType,
) -> None:
    """The issuer placed a hold for the transaction.

    A transaction already HELD keeps what it has: a replayed answer of the issuer
    may be older than a capture or void recorded since. A failure is replaced.
    """
    conn.execute(
        "UPDATE payment_transaction SET state = ?, hold_id = ?, hold_status = ?,"
        " failure_reason = '', updated_at = ? WHERE transaction_id = ? AND state != ?",
        (
            str(TransactionState.HELD),
            hold_id,
            int(hold_status),
            now_iso(),
            transaction_id,
            str(TransactionState.HELD),
        ),
    )


def set_hold_status(
    conn: sqlite3.Connection,
    transaction_id: str,
    hold_status: authorization_pb2.HoldStatus.ValueType,
) -> None:
    """The issuer reported a new state of the transaction's hold."""
    conn.execute(
        "UPDATE payment_transaction SET hold_status = ?, updated_at = ? WHERE transaction_id = ?",
        (int(hold_status), now_iso(), transaction_id),
    )


def mark_failed(conn: sqlite3.Connection, transaction_id: str, reason: str) -> None:
    """The authorization failed for reason (an ErrorInfo reason).

    Never a transaction that has a hold (HELD): money may have moved for it.
    """
    conn.execute(
        "UPDATE payment_transaction SET state = ?, failure_reason = ?, updated_at = ?"
        " WHERE transaction_id = ? AND state != ?",
        (
            str(TransactionState.FAILED),
            reason,
            now_iso(),
            transaction_id,
            str(TransactionState.HELD),
        ),
    )


def record_capture(
    conn: sqlite3.Connection,
    transaction_id: str,
    hold_status: authorization_pb2.HoldStatus.ValueType,
    instruction_id: str,
) -> None:
    """The issuer captured the hold; instruction_id is the resulting credit transfer."""
    conn.execute(
        "UPDATE payment_transaction SET hold_status = ?, instruction_id = ?, updated_at = ?"
        " WHERE transaction_id = ?",
        (int(hold_status), instruction_id, now_iso(), transaction_id),
    )


def begin_call(conn: sqlite3.Connection, transaction_id: str, action: str) -> None:
    """Note, before asking the issuer, that action ("capture", "void") is under way."""
    conn.execute(
        "INSERT OR IGNORE INTO pending_call (transaction_id, action, requested_at)"
        " VALUES (?, ?, ?)",
        (transaction_id, action, now_iso()),
    )


def end_call(conn: sqlite3.Connection, transaction_id: str, action: str) -> None:
    """The issuer's answer to action is recorded (or it will never come)."""
    conn.execute(
        "DELETE FROM pending_call WHERE transaction_id = ? AND action = ?",
        (transaction_id, action),
    )


def pending_calls(
    conn: sqlite3.Connection, requested_before: str = "~", transaction_id: str | None = None
) -> list[tuple[str, str]]:
    """(transaction_id, action) of calls under way since before requested_before
    (of one transaction, if given)."""
    rows = conn.execute(
        "SELECT transaction_id, action FROM pending_call WHERE requested_at < ?"
        " AND (? IS NULL OR transaction_id = ?) ORDER BY requested_at",
        (requested_before, transaction_id, transaction_id),
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def record_refund(conn: sqlite3.Connection, transaction_id: str, refunded_minor: int) -> None:
    """The acquirer reports refunded_minor returned so far (never decreases)."""
    conn.execute(
        "UPDATE payment_transaction SET refunded_minor = max(refunded_minor, ?), updated_at = ?"
        " WHERE transaction_id = ?",
        (refunded_minor, now_iso(), transaction_id),
    )
