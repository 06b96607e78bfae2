"""Outgoing interbank messages: settling captures and refunds through the settlement bank.

Two kinds leave a bank the same way: a credit transfer when a hold is
captured (the customer was debited) and a payment return when a merchant
refunds (the merchant was debited). Either way the holder's money waits in
suspense with the message recorded PENDING. Delivery sends it to the
settlement bank (same id every time, so retries are safe) and applies the
answer in one transaction:

- ACCEPTED: suspense -> reserve, the money left the bank; state SETTLED.
- REJECTED: suspense -> holder, the debit is reversed (with a notice and a
  statement line); state REJECTED.
- no answer (unreachable, timeout, PENDING): nothing changes; the app's
  retry loop delivers again until the message is decided.

A message to this bank itself (a customer paying a merchant of the same bank,
or the refund of such a payment) is never sent: the settlement bank settles
only between two banks, and refuses it (SAME_AGENT). :func:`book_on_us`
settles it inside the bank instead, in one transaction, with the functions
that credit a delivery (:mod:`bank.clearing`), from suspense: suspense ->
payee, or back to the payer if it cannot be credited. The reserve mirror is
not touched, as no reserve moved.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable

from interbank.v1 import common_pb2
from interbank.v1 import settlement_pb2 as pb

from bank import ledger
from bank.clearing import receive_credit_transfer, receive_payment_return
from bank.holds import holder_uri
from bank.messages import (
    RETURN,
    TRANSFER,
    SettlementMessage,
    StatusAnswer,
    fields,
    is_on_us,
    parse,
)
from bank.notices import announce_settled_return, emit_account_entry, money
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
    "Submit",
    "apply_settlement_answer",
    "book_on_us",
    "record_outgoing",
]

PENDING = "PENDING"
SETTLED = "SETTLED"
REJECTED = "REJECTED"
Submit = Callable[[SettlementMessage], Awaitable[StatusAnswer | None]]
"""Sends a message to the settlement bank; None when the outcome is unknown."""

_log = get_logger("paynet.bank.outgoing")
_SETTLED_TEXT = {TRANSFER: "settled to acquirer", RETURN: "returned to issuer"}


def record_outgoing(
    conn: sqlite3.Connection,
    message: SettlementMessage,
    *,
    account_id: str,
    now: dt.datetime,
    hold_id: str | None = None,
    request_hash: bytes | None = None,
) -> str:
    """Record a message PENDING (its debit already in suspense); returns its id."""
    sent = fields(message)
    conn.execute(
        "INSERT INTO outgoing_transfers (instruction_id, kind, hold_id, original_instruction_id,"
        " request_hash, account_id, order_id, amount, creditor_agent, transfer,"
        " settlement_state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            sent.message_id,
            sent.kind,
            hold_id,
            sent.original_instruction_id,
            request_hash,
            account_id,
            sent.end_to_end_id,
            sent.amount,
            sent.payee,
            message.SerializeToString(),
            PENDING,
            to_iso(now),
        ),
    )
    return sent.message_id


def apply_settlement_answer(
    conn: sqlite3.Connection,
    message_id: str,
    answer: StatusAnswer,
    *,
    now: dt.datetime,
    on_us: bool = False,
) -> str:
    """Book the settlement bank's answer for a pending message; returns the state now.

    An answer for a message that is already decided changes nothing, so a
    late or repeated answer is harmless. With on_us the answer is this bank's
    own (:func:`book_on_us`): an accepted message was already credited from
    suspense, so nothing more moves.
    """
    row = conn.execute(
        "SELECT kind, account_id, order_id, amount, settlement_state, transfer"
        " FROM outgoing_transfers WHERE instruction_id = ?",
        (message_id,),
    ).fetchone()
    if row is None:
        raise ledger.LedgerError(f"no outgoing transfer {message_id}")
    kind, account_id, order_id, amount, state, blob = row
    status, reason = answer
    if state != PENDING or status not in ("ACCEPTED", "REJECTED"):
        return str(state)
    (currency,) = conn.execute(
        "SELECT currency FROM accounts WHERE account_id = ?", (account_id,)
    ).fetchone()
    if status == "ACCEPTED" and on_us:
        new_state = SETTLED
    elif status == "ACCEPTED":
        ledger.transfer(
            conn,
            SUSPENSE,
            RESERVE,
            amount,
            currency,
            now=now,
            order_id=order_id,
            description=_SETTLED_TEXT[kind],
        )
        new_state = SETTLED
    else:
        reason = reason or "REJECTED"
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
                bank_code=fields(parse(kind, blob)).payer, account_id=account_id
            ),
            credit=True,
            amount=money(amount, currency),
            order_id=order_id,
            instruction_id=message_id,
            balance_after=money(holder.booked, currency),
            description=description,
        )
        new_state = REJECTED
    conn.execute(
        "UPDATE outgoing_transfers SET settlement_state = ?, reason_code = ?, decided_at = ?"
        " WHERE instruction_id = ?",
        (new_state, reason if new_state == REJECTED else "", to_iso(now), message_id),
    )
    if kind == RETURN and new_state == SETTLED:
        announce_settled_return(conn, message_id)  # the merchant books its refund on it
    return new_state


def book_on_us(conn: sqlite3.Connection, message_id: str, *, now: dt.datetime) -> tuple[str, str]:
    """Settle a pending message to this bank itself inside it; returns (state, reason).

    The payee is credited from suspense as a delivery would be credited from
    the reserve mirror (same checks, records, statement line and notice), or
    the payer's debit is reversed with the reason the credit was refused.
    """
    row = conn.execute(
        "SELECT o.kind, o.transfer, o.settlement_state, o.reason_code, a.currency"
        " FROM outgoing_transfers o JOIN accounts a ON a.account_id = o.account_id"
        " WHERE o.instruction_id = ?",
        (message_id,),
    ).fetchone()
    if row is None:
        raise ledger.LedgerError(f"no outgoing transfer {message_id}")
    kind, blob, state, reason, currency = row
    if state != PENDING:
        return str(state), str(reason)
    message = parse(kind, blob)
    sent = fields(message)
    if not is_on_us(message):
        raise ledger.LedgerError(f"{sent.kind} {message_id} is for {sent.payee}, not this bank")
    report: pb.ReceiveCreditTransferResponse | pb.ReceivePaymentReturnResponse
    if isinstance(message, pb.CreditTransfer):
        report = receive_credit_transfer(
            conn, message, own_code=sent.payer, currency=currency, now=now, on_us=True
        )
    elif isinstance(message, pb.PaymentReturn):
        report = receive_payment_return(
            conn, message, own_code=sent.payer, currency=currency, now=now, on_us=True
        )
    else:
        raise ledger.LedgerError(f"{message_id} is a cheque presentment, never sent from here")
    status = pb.TransferStatus.Name(report.status).removeprefix("TRANSFER_STATUS_")
    state = apply_settlement_answer(
        conn, message_id, (status, report.reason_code), now=now, on_us=True
    )
    return state, (report.reason_code or REJECTED) if state == REJECTED else ""


class OutgoingTransfers:
    """Delivers this bank's pending transfers and returns to the settlement bank."""

    def __init__(self, store: Store, submit: Submit) -> None:
        self._store = store
        self._submit = submit

    async def deliver(self, message_id: str) -> tuple[str, str]:
        """Send one message (if still pending) and book the answer; returns (state, reason)."""
        async with self._store.exclusive(f"outgoing\x00{message_id}"):
            row = await self._store.read(
                lambda conn: conn.execute(
                    "SELECT kind, transfer, settlement_state, reason_code FROM outgoing_transfers"
                    " WHERE instruction_id = ?",
                    (message_id,),
                ).fetchone()
            )
            if row is None:
                raise ledger.LedgerError(f"no outgoing transfer {message_id}")
            if row[2] != PENDING:
                return str(row[2]), str(row[3])
            message = parse(row[0], row[1])
            if is_on_us(message):
                return await self._store.transaction(
                    lambda conn: book_on_us(conn, message_id, now=clock_now())
                )
            answer = await self._submit(message)
            if answer is None:
                return PENDING, ""
            state = await self._store.transaction(
                lambda conn: apply_settlement_answer(conn, message_id, answer, now=clock_now())
            )
            return state, (answer[1] or "REJECTED") if state == REJECTED else ""

    async def deliver_pending(self) -> int:
        """Deliver every pending message once, oldest first; returns how many got decided."""
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
        for message_id in ids:
            state, _ = await self.deliver(message_id)
            if state != PENDING:
                decided += 1
                _log.info("settlement.decided", instruction_id=message_id, state=state)
        return decided
