"""What the merchant keeps of each coin payment, and the acquirer's word on its deposit.

One row per deposit request (:mod:`merchant.coins` writes it in the
transaction that makes the order PAYMENT_PENDING, before the acquirer is
asked): the DepositCoins request itself (contract, coins and amount, so a
deposit whose answer was lost is sent again byte for byte), a digest of the
coins as the customer sent them, then the acquirer's deposit id and the
deposit's state. An order has at most one payment that is not REJECTED. A
REJECTED one stays, with the issuer's reason and double-spend proof, so a
repeat of the same request answers the same refusal.
:func:`apply_coin_deposit` applies the acquirer's answer to the order, once.
Coins carry no secret of the customer (the coin keys stay in the wallet), but
they are money until deposited: none reaches a log line or an error message.
"""

from __future__ import annotations

import enum
import hashlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from interbank.v1 import cash_pb2

from merchant import orders
from payment.clock import now_iso

__all__ = [
    "ACCEPTED",
    "DEPOSITING",
    "REJECTED",
    "SCHEMA",
    "CoinDepositApplied",
    "CoinPayment",
    "all_coin_payments",
    "apply_coin_deposit",
    "coins_digest",
    "drop_coin_payment",
    "insert_coin_payment",
    "live_coin_payment",
    "load_coin_payment",
    "paid_by_coins",
    "reject_coin_payment",
    "waiting_coin_deposits",
]

SCHEMA = """
-- Coin payments of orders (merchant.coin_deposits), one per deposit request: recorded with
-- the DepositCoins request before the acquirer is asked, so a lost answer can be asked again.
CREATE TABLE IF NOT EXISTS coin_payments (
    deposit_request_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders (order_id),
    coins_digest BLOB NOT NULL,
    deposit_request BLOB NOT NULL,
    issuing_bank_code TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    deposit_id TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('DEPOSITING', 'ACCEPTED', 'REJECTED')),
    reason TEXT NOT NULL DEFAULT '',
    proof BLOB,
    submitted_at TEXT NOT NULL,
    decided_at TEXT
);
-- An order is paid by at most one set of coins that the issuer has not refused.
CREATE UNIQUE INDEX IF NOT EXISTS coin_payments_live ON coin_payments (order_id)
    WHERE state != 'REJECTED';
CREATE INDEX IF NOT EXISTS coin_payments_state ON coin_payments (state, submitted_at);
"""

DEPOSITING: Final = "DEPOSITING"
"""Recorded and sent (or about to be); the issuer's decision is not in yet."""
ACCEPTED: Final = "ACCEPTED"
"""The issuer took the coins; the merchant is credited and the order settled."""
REJECTED: Final = "REJECTED"
"""The issuer refused the coins (reason, and proof for a double spend); the order reopened."""
_REJECTED_WITHOUT_REASON: Final = "COIN_DEPOSIT_REJECTED"
"""The reason kept for a refusal that came without one."""


@dataclass(frozen=True)
class CoinPayment:
    """A coin payment of an order, as the merchant keeps it."""

    deposit_request_id: str
    """The DepositCoins request_id, derived from the customer's request_id."""
    order_id: str
    """The order it pays (the contract's order_id)."""
    coins_digest: bytes
    """SHA-256 over the coins as the customer sent them (:func:`coins_digest`)."""
    deposit_request: cash_pb2.DepositCoinsRequest = field(repr=False)
    """What is sent to the acquirer: request_id, contract, coins and amount."""
    issuing_bank_code: str
    """The bank that issued the coins."""
    amount_minor: int
    """The coins' face values together: the order's total."""
    deposit_id: str
    """The acquirer's id of the deposit, once it answered (else empty)."""
    state: str
    """DEPOSITING, ACCEPTED or REJECTED."""
    reason: str
    """When REJECTED, why (COIN_DOUBLE_SPENT, DENOMINATION_EXPIRED, COIN_INVALID ...)."""
    proof: cash_pb2.CoinSpendProof | None
    """With COIN_DOUBLE_SPENT, the issuer's record of the coin's first spending."""
    submitted_at: str
    """When the payment was recorded (ISO-8601)."""


class CoinDepositApplied(enum.Enum):
    """What applying the acquirer's answer to a deposit did (:func:`apply_coin_deposit`)."""

    SETTLED = "settled"
    """Accepted: the order is SETTLED and its delivery confirmed."""
    PENDING = "pending"
    """The issuer has not decided; the deposit id is recorded, the order stays pending."""
    REJECTED = "rejected"
    """Refused by the issuer: the payment is REJECTED and the order CREATED again."""
    DUPLICATE = "duplicate"
    """The payment was decided before (a concurrent retry, or the resolver): nothing changed."""
    MISMATCH = "mismatch"
    """Not the deposit recorded for this payment (another id, another amount): nothing
    changed."""


def coins_digest(coins: Iterable[cash_pb2.Coin]) -> bytes:
    """SHA-256 over the coins' deterministic encodings, each length-prefixed, in order."""
    digest = hashlib.sha256()
    for coin in coins:
        encoded = coin.SerializeToString(deterministic=True)
        digest.update(len(encoded).to_bytes(4, "big") + encoded)
    return digest.digest()


_SELECT = (
    "SELECT deposit_request_id, order_id, coins_digest, deposit_request, issuing_bank_code,"
    " amount_minor, deposit_id, state, reason, proof, submitted_at FROM coin_payments"
)
_Row = tuple[str, str, bytes, bytes, str, int, str, str, str, bytes | None, str]


def _payment(row: _Row) -> CoinPayment:
    return CoinPayment(
        deposit_request_id=row[0],
        order_id=row[1],
        coins_digest=bytes(row[2]),
        deposit_request=cash_pb2.DepositCoinsRequest.FromString(row[3]),
        issuing_bank_code=row[4],
        amount_minor=int(row[5]),
        deposit_id=row[6],
        state=row[7],
        reason=row[8],
        proof=None if row[9] is None else cash_pb2.CoinSpendProof.FromString(row[9]),
        submitted_at=row[10],
    )


def load_coin_payment(conn: sqlite3.Connection, deposit_request_id: str) -> CoinPayment | None:
    """The coin payment recorded under a deposit request_id, or None."""
    row = conn.execute(_SELECT + " WHERE deposit_request_id = ?", (deposit_request_id,)).fetchone()
    return None if row is None else _payment(row)


def live_coin_payment(conn: sqlite3.Connection, order_id: str) -> CoinPayment | None:
    """The order's coin payment that the issuer has not refused, or None."""
    row = conn.execute(
        _SELECT + " WHERE order_id = ? AND state != ?", (order_id, REJECTED)
    ).fetchone()
    return None if row is None else _payment(row)


def paid_by_coins(conn: sqlite3.Connection, order_id: str) -> bool:
    """Whether the order has a coin payment being deposited or accepted."""
    return live_coin_payment(conn, order_id) is not None


def all_coin_payments(conn: sqlite3.Connection) -> list[CoinPayment]:
    """Every coin payment the merchant recorded, refused ones too, oldest first."""
    return [_payment(row) for row in conn.execute(_SELECT + " ORDER BY submitted_at")]


def waiting_coin_deposits(conn: sqlite3.Connection, submitted_before: str) -> list[CoinPayment]:
    """The payments still DEPOSITING (no decision yet) recorded before an ISO-8601 time."""
    rows = conn.execute(
        _SELECT + " WHERE state = ? AND submitted_at <= ? ORDER BY submitted_at",
        (DEPOSITING, submitted_before),
    )
    return [_payment(row) for row in rows]


def insert_coin_payment(conn: sqlite3.Connection, payment: CoinPayment) -> None:
    """Record a coin payment, DEPOSITING (at most one live payment per order)."""
    conn.execute(
        "INSERT INTO coin_payments (deposit_request_id, order_id, coins_digest,"
        " deposit_request, issuing_bank_code, amount_minor, state, submitted_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            payment.deposit_request_id,
            payment.order_id,
            payment.coins_digest,
            payment.deposit_request.SerializeToString(deterministic=True),
            payment.issuing_bank_code,
            payment.amount_minor,
            DEPOSITING,
            payment.submitted_at,
        ),
    )


def drop_coin_payment(conn: sqlite3.Connection, deposit_request_id: str) -> None:
    """Forget a payment whose deposit the acquirer refused (it recorded nothing)."""
    conn.execute(
        "DELETE FROM coin_payments WHERE deposit_request_id = ? AND state = ?",
        (deposit_request_id, DEPOSITING),
    )


def apply_coin_deposit(
    conn: sqlite3.Connection,
    trust_domain: str,
    deposit_request_id: str,
    reply: cash_pb2.DepositCoinsResponse,
) -> CoinDepositApplied:
    """Apply the acquirer's answer to a DepositCoins request to the payment and its order.

    PENDING records the deposit id; ACCEPTED (for the payment's amount) settles the
    order (SETTLED, then DELIVERY_CONFIRMED); REJECTED keeps the reason and the proof
    and reopens the order (CREATED, failure_reason the reason). Idempotent: a payment
    decided before changes nothing.
    """
    payment = load_coin_payment(conn, deposit_request_id)
    if payment is None or payment.state != DEPOSITING:
        return CoinDepositApplied.DUPLICATE
    if not reply.deposit_id or (payment.deposit_id and reply.deposit_id != payment.deposit_id):
        return CoinDepositApplied.MISMATCH
    state = reply.state
    if state == cash_pb2.COIN_DEPOSIT_STATE_PENDING:
        _record(conn, deposit_request_id, reply.deposit_id, DEPOSITING, "", None)
        return CoinDepositApplied.PENDING
    record = orders.load_order(conn, payment.order_id)
    if record is None:
        return CoinDepositApplied.MISMATCH
    if state == cash_pb2.COIN_DEPOSIT_STATE_ACCEPTED:
        if reply.amount.amount_minor != payment.amount_minor:
            return CoinDepositApplied.MISMATCH
        _record(conn, deposit_request_id, reply.deposit_id, ACCEPTED, "", None)
        if record.order.status == orders.PAYMENT_PENDING:
            orders.settle(conn, trust_domain, record)
        return CoinDepositApplied.SETTLED
    if state != cash_pb2.COIN_DEPOSIT_STATE_REJECTED:
        return CoinDepositApplied.MISMATCH
    reason = reply.reason or _REJECTED_WITHOUT_REASON
    proof = reply.double_spend_proof if reply.HasField("double_spend_proof") else None
    _record(conn, deposit_request_id, reply.deposit_id, REJECTED, reason, proof)
    _reopen(conn, trust_domain, payment.order_id, reason)
    return CoinDepositApplied.REJECTED


def reject_coin_payment(
    conn: sqlite3.Connection, trust_domain: str, deposit_request_id: str, reason: str
) -> bool:
    """The acquirer refused the deposit outright (nothing recorded there): drop the
    payment and reopen its order with the reason; False if it was decided meanwhile."""
    payment = load_coin_payment(conn, deposit_request_id)
    if payment is None or payment.state != DEPOSITING:
        return False
    drop_coin_payment(conn, deposit_request_id)
    _reopen(conn, trust_domain, payment.order_id, reason)
    return True


def _reopen(conn: sqlite3.Connection, trust_domain: str, order_id: str, reason: str) -> None:
    record = orders.load_order(conn, order_id)
    if record is not None and record.order.status == orders.PAYMENT_PENDING:
        orders.transition(conn, trust_domain, record, orders.CREATED, failure_reason=reason)


def _record(
    conn: sqlite3.Connection,
    deposit_request_id: str,
    deposit_id: str,
    state: str,
    reason: str,
    proof: cash_pb2.CoinSpendProof | None,
) -> None:
    decided_at = None if state == DEPOSITING else now_iso()
    conn.execute(
        "UPDATE coin_payments SET deposit_id = ?, state = ?, reason = ?, proof = ?,"
        " decided_at = ? WHERE deposit_request_id = ?",
        (
            deposit_id,
            state,
            reason,
            None if proof is None else proof.SerializeToString(),
            decided_at,
            deposit_request_id,
        ),
    )
