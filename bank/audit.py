"""Ledger totals for audits: what a bank and the settlement bank hold, in sums.

The invariants an audit checks with them:

- per ledger, ``debits_posted == credits_posted`` (double entry);
- at a bank, ``holder_balance + suspense_balance + outstanding_balance ==
  reserve_balance`` (every holder's money is backed by the bank's reserve
  mirror, money in flight sits in suspense, and the face value of its coins in
  circulation in the e-cash outstanding liability);
- at the settlement bank, the sum of the reserves equals ``central_issued``,
  the money issued at opening (constant across the network), and each bank's
  reserve there equals that bank's ``reserve_balance`` once nothing is in flight.

The ``read_*`` functions open a store file read-only, so an audit command can
run beside live nodes.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from interbank.v1 import audit_pb2

from bank import ledger, windows
from bank.opening import CENTRAL, OUTSTANDING, RESERVE, SUSPENSE
from payment.clock import to_iso
from payment.storage import read_snapshot

__all__ = [
    "BankTotals",
    "SettlementTotals",
    "bank_totals",
    "member_books",
    "read_bank_totals",
    "read_settlement_totals",
    "settlement_books",
    "settlement_totals",
]


@dataclass(frozen=True)
class BankTotals:
    """A commercial bank's ledger in sums (minor units)."""

    debits_posted: int
    """Sum of posted debits over all accounts."""
    credits_posted: int
    """Sum of posted credits over all accounts."""
    debits_pending: int
    """Sum of pending debits (holds)."""
    credits_pending: int
    """Sum of pending credits."""
    holder_balance: int
    """Sum of every holder account's booked balance (credits - debits)."""
    reserve_balance: int
    """The reserve mirror's balance, debit-normal (debits - credits)."""
    suspense_balance: int
    """Money debited from customers and not settled yet (credits - debits)."""
    outstanding_balance: int = 0
    """The e-cash outstanding liability: its coins in circulation (credits - debits)."""

    @property
    def balanced(self) -> bool:
        """True if debits equal credits and holders, suspense and outstanding coins
        equal the reserve."""
        return (
            self.debits_posted == self.credits_posted
            and self.debits_pending == self.credits_pending
            and self.holder_balance + self.suspense_balance + self.outstanding_balance
            == self.reserve_balance
        )


@dataclass(frozen=True)
class SettlementTotals:
    """The settlement bank's ledger in sums (minor units)."""

    debits_posted: int
    """Sum of posted debits over all accounts."""
    credits_posted: int
    """Sum of posted credits over all accounts."""
    debits_pending: int
    """Sum of pending debits (transfers awaiting the creditor bank)."""
    credits_pending: int
    """Sum of pending credits."""
    reserves: dict[str, int]
    """Booked reserve balance per member bank code (what the settlement bank owes it)."""
    central_issued: int
    """Money issued at opening (the central account's debit balance)."""

    @property
    def balanced(self) -> bool:
        """True if debits equal credits and the reserves add up to what was issued."""
        return (
            self.debits_posted == self.credits_posted
            and self.debits_pending == self.credits_pending
            and sum(self.reserves.values()) == self.central_issued
        )


def bank_totals(conn: sqlite3.Connection) -> BankTotals:
    """Totals of a commercial bank's ledger."""
    totals = ledger.ledger_totals(conn)
    reserve = ledger.account(conn, RESERVE)
    suspense = ledger.account(conn, SUSPENSE)
    outstanding = ledger.account(conn, OUTSTANDING)
    return BankTotals(
        debits_posted=totals.debits_posted,
        credits_posted=totals.credits_posted,
        debits_pending=totals.debits_pending,
        credits_pending=totals.credits_pending,
        holder_balance=totals.booked_by_kind.get("holder", 0),
        reserve_balance=-reserve.booked if reserve else 0,
        suspense_balance=suspense.booked if suspense else 0,
        outstanding_balance=outstanding.booked if outstanding else 0,
    )


def settlement_totals(conn: sqlite3.Connection) -> SettlementTotals:
    """Totals of the settlement bank's ledger."""
    totals = ledger.ledger_totals(conn)
    reserves = {
        account_id.removeprefix("@reserve:"): booked
        for account_id, booked in conn.execute(
            "SELECT account_id, credits_posted - debits_posted FROM accounts WHERE kind = 'reserve'"
            " ORDER BY account_id"
        )
    }
    central = ledger.account(conn, CENTRAL)
    return SettlementTotals(
        debits_posted=totals.debits_posted,
        credits_posted=totals.credits_posted,
        debits_pending=totals.debits_pending,
        credits_pending=totals.credits_pending,
        reserves=reserves,
        central_issued=-central.booked if central else 0,
    )


def _sums(totals: BankTotals | SettlementTotals) -> audit_pb2.LedgerSums:
    return audit_pb2.LedgerSums(
        debits_posted=totals.debits_posted,
        credits_posted=totals.credits_posted,
        debits_pending=totals.debits_pending,
        credits_pending=totals.credits_pending,
    )


def member_books(conn: sqlite3.Connection, now: dt.datetime) -> audit_pb2.MemberBooks:
    """A commercial bank's books for the network audit, from one snapshot."""
    totals = bank_totals(conn)
    (overdue,) = conn.execute(
        "SELECT COUNT(*) FROM holds WHERE status IN ('CHALLENGE_PENDING', 'AUTHORIZED')"
        " AND expires_at < ?",
        (to_iso(now),),
    ).fetchone()
    (unsettled,) = conn.execute(
        "SELECT COUNT(*) FROM outgoing_transfers WHERE settlement_state = 'PENDING'"
    ).fetchone()
    (in_clearing, provisional) = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(d.amount), 0) FROM cheque_deposits d"
        " JOIN transfers t ON t.transfer_id = d.ledger_transfer_id"
        " WHERE d.state = 'IN_CLEARING' AND t.status = 'pending'"
    ).fetchone()
    (paid_out,) = conn.execute(
        "SELECT COALESCE(SUM(p.amount), 0) FROM cheques_paid p"
        " WHERE p.presentment_id NOT IN (SELECT deposit_id FROM cheque_deposits)"
    ).fetchone()
    (collected, returned) = conn.execute(
        "SELECT COALESCE(SUM(CASE WHEN state = 'PAID' THEN amount END), 0),"
        " COUNT(CASE WHEN state = 'RETURNED' THEN 1 END) FROM cheque_deposits d"
        " WHERE d.deposit_id NOT IN (SELECT presentment_id FROM cheques_paid)"
    ).fetchone()
    (issued,) = conn.execute("SELECT COALESCE(SUM(amount), 0) FROM withdrawals").fetchone()
    (deposited,) = conn.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM coin_deposits_received WHERE status = 'ACCEPTED'"
    ).fetchone()
    return audit_pb2.MemberBooks(
        sums=_sums(totals),
        cash_outstanding_minor=totals.outstanding_balance,
        cash_issued_minor=issued,
        cash_deposited_minor=deposited,
        holder_balance_minor=totals.holder_balance,
        reserve_mirror_minor=totals.reserve_balance,
        suspense_minor=totals.suspense_balance,
        overdue_holds=overdue,
        unsettled_outgoing=unsettled,
        cheques_in_clearing=in_clearing,
        provisional_credit_minor=provisional,
        cheques_paid_out_minor=paid_out,
        cheques_collected_minor=collected,
        cheques_returned=returned,
    )


def settlement_books(conn: sqlite3.Connection) -> audit_pb2.SettlementBooks:
    """The settlement bank's books for the network audit, from one snapshot."""
    totals = settlement_totals(conn)
    unsettled = windows.unsettled_positions(conn)
    (pending,) = conn.execute(
        "SELECT COUNT(*) FROM settlement_transfers WHERE status = 'PENDING'"
    ).fetchone()
    return audit_pb2.SettlementBooks(
        sums=_sums(totals),
        reserves=[
            audit_pb2.ReservePosition(
                bank_code=code, reserve_minor=reserve, unsettled_net_minor=unsettled.get(code, 0)
            )
            for code, reserve in sorted(totals.reserves.items())
        ],
        central_issued_minor=totals.central_issued,
        pending_transfers=pending,
        cheques=[
            audit_pb2.ChequeClearing(
                bank_code=code, paid_out_minor=paid_out, collected_minor=collected
            )
            for code, paid_out, collected in _cheque_clearing(conn)
        ],
    )


def _cheque_clearing(conn: sqlite3.Connection) -> list[tuple[str, int, int]]:
    """Per member bank: accepted cheque presentments drawn on it and presented by it."""
    rows = conn.execute(
        "SELECT debtor_agent, creditor_agent, amount FROM settlement_transfers"
        " WHERE kind = 'cheque' AND status = 'ACCEPTED'"
    ).fetchall()
    paid_out: dict[str, int] = {}
    collected: dict[str, int] = {}
    for drawee, presenter, amount in rows:
        paid_out[drawee] = paid_out.get(drawee, 0) + amount
        collected[presenter] = collected.get(presenter, 0) + amount
    codes = sorted(set(paid_out) | set(collected))
    return [(code, paid_out.get(code, 0), collected.get(code, 0)) for code in codes]


def read_bank_totals(path: Path) -> BankTotals:
    """Totals of a bank's store file (its node's ``store_path``), read-only."""
    with read_snapshot(path) as conn:
        return bank_totals(conn)


def read_settlement_totals(path: Path) -> SettlementTotals:
    """Totals of the settlement bank's store file (its node's ``store_path``), read-only."""
    with read_snapshot(path) as conn:
        return settlement_totals(conn)
