"""Deferred net settlement: windows, running positions, net debit caps, netting.

In net mode every transfer (and return) the settlement bank receives joins the
open window. Reserves do not move per transfer: the window keeps each bank's
running position instead, so the cap can be checked at once:

- ``net_minor``: accepted transfers received minus sent;
- ``pending_out_minor``: transfers sent that the creditor bank has not answered.

A transfer is refused with NET_DEBIT_CAP_EXCEEDED when ``net - pending_out -
amount`` would go below ``-limit``, where the limit is the bank's configured cap
bounded by its reserve (so the window can always settle).

Closing a window (``open -> closed -> settled``) nets every participant's
position multilaterally from the window's accepted transfers, then moves only
the net amounts between the reserve accounts through the clearing account, in
one transaction. Transfers still waiting for an answer move to the next window.
All functions take the caller's open transaction; none commits.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from dataclasses import dataclass

from bank import ledger
from bank.opening import CLEARING, settlement_reserve
from payment import errors
from payment.clock import to_iso
from payment.logs import get_logger

__all__ = [
    "CLOSED",
    "OPEN",
    "SETTLED",
    "Window",
    "cap_refusal",
    "close_open_window",
    "net_positions",
    "open_window",
    "record_answer",
    "record_pending",
    "require_net_mode",
    "settle_window",
    "unsettled_positions",
    "window",
]

OPEN, CLOSED, SETTLED = "OPEN", "CLOSED", "SETTLED"
_log = get_logger("paynet.settlement.windows")


@dataclass(frozen=True)
class Window:
    """One settlement window as stored."""

    window_id: str
    """Its id (a UUID)."""
    status: str
    """OPEN, CLOSED or SETTLED."""
    opened_at: str
    """When it opened (ISO-8601)."""
    closed_at: str | None
    """When it closed."""
    settled_at: str | None
    """When its net positions moved."""
    transfer_count: int
    """Accepted transfers in it (while open: recorded and not rejected)."""
    positions: dict[str, int]
    """Net position per bank code: received minus sent."""


def open_window(conn: sqlite3.Connection, now: dt.datetime) -> str:
    """The open window's id, opening one if there is none."""
    row = conn.execute(
        "SELECT window_id FROM settlement_windows WHERE status = ?", (OPEN,)
    ).fetchone()
    if row is not None:
        return str(row[0])
    window_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO settlement_windows (window_id, status, opened_at) VALUES (?, ?, ?)",
        (window_id, OPEN, to_iso(now)),
    )
    return window_id


def cap_refusal(
    conn: sqlite3.Connection, window_id: str, bank_code: str, amount: int, cap: int
) -> str | None:
    """NET_DEBIT_CAP_EXCEEDED if sending amount would take the bank past its limit, else None."""
    row = conn.execute(
        "SELECT net_minor, pending_out_minor FROM window_positions"
        " WHERE window_id = ? AND bank_code = ?",
        (window_id, bank_code),
    ).fetchone()
    net, pending_out = (row[0], row[1]) if row else (0, 0)
    reserve = ledger.account(conn, settlement_reserve(bank_code))
    limit = min(cap, reserve.available if reserve else 0)
    if net - pending_out - amount < -limit:
        return "NET_DEBIT_CAP_EXCEEDED"
    return None


def record_pending(conn: sqlite3.Connection, window_id: str, debtor: str, amount: int) -> None:
    """A transfer joined the window and waits for the creditor bank's answer."""
    _add(conn, window_id, debtor, pending_out=amount)
    conn.execute(
        "UPDATE settlement_windows SET transfer_count = transfer_count + 1 WHERE window_id = ?",
        (window_id,),
    )


def record_answer(
    conn: sqlite3.Connection,
    window_id: str,
    debtor: str,
    creditor: str,
    amount: int,
    *,
    accepted: bool,
) -> None:
    """The creditor bank answered: an accepted transfer counts in both positions."""
    _add(conn, window_id, debtor, pending_out=-amount, net=-amount if accepted else 0)
    if accepted:
        _add(conn, window_id, creditor, net=amount)
    else:
        conn.execute(
            "UPDATE settlement_windows SET transfer_count = transfer_count - 1 WHERE window_id = ?",
            (window_id,),
        )


def net_positions(conn: sqlite3.Connection, window_id: str) -> dict[str, int]:
    """Multilateral net position per bank from the window's accepted transfers.

    The gross flow between two banks has no bound (they may pay each other
    back and forth), and SQLite's SUM fails once a total passes int64; so each
    amount is summed as its high and low 32 bits, and the two sums are joined
    here. Neither can overflow before 2^31 transfers between one pair of banks
    in one window. Each net position is bounded by the net debit caps.
    """
    positions: dict[str, int] = {}
    for debtor, creditor, high, low in conn.execute(
        "SELECT debtor_agent, creditor_agent, SUM(amount >> 32), SUM(amount & 4294967295)"
        " FROM settlement_transfers"
        " WHERE window_id = ? AND status = 'ACCEPTED' AND debtor_agent != creditor_agent"
        " GROUP BY debtor_agent, creditor_agent",
        (window_id,),
    ):
        total = (high << 32) + low
        positions[debtor] = positions.get(debtor, 0) - total
        positions[creditor] = positions.get(creditor, 0) + total
    return positions


def close_open_window(conn: sqlite3.Connection, now: dt.datetime) -> str:
    """Close the open window, net it, and open the next; returns the closed window's id.

    Transfers still waiting for an answer move to the next window with their
    pending amounts, so they settle there.
    """
    closing = open_window(conn, now)
    following = str(uuid.uuid4())
    moment = to_iso(now)
    conn.execute(
        "UPDATE settlement_windows SET status = ?, closed_at = ? WHERE window_id = ?",
        (CLOSED, moment, closing),
    )
    conn.execute(
        "INSERT INTO settlement_windows (window_id, status, opened_at) VALUES (?, ?, ?)",
        (following, OPEN, moment),
    )
    moved = conn.execute(
        "SELECT debtor_agent, SUM(amount), COUNT(*) FROM settlement_transfers"
        " WHERE window_id = ? AND status = 'PENDING' GROUP BY debtor_agent",
        (closing,),
    ).fetchall()
    conn.execute(
        "UPDATE settlement_transfers SET window_id = ? WHERE window_id = ? AND status = 'PENDING'",
        (following, closing),
    )
    for debtor, total, count in moved:
        _add(conn, following, debtor, pending_out=total)
        conn.execute(
            "UPDATE settlement_windows SET transfer_count = transfer_count + ? WHERE window_id = ?",
            (count, following),
        )
    # The netting proper: positions recomputed from the accepted transfers themselves.
    positions = net_positions(conn, closing)
    running = {
        bank: net
        for bank, net in conn.execute(
            "SELECT bank_code, net_minor FROM window_positions WHERE window_id = ? AND net_minor"
            " != 0",
            (closing,),
        )
    }
    if running != {bank: net for bank, net in positions.items() if net}:
        # The cap checks relied on the running positions: a drift is a bug worth a loud log.
        _log.error("window.positions_drifted", window_id=closing, running=running, netted=positions)
    conn.execute("DELETE FROM window_positions WHERE window_id = ?", (closing,))
    conn.executemany(
        "INSERT INTO window_positions (window_id, bank_code, net_minor) VALUES (?, ?, ?)",
        [(closing, bank, net) for bank, net in sorted(positions.items())],
    )
    (accepted,) = conn.execute(
        "SELECT COUNT(*) FROM settlement_transfers WHERE window_id = ? AND status = 'ACCEPTED'",
        (closing,),
    ).fetchone()
    conn.execute(
        "UPDATE settlement_windows SET transfer_count = ? WHERE window_id = ?", (accepted, closing)
    )
    return closing


def settle_window(
    conn: sqlite3.Connection, window_id: str, currency: str, now: dt.datetime
) -> None:
    """Move a closed window's net positions between reserves through the clearing account."""
    found = window(conn, window_id)
    if found is None or found.status != CLOSED:
        raise ledger.LedgerError(f"window {window_id} is not closed")
    if sum(found.positions.values()) != 0:
        raise ledger.LedgerError(f"window {window_id} positions do not net to zero")
    # Net debtors pay in first, so the clearing account never lends.
    for bank, net in sorted(found.positions.items(), key=lambda item: item[1]):
        if net < 0:
            ledger.transfer(
                conn,
                settlement_reserve(bank),
                CLEARING,
                -net,
                currency,
                now=now,
                order_id=window_id,
                description=f"net settlement window {window_id}",
            )
        elif net > 0:
            ledger.transfer(
                conn,
                CLEARING,
                settlement_reserve(bank),
                net,
                currency,
                now=now,
                order_id=window_id,
                description=f"net settlement window {window_id}",
            )
    conn.execute(
        "UPDATE settlement_windows SET status = ?, settled_at = ? WHERE window_id = ?",
        (SETTLED, to_iso(now), window_id),
    )


def window(conn: sqlite3.Connection, window_id: str | None) -> Window | None:
    """A window by id, or the open one when window_id is None."""
    if window_id is None:
        row = conn.execute(
            "SELECT window_id, status, opened_at, closed_at, settled_at, transfer_count"
            " FROM settlement_windows WHERE status = ?",
            (OPEN,),
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT window_id, status, opened_at, closed_at, settled_at, transfer_count"
            " FROM settlement_windows WHERE window_id = ?",
            (window_id,),
        ).fetchone()
    if row is None:
        return None
    positions = {
        bank: net
        for bank, net in conn.execute(
            "SELECT bank_code, net_minor FROM window_positions WHERE window_id = ?"
            " ORDER BY bank_code",
            (row[0],),
        )
    }
    return Window(row[0], row[1], row[2], row[3], row[4], row[5], positions)


def unsettled_positions(conn: sqlite3.Connection) -> dict[str, int]:
    """Net position per bank of accepted transfers whose window has not settled."""
    positions: dict[str, int] = {}
    for bank, net in conn.execute(
        "SELECT p.bank_code, SUM(p.net_minor) FROM window_positions p"
        " JOIN settlement_windows w ON w.window_id = p.window_id"
        " WHERE w.status != ? GROUP BY p.bank_code",
        (SETTLED,),
    ):
        positions[bank] = int(net)
    return positions


def require_net_mode(net_mode: bool) -> None:
    """FAILED_PRECONDITION(SETTLEMENT_MODE_GROSS) unless the network settles net."""
    if not net_mode:
        raise errors.FailedPrecondition(
            "SETTLEMENT_MODE_GROSS",
            "this network settles gross (each transfer at once): it has no settlement windows;"
            " set [settlement] mode = 'net' in the network file to use them",
        )


def _add(
    conn: sqlite3.Connection,
    window_id: str,
    bank_code: str,
    *,
    net: int = 0,
    pending_out: int = 0,
) -> None:
    conn.execute(
        "INSERT INTO window_positions (window_id, bank_code, net_minor, pending_out_minor)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (window_id, bank_code) DO UPDATE SET"
        " net_minor = net_minor + excluded.net_minor,"
        " pending_out_minor = pending_out_minor + excluded.pending_out_minor",
        (window_id, bank_code, net, pending_out),
    )
