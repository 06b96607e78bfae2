"""Holds at the issuer: the record of a pending transfer placed for one payment.

A hold is placed CHALLENGE_PENDING or AUTHORIZED and leaves those states
exactly once: CAPTURED (posted), VOIDED (released by a void or a declined
challenge) or EXPIRED (released by the sweeper). Each change happens in the
caller's transaction together with the ledger change and the HoldNotice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from dataclasses import dataclass

from interbank.v1 import authorization_pb2

from bank import ledger
from bank.notices import emit_hold_notice, money
from payment import errors
from payment.clock import to_iso

__all__ = [
    "AUTHORIZED",
    "CAPTURED",
    "CHALLENGE_PENDING",
    "EXPIRED",
    "OPEN_STATUSES",
    "VOIDED",
    "Hold",
    "find_hold",
    "holder_uri",
    "not_capturable",
    "release_hold",
    "require_hold",
    "spend_instruction",
    "sweep_expired_holds",
]

CHALLENGE_PENDING = "CHALLENGE_PENDING"
AUTHORIZED = "AUTHORIZED"
CAPTURED = "CAPTURED"
VOIDED = "VOIDED"
EXPIRED = "EXPIRED"
OPEN_STATUSES = (CHALLENGE_PENDING, AUTHORIZED)

_COLUMNS = (
    "hold_id, transaction_id, order_id, merchant_name, customer_name, account_id,"
    " creditor_bank_code, creditor_account_id, amount, currency, status, ledger_transfer_id,"
    " challenge_id, instruction_id, created_at, expires_at, refunded_minor"
)


@dataclass(frozen=True)
class Hold:
    """One hold as stored."""

    hold_id: str
    """The issuer's id."""
    transaction_id: str
    """The gateway's transaction id."""
    order_id: str
    """The merchant's order."""
    merchant_name: str
    """The merchant paid."""
    customer_name: str
    """The paying customer."""
    account_id: str
    """The customer's account."""
    creditor_bank_code: str
    """The acquirer's code."""
    creditor_account_id: str
    """The merchant's account at the acquirer."""
    amount: int
    """Held amount in minor units."""
    currency: str
    """ISO 4217 code."""
    status: str
    """CHALLENGE_PENDING, AUTHORIZED, CAPTURED, VOIDED or EXPIRED."""
    ledger_transfer_id: str
    """The pending ledger transfer holder -> suspense."""
    challenge_id: str | None
    """The step-up challenge, if one was required."""
    instruction_id: str | None
    """The outgoing credit transfer, once captured."""
    created_at: str
    """When it was placed (ISO-8601)."""
    expires_at: str
    """When it expires unless captured (ISO-8601)."""
    refunded_minor: int = 0
    """Money returned to the customer by the acquirer's payment returns."""

    @property
    def status_proto(self) -> authorization_pb2.HoldStatus.ValueType:
        """The status as the wire enum."""
        return authorization_pb2.HoldStatus.Value(f"HOLD_STATUS_{self.status}")


def find_hold(
    conn: sqlite3.Connection, *, hold_id: str = "", transaction_id: str = ""
) -> Hold | None:
    """The hold with this id (or, if hold_id is empty, this transaction id)."""
    if hold_id:
        where, key = "hold_id", hold_id
    elif transaction_id:
        where, key = "transaction_id", transaction_id
    else:
        return None
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM holds WHERE {where} = ?",  # noqa: S608 - constant parts
        (key,),
    ).fetchone()
    return Hold(*row) if row is not None else None


def spend_instruction(
    conn: sqlite3.Connection,
    instruction: bytes,
    *,
    hold_id: str,
    transaction_id: str,
    now: dt.datetime,
) -> None:
    """Record that a signed instruction places hold_id; AlreadyExists if it placed one before.

    The key is the SHA-256 of the instruction's bytes, which the customer's dual
    signature covers (with their nonce): another request_id or transaction_id
    does not make it another payment. Called in the transaction that places the
    hold, so a refused authorization rolls it back and spends nothing; once a hold
    is placed the instruction stays spent, whatever becomes of the hold.
    """
    digest = hashlib.sha256(instruction).digest()
    row = conn.execute(
        "SELECT 1 FROM instruction_uses WHERE instruction_digest = ?", (digest,)
    ).fetchone()
    if row is not None:
        raise errors.AlreadyExists(
            "INSTRUCTION_REPLAYED",
            "this signed instruction already placed a hold for another transaction; the"
            " customer must sign a new one (a retry of the same request must reuse its"
            " request_id)",
        )
    conn.execute(
        "INSERT INTO instruction_uses (instruction_digest, hold_id, transaction_id, recorded_at)"
        " VALUES (?, ?, ?, ?)",
        (digest, hold_id, transaction_id, to_iso(now)),
    )


def holder_uri(conn: sqlite3.Connection, account_id: str) -> str:
    """The SPIFFE id of an account's holder: where its notices go."""
    found = ledger.account(conn, account_id)
    if found is None or found.holder_uri is None:
        raise ledger.LedgerError(f"account {account_id} has no holder")
    return found.holder_uri


def release_hold(
    conn: sqlite3.Connection,
    hold: Hold,
    *,
    status: str,
    event: str,
    challenge_status: str,
) -> None:
    """Release an open hold's funds: VOIDED or EXPIRED, notice sent, challenge ended.

    challenge_status is what a still-pending challenge of the hold becomes;
    its secret is wiped either way, since no code may be accepted any more.
    """
    if hold.status not in OPEN_STATUSES:
        raise ledger.LedgerError(f"hold {hold.hold_id} is {hold.status}, not open")
    ledger.release_pending(
        conn, hold.ledger_transfer_id, status="expired" if status == EXPIRED else "voided"
    )
    conn.execute("UPDATE holds SET status = ? WHERE hold_id = ?", (status, hold.hold_id))
    if hold.challenge_id is not None:
        conn.execute(
            "UPDATE challenges SET secret = NULL,"
            " status = CASE WHEN status = 'pending' THEN ? ELSE status END"
            " WHERE challenge_id = ?",
            (challenge_status, hold.challenge_id),
        )
    emit_hold_notice(
        conn,
        holder_uri(conn, hold.account_id),
        hold_id=hold.hold_id,
        order_id=hold.order_id,
        event=event,
        amount=money(hold.amount, hold.currency),
    )


def sweep_expired_holds(conn: sqlite3.Connection, now: dt.datetime) -> int:
    """Expire every open hold past its expires_at; returns how many were released.

    Each becomes EXPIRED, its pending transfer expires (the funds are free),
    a still-pending challenge is ended with its secret wiped, and the holder
    gets an "expired" notice. Released holds are no longer open, so each is
    released exactly once however often the sweep runs.
    """
    expired = conn.execute(
        f"SELECT {_COLUMNS} FROM holds"  # noqa: S608 - constant parts
        " WHERE status IN (?, ?) AND expires_at < ?",
        (*OPEN_STATUSES, to_iso(now)),
    ).fetchall()
    for row in expired:
        release_hold(conn, Hold(*row), status=EXPIRED, event="expired", challenge_status="expired")
    return len(expired)


def not_capturable(conn: sqlite3.Connection, hold: Hold) -> errors.PaynetError:
    """Why a hold that is no longer open cannot be captured.

    A hold declined by its challenge says why, so the merchant can tell the customer.
    """
    row = conn.execute(
        "SELECT status FROM challenges WHERE challenge_id = ?", (hold.challenge_id,)
    ).fetchone()
    if row is not None and row[0] == "locked":
        return errors.FailedPrecondition(
            "CHALLENGE_LOCKED", "the payment was declined: too many wrong codes"
        )
    if row is not None and row[0] == "expired":
        return errors.FailedPrecondition(
            "CHALLENGE_EXPIRED", "the payment was declined: the code was not answered in time"
        )
    return errors.FailedPrecondition("HOLD_NOT_CAPTURABLE", f"the hold is {hold.status.lower()}")


def require_hold(conn: sqlite3.Connection, hold_id: str) -> Hold:
    """The hold with this id; NotFound HOLD_NOT_FOUND if there is none."""
    hold = find_hold(conn, hold_id=hold_id)
    if hold is None:
        raise errors.NotFound("HOLD_NOT_FOUND", "no such hold at this bank")
    return hold
