"""A double-entry ledger on a Store connection, after TigerBeetle's model.

Every transfer debits one account and credits another by the same amount, so
the sum of all debits always equals the sum of all credits. Account balances
are kept on the account row in the same transaction as the transfer. A
*pending* transfer (a hold) reserves the amount: it counts in
``debits_pending``/``credits_pending`` until it is posted (it becomes a booked
entry), voided or expired (it disappears), exactly once.

An account with ``no_overdraft`` is credit-normal and may never have its
available balance (credits posted - debits posted - debits pending) below 0.

Every running sum stays an int64, as SQLite stores it: a transfer is refused
with :class:`payment.money.AmountOverflow`, before anything is written, if it
would take an account's ``debits_posted + debits_pending`` or
``credits_posted + credits_pending`` past int64. Posting, voiding or expiring
a pending transfer only moves an amount between those two terms, so they can
never overflow, and every balance derived from them fits as well.
All functions take the caller's open transaction; none commits.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from dataclasses import dataclass

from payment.clock import to_iso
from payment.money import checked_sum

__all__ = [
    "Account",
    "LedgerError",
    "LedgerTotals",
    "LimitExceeded",
    "StatementEntry",
    "StatementLines",
    "account",
    "create_account",
    "ledger_totals",
    "post_pending",
    "release_pending",
    "statement_lines",
    "transfer",
]


class LedgerError(Exception):
    """A ledger operation that the ledger's rules forbid (a programming error)."""


class LimitExceeded(Exception):
    """The debit would take a no-overdraft account below 0; nothing was written."""

    def __init__(self, account_id: str, available: int, amount: int) -> None:
        super().__init__(f"account {account_id} has {available} available, {amount} needed")
        self.account_id = account_id
        self.available = available
        self.amount = amount


@dataclass(frozen=True)
class Account:
    """One ledger account and its running sums."""

    account_id: str
    """Public id of the account."""
    kind: str
    """holder, reserve, suspense or central."""
    holder_uri: str | None
    """SPIFFE id of the holder (holder accounts only)."""
    currency: str
    """ISO 4217 code."""
    no_overdraft: bool
    """Credit-normal account whose available balance may not go below 0."""
    debits_posted: int
    """Sum of posted debits."""
    credits_posted: int
    """Sum of posted credits."""
    debits_pending: int
    """Sum of pending debits (holds on the account)."""
    credits_pending: int
    """Sum of pending credits."""

    @property
    def booked(self) -> int:
        """Booked (posted) balance, credit-normal: credits minus debits."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """Booked balance less pending debits: what may still be spent."""
        return self.booked - self.debits_pending


@dataclass(frozen=True)
class LedgerTotals:
    """Sums over the whole ledger, for audits."""

    debits_posted: int
    """Sum of every account's posted debits."""
    credits_posted: int
    """Sum of every account's posted credits; equals debits_posted."""
    debits_pending: int
    """Sum of every account's pending debits."""
    credits_pending: int
    """Sum of every account's pending credits; equals debits_pending."""
    booked_by_kind: dict[str, int]
    """Credit-normal booked balance (credits - debits) summed per account kind."""


@dataclass(frozen=True)
class StatementEntry:
    """One posted entry on an account, seen from that account."""

    transfer_id: str
    """The ledger transfer."""
    booked_at: str
    """When it was posted (ISO-8601)."""
    credit: bool
    """True if money came into the account."""
    amount: int
    """Always positive."""
    order_id: str
    """The order it belongs to, or empty."""
    description: str
    """Why the money moved."""
    balance_after: int
    """Booked balance after the entry."""


@dataclass(frozen=True)
class StatementLines:
    """An account's booked balance at a period's start and end, and the entries between."""

    opening: int
    """Booked balance at the period's start."""
    closing: int
    """Booked balance at the period's end."""
    entries: tuple[StatementEntry, ...]
    """Entries booked in [start, end), oldest first."""


_ACCOUNT_COLUMNS = (
    "account_id, kind, holder_uri, currency, no_overdraft, debits_posted, credits_posted,"
    " debits_pending, credits_pending"
)


def create_account(
    conn: sqlite3.Connection,
    account_id: str,
    kind: str,
    currency: str,
    *,
    now: dt.datetime,
    holder_uri: str | None = None,
    no_overdraft: bool = False,
) -> bool:
    """Create an account unless it exists; True if it was created."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO accounts (account_id, kind, holder_uri, currency, no_overdraft,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (account_id, kind, holder_uri, currency, int(no_overdraft), to_iso(now)),
    )
    return cursor.rowcount == 1


def account(conn: sqlite3.Connection, account_id: str) -> Account | None:
    """The account, or None if there is none with this id."""
    row = conn.execute(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE account_id = ?",  # noqa: S608 - constant
        (account_id,),
    ).fetchone()
    if row is None:
        return None
    return Account(row[0], row[1], row[2], row[3], bool(row[4]), *row[5:9])


def _require(conn: sqlite3.Connection, account_id: str, currency: str) -> Account:
    found = account(conn, account_id)
    if found is None:
        raise LedgerError(f"no account {account_id}")
    if found.currency != currency:
        raise LedgerError(f"account {account_id} is in {found.currency}, not {currency}")
    return found


def transfer(
    conn: sqlite3.Connection,
    debit_account: str,
    credit_account: str,
    amount: int,
    currency: str,
    *,
    now: dt.datetime,
    order_id: str = "",
    description: str = "",
    pending: bool = False,
    expires_at: dt.datetime | None = None,
) -> str:
    """Record a transfer, posted at once or pending; returns its id.

    Raises LimitExceeded (writing nothing) if the debit account is no-overdraft
    and its available balance is below amount, and AmountOverflow (writing
    nothing) if either account's running sums could no longer be stored.
    """
    if amount <= 0:
        raise LedgerError(f"transfer amount must be above 0, got {amount}")
    if debit_account == credit_account:
        raise LedgerError("a transfer needs two different accounts")
    debit = _require(conn, debit_account, currency)
    credit = _require(conn, credit_account, currency)
    if debit.no_overdraft and debit.available < amount:
        raise LimitExceeded(debit_account, debit.available, amount)
    checked_sum(debit.debits_posted, debit.debits_pending, amount, total=f"{debit_account} debits")
    checked_sum(
        credit.credits_posted, credit.credits_pending, amount, total=f"{credit_account} credits"
    )
    transfer_id = str(uuid.uuid4())
    moment = to_iso(now)
    conn.execute(
        "INSERT INTO transfers (transfer_id, debit_account, credit_account, amount, currency,"
        " status, order_id, description, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            transfer_id,
            debit_account,
            credit_account,
            amount,
            currency,
            "pending" if pending else "posted",
            order_id,
            description,
            moment,
            to_iso(expires_at) if expires_at else None,
        ),
    )
    if pending:
        _add(conn, debit_account, "debits_pending", amount)
        _add(conn, credit_account, "credits_pending", amount)
    else:
        _book(conn, transfer_id, moment)
        _add(conn, debit_account, "debits_posted", amount)
        _add(conn, credit_account, "credits_posted", amount)
    return transfer_id


def post_pending(conn: sqlite3.Connection, transfer_id: str, *, now: dt.datetime) -> None:
    """Post a pending transfer in full: its amount becomes a booked entry."""
    debit, credit, amount = _pending(conn, transfer_id)
    conn.execute("UPDATE transfers SET status = 'posted' WHERE transfer_id = ?", (transfer_id,))
    _book(conn, transfer_id, to_iso(now))
    _add(conn, debit, "debits_pending", -amount)
    _add(conn, credit, "credits_pending", -amount)
    _add(conn, debit, "debits_posted", amount)
    _add(conn, credit, "credits_posted", amount)


def release_pending(conn: sqlite3.Connection, transfer_id: str, *, status: str = "voided") -> None:
    """Void or expire a pending transfer: the reserved amount is free again."""
    if status not in ("voided", "expired"):
        raise LedgerError(f"a pending transfer is released as voided or expired, not {status}")
    debit, credit, amount = _pending(conn, transfer_id)
    conn.execute("UPDATE transfers SET status = ? WHERE transfer_id = ?", (status, transfer_id))
    _add(conn, debit, "debits_pending", -amount)
    _add(conn, credit, "credits_pending", -amount)


def ledger_totals(conn: sqlite3.Connection) -> LedgerTotals:
    """Sums over every account, for audits (debits must equal credits).

    Added up here rather than by SQLite's SUM, which fails once a total passes
    int64: each account's sums fit, but all accounts' together need not.
    """
    sums = [0, 0, 0, 0]
    by_kind: dict[str, int] = {}
    for kind, *row in conn.execute(
        "SELECT kind, debits_posted, credits_posted, debits_pending, credits_pending FROM accounts"
    ):
        sums = [total + value for total, value in zip(sums, row, strict=True)]
        by_kind[kind] = by_kind.get(kind, 0) + row[1] - row[0]
    return LedgerTotals(sums[0], sums[1], sums[2], sums[3], by_kind)


def statement_lines(
    conn: sqlite3.Connection, account_id: str, start: str | None, end: str
) -> StatementLines:
    """Posted entries of an account booked in [start, end) with running balances.

    start and end are ISO-8601 texts from payment.clock.to_iso; start None
    means since the account was opened.
    """
    since = start or ""
    (opening,) = conn.execute(
        "SELECT COALESCE(SUM(CASE WHEN credit_account = ? THEN amount ELSE -amount END), 0)"
        " FROM transfers WHERE status = 'posted' AND (credit_account = ? OR debit_account = ?)"
        " AND booked_at < ?",
        (account_id, account_id, account_id, since),
    ).fetchone()
    rows = conn.execute(
        "SELECT transfer_id, booked_at, credit_account = ?, amount, order_id, description"
        " FROM transfers WHERE status = 'posted' AND (credit_account = ? OR debit_account = ?)"
        " AND booked_at >= ? AND booked_at < ? ORDER BY booked_seq",
        (account_id, account_id, account_id, since, end),
    ).fetchall()
    balance = opening
    entries = []
    for transfer_id, booked_at, credit, amount, order_id, description in rows:
        balance += amount if credit else -amount
        entries.append(
            StatementEntry(
                transfer_id, booked_at, bool(credit), amount, order_id, description, balance
            )
        )
    return StatementLines(opening, balance, tuple(entries))


def _pending(conn: sqlite3.Connection, transfer_id: str) -> tuple[str, str, int]:
    row = conn.execute(
        "SELECT debit_account, credit_account, amount, status FROM transfers WHERE transfer_id = ?",
        (transfer_id,),
    ).fetchone()
    if row is None:
        raise LedgerError(f"no transfer {transfer_id}")
    if row[3] != "pending":
        # Exactly once: a transfer leaves the pending state a single time.
        raise LedgerError(f"transfer {transfer_id} is {row[3]}, not pending")
    return row[0], row[1], row[2]


def _book(conn: sqlite3.Connection, transfer_id: str, moment: str) -> None:
    # booked_seq orders entries by posting, which differs from creation for holds.
    conn.execute(
        "UPDATE transfers SET booked_at = ?,"
        " booked_seq = (SELECT COALESCE(MAX(booked_seq), 0) + 1 FROM transfers)"
        " WHERE transfer_id = ?",
        (moment, transfer_id),
    )


def _add(conn: sqlite3.Connection, account_id: str, column: str, amount: int) -> None:
    conn.execute(
        f"UPDATE accounts SET {column} = {column} + ? WHERE account_id = ?",  # noqa: S608
        (amount, account_id),
    )
