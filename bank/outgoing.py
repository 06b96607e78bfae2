"""Outgoing credit transfers: settling a captured hold through the settlement bank.

Capture debits the customer into the suspense account and records the
transfer PENDING. Delivery sends it to the settlement bank (same request id
every time, so retries are safe) and applies the answer in one transaction:

- ACCEPTED: suspense -> reserve, the money left the bank; state SETTLED.
- REJECTED: suspense -> customer, the debit is reversed; state REJECTED.
- no answer (unreachable, timeout, PENDING): nothing changes; the app's
  retry loop delivers again until the transfer is decided.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable

from interbank.v1 import common_pb2, settlement_pb2

from bank import ledger
from bank.holds import holder_uri
from bank.notices import emit_account_entry, money
from bank.opening import RESERVE, SUSPENSE
from payment.clock import now as clock_now
from payment.clock import to_iso
from payment.logs import get_logger
from payment.storage import Store

__all__ = [
    "PENDING",
    "REJECTED",
    "SETTLED",
    "OutgoingTransfers",
    "SubmitTransfer",
    "apply_settlement_answer",
]

PENDING = "PENDING"
SETTLED = "SETTLED"
REJECTED = "REJECTED"

SubmitTransfer = Callable[
    [settlement_pb2.SubmitCreditTransferRequest],
    Awaitable[settlement_pb2.SubmitCreditTransferResponse | None],
]
"""Sends a transfer to the settlement bank; None when the outcome is unknown."""

_log = get_logger("paynet.bank.outgoing")


def apply_settlement_answer(
    conn: sqlite3.Connection,
    instruction_id: str,
    answer: settlement_pb2.SubmitCreditTransferResponse,
    *,
    now: dt.datetime,
) -> str:
    """Book the settlement bank's answer for a pending transfer; returns the state now.

    An answer for a transfer that is already decided changes nothing, so a
    late or repeated answer is harmless.
    """
    row = conn.execute(
        "SELECT account_id, order_id, amount, settlement_state FROM outgoing_transfers"
        " WHERE instruction_id = ?",
        (instruction_id,),
    ).fetchone()
    if row is None:
        raise ledger.LedgerError(f"no outgoing transfer {instruction_id}")
    account_id, order_id, amount, state = row
    if state != PENDING:
        return str(state)
    (currency,) = conn.execute(
        "SELECT currency FROM accounts WHERE account_id = ?", (account_id,)
    ).fetchone()
    if answer.status == settlement_pb2.TRANSFER_STATUS_ACCEPTED:
        ledger.transfer(
            conn,
            SUSPENSE,
            RESERVE,
            amount,
            currency,
            now=now,
            order_id=order_id,
            description="settled to acquirer",
        )
        new_state = SETTLED
    elif answer.status == settlement_pb2.TRANSFER_STATUS_REJECTED:
        reason = answer.reason_code or "REJECTED"
        description = f"reversal: {reason}"
        ledger.transfer(
            conn,
            SUSPENSE,
            account_id,
            amount,
            currency,
            now=now,
            order_id=order_id,
            description=description,
        )
        holder = ledger.account(conn, account_id)
        assert holder is not None  # the transfer above needed it
        emit_account_entry(
            conn,
            holder_uri(conn, account_id),
            account=common_pb2.AccountRef(
                bank_code=_own_code(conn, instruction_id), account_id=account_id
            ),
            credit=True,
            amount=money(amount, currency),
            order_id=order_id,
            instruction_id=instruction_id,
            balance_after=money(holder.booked, currency),
            description=description,
        )
        new_state = REJECTED
    else:
        return PENDING
    conn.execute(
        "UPDATE outgoing_transfers SET settlement_state = ?, reason_code = ?, decided_at = ?"
        " WHERE instruction_id = ?",
        (new_state, answer.reason_code, to_iso(now), instruction_id),
    )
    return new_state


def _own_code(conn: sqlite3.Connection, instruction_id: str) -> str:
    (blob,) = conn.execute(
        "SELECT transfer FROM outgoing_transfers WHERE instruction_id = ?", (instruction_id,)
    ).fetchone()
    return settlement_pb2.CreditTransfer.FromString(blob).debtor_agent


class OutgoingTransfers:
    """Delivers this bank's pending credit transfers to the settlement bank."""

    def __init__(self, store: Store, submit: SubmitTransfer) -> None:
        self._store = store
        self._submit = submit

    async def deliver(self, instruction_id: str) -> str:
        """Send one transfer (if still pending) and book the answer; returns its state."""
        async with self._store.exclusive(f"outgoing\x00{instruction_id}"):
            row = await self._store.read(
                lambda conn: conn.execute(
                    "SELECT transfer, settlement_state FROM outgoing_transfers"
                    " WHERE instruction_id = ?",
                    (instruction_id,),
                ).fetchone()
            )
            if row is None:
                raise ledger.LedgerError(f"no outgoing transfer {instruction_id}")
            if row[1] != PENDING:
                return str(row[1])
            request = settlement_pb2.SubmitCreditTransferRequest(
                request_id=instruction_id,
                transfer=settlement_pb2.CreditTransfer.FromString(row[0]),
            )
            answer = await self._submit(request)
            if answer is None:
                return PENDING
            return await self._store.transaction(
                lambda conn: apply_settlement_answer(conn, instruction_id, answer, now=clock_now())
            )

    async def deliver_pending(self) -> int:
        """Deliver every pending transfer once, oldest first; returns how many got decided."""
        ids = await self._store.read(
            lambda conn: [
                r[0]
                for r in conn.execute(
                    "SELECT instruction_id FROM outgoing_transfers"
                    " WHERE settlement_state = ? ORDER BY created_at",
                    (PENDING,),
                )
            ]
        )
        decided = 0
        for instruction_id in ids:
            state = await self.deliver(instruction_id)
            if state != PENDING:
                decided += 1
                _log.info("settlement.decided", instruction_id=instruction_id, state=state)
        return decided
