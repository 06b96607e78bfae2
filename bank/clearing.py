"""The receiving side: crediting holders with transfers the settlement bank delivers.

Delivery is at least once, so a transfer is identified by (debtor agent,
instruction id) and a repeat gets the first answer back, whatever it was. A
transfer that cannot be credited is answered REJECTED with a reason code and
leaves nothing behind but that remembered answer; the settlement bank then
reverses its reserve movement.

A delivery is credited against the bank's reserve mirror: the settlement bank
moved the money between reserves. So a delivery that cannot have moved any
reserve is refused before anything is read (:func:`bank.messages.refuse_malformed`):
one from this bank to itself (SAME_AGENT), one naming a single account as
debtor and creditor (SELF_TRANSFER), an amount outside 1 to
:data:`payment.money.MAX_AMOUNT_MINOR` (FIELD_INVALID). A payment between two
holders of this bank is booked by :func:`bank.outgoing.book_on_us` with the
same functions, from suspense instead of the reserve mirror.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from interbank.v1 import common_pb2, settlement_pb2

from bank import ledger
from bank.messages import refuse_malformed
from bank.notices import emit_account_entry, money
from bank.opening import RESERVE, SUSPENSE
from payment import errors
from payment.clock import now as clock_now
from payment.clock import to_iso
from payment.config import NetworkConfig, NodeConfig
from payment.money import AMOUNT_OVERFLOW, AmountOverflow
from payment.storage import Store, request_hash

__all__ = ["Clearing", "receive_credit_transfer", "receive_payment_return"]

_ACCEPTED = settlement_pb2.TRANSFER_STATUS_ACCEPTED
_REJECTED = settlement_pb2.TRANSFER_STATUS_REJECTED


class Clearing:
    """The bank's ClearingService domain over its store."""

    def __init__(self, store: Store, network: NetworkConfig, node: NodeConfig) -> None:
        if node.bank_code is None:
            raise ValueError(f"node {node.name} has no bank_code")
        self._store = store
        self._currency = network.currency
        self._code = node.bank_code

    async def receive(
        self,
        request: settlement_pb2.ReceiveCreditTransferRequest,
        *,
        now: dt.datetime | None = None,
    ) -> settlement_pb2.ReceiveCreditTransferResponse:
        """Credit a delivered transfer once; a repeat returns the first answer."""
        moment = now or clock_now()
        transfer = request.transfer
        if not transfer.instruction_id or not transfer.debtor_agent:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                "instruction_id and debtor_agent are required",
                field="transfer.instruction_id",
            )
        refuse_malformed(transfer)
        key = f"clearing\x00{transfer.debtor_agent}\x00{transfer.instruction_id}"
        async with self._store.exclusive(key):
            return await self._store.claimed_transaction(
                "ReceiveCreditTransfer",
                request.request_id,
                request,
                lambda conn: receive_credit_transfer(
                    conn, transfer, own_code=self._code, currency=self._currency, now=moment
                ),
            )

    async def receive_return(
        self,
        request: settlement_pb2.ReceivePaymentReturnRequest,
        *,
        now: dt.datetime | None = None,
    ) -> settlement_pb2.ReceivePaymentReturnResponse:
        """Credit a returned amount to the original debtor once; a repeat gets the first answer."""
        moment = now or clock_now()
        payment_return = request.payment_return
        if not payment_return.return_id or not payment_return.returning_agent:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                "return_id and returning_agent are required",
                field="payment_return.return_id",
            )
        refuse_malformed(payment_return)
        key = f"return\x00{payment_return.returning_agent}\x00{payment_return.return_id}"
        async with self._store.exclusive(key):
            return await self._store.claimed_transaction(
                "ReceivePaymentReturn",
                request.request_id,
                request,
                lambda conn: receive_payment_return(
                    conn, payment_return, own_code=self._code, currency=self._currency, now=moment
                ),
            )


def receive_credit_transfer(
    conn: sqlite3.Connection,
    transfer: settlement_pb2.CreditTransfer,
    *,
    own_code: str,
    currency: str,
    now: dt.datetime,
    on_us: bool = False,
) -> settlement_pb2.ReceiveCreditTransferResponse:
    """Credit the creditor account (or refuse), once per (debtor agent, instruction id).

    The credit comes from the reserve mirror, or with on_us from suspense,
    where this bank's own debit of the payer waits.
    """
    digest = request_hash(transfer)
    row = conn.execute(
        "SELECT request_hash, status, reason_code FROM incoming_transfers"
        " WHERE debtor_agent = ? AND instruction_id = ?",
        (transfer.debtor_agent, transfer.instruction_id),
    ).fetchone()
    if row is not None:
        if bytes(row[0]) != digest:
            raise errors.AlreadyExists(
                "IDEMPOTENCY_KEY_REUSED",
                "this instruction_id was already delivered with different content",
                instruction_id=transfer.instruction_id,
            )
        return settlement_pb2.ReceiveCreditTransferResponse(
            instruction_id=transfer.instruction_id,
            status=settlement_pb2.TransferStatus.Value(f"TRANSFER_STATUS_{row[1]}"),
            reason_code=row[2],
        )
    reason = _refusal(conn, transfer, own_code, currency)
    account_id = transfer.creditor_account.account_id
    transfer_id = None
    if reason is None:
        try:
            transfer_id = _credit(conn, transfer, own_code, now, on_us=on_us)
        except AmountOverflow:
            reason = AMOUNT_OVERFLOW
    conn.execute(
        "INSERT INTO incoming_transfers (debtor_agent, instruction_id, request_hash, status,"
        " reason_code, account_id, amount, end_to_end_id, ledger_transfer_id, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            transfer.debtor_agent,
            transfer.instruction_id,
            digest,
            "REJECTED" if reason else "ACCEPTED",
            reason or "",
            account_id if reason is None else None,
            transfer.amount.amount_minor,
            transfer.end_to_end_id,
            transfer_id,
            to_iso(now),
        ),
    )
    return settlement_pb2.ReceiveCreditTransferResponse(
        instruction_id=transfer.instruction_id,
        status=_REJECTED if reason else _ACCEPTED,
        reason_code=reason or "",
    )


def _refusal(
    conn: sqlite3.Connection, transfer: settlement_pb2.CreditTransfer, own_code: str, currency: str
) -> str | None:
    if transfer.creditor_agent != own_code:
        return "UNKNOWN_CREDITOR_AGENT"
    if transfer.amount.currency_code != currency:
        return "CURRENCY_MISMATCH"
    creditor = transfer.creditor_account
    account = ledger.account(conn, creditor.account_id) if creditor.account_id else None
    if account is None or account.kind != "holder" or creditor.bank_code not in ("", own_code):
        return "CREDITOR_ACCOUNT_UNKNOWN"
    return None


def _credit(
    conn: sqlite3.Connection,
    transfer: settlement_pb2.CreditTransfer,
    own_code: str,
    now: dt.datetime,
    *,
    on_us: bool,
) -> str:
    account_id = transfer.creditor_account.account_id
    amount = transfer.amount
    description = f"{'transfer' if on_us else 'settlement'} from {transfer.debtor_agent}"
    transfer_id = ledger.transfer(
        conn,
        SUSPENSE if on_us else RESERVE,
        account_id,
        amount.amount_minor,
        amount.currency_code,
        now=now,
        order_id=transfer.end_to_end_id,
        description=description,
    )
    account = ledger.account(conn, account_id)
    assert account is not None and account.holder_uri is not None  # checked by _refusal
    emit_account_entry(
        conn,
        account.holder_uri,
        account=common_pb2.AccountRef(bank_code=own_code, account_id=account_id),
        credit=True,
        amount=money(amount.amount_minor, amount.currency_code),
        order_id=transfer.end_to_end_id,
        instruction_id=transfer.instruction_id,
        balance_after=money(account.booked, amount.currency_code),
        description=description,
    )
    return transfer_id


def receive_payment_return(
    conn: sqlite3.Connection,
    payment_return: settlement_pb2.PaymentReturn,
    *,
    own_code: str,
    currency: str,
    now: dt.datetime,
    on_us: bool = False,
) -> settlement_pb2.ReceivePaymentReturnResponse:
    """Credit the customer debited by the original transfer, once per (returning agent, id).

    The return must name a transfer this bank sent and settled to the
    returning agent, and all returns of it together may not exceed it. The
    credit comes from the reserve mirror, or with on_us from suspense.
    """
    digest = request_hash(payment_return)
    row = conn.execute(
        "SELECT request_hash, status, reason_code FROM incoming_returns"
        " WHERE returning_agent = ? AND return_id = ?",
        (payment_return.returning_agent, payment_return.return_id),
    ).fetchone()
    if row is not None:
        if bytes(row[0]) != digest:
            raise errors.AlreadyExists(
                "IDEMPOTENCY_KEY_REUSED",
                "this return_id was already delivered with different content",
                return_id=payment_return.return_id,
            )
        return settlement_pb2.ReceivePaymentReturnResponse(
            return_id=payment_return.return_id,
            status=settlement_pb2.TransferStatus.Value(f"TRANSFER_STATUS_{row[1]}"),
            reason_code=row[2],
        )
    amount = payment_return.amount
    original = conn.execute(
        "SELECT account_id, amount, hold_id, order_id FROM outgoing_transfers"
        " WHERE instruction_id = ? AND kind = 'transfer' AND creditor_agent = ?"
        # The settlement bank checked the original was accepted; our own record of that
        # answer may still be on its way (PENDING), but it can never become REJECTED.
        " AND settlement_state != 'REJECTED'",
        (payment_return.original_instruction_id, payment_return.returning_agent),
    ).fetchone()
    reason: str | None = None
    if payment_return.receiving_agent != own_code:
        reason = "UNKNOWN_CREDITOR_AGENT"
    elif amount.currency_code != currency:
        reason = "FIELD_INVALID"
    elif original is None:
        reason = "ORIGINAL_TRANSFER_NOT_FOUND"
    else:
        (returned,) = conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM incoming_returns"
            " WHERE original_instruction_id = ? AND status = 'ACCEPTED'",
            (payment_return.original_instruction_id,),
        ).fetchone()
        if returned + amount.amount_minor > original[1]:
            reason = "RETURN_EXCEEDS_ORIGINAL"
    account_id = transfer_id = None
    if reason is None:
        account_id, _, hold_id, order_id = original
        try:
            transfer_id = _credit_return(
                conn, payment_return, own_code, account_id, order_id, now, on_us=on_us
            )
        except AmountOverflow:
            account_id, reason = None, AMOUNT_OVERFLOW
        else:
            conn.execute(
                "UPDATE holds SET refunded_minor = refunded_minor + ? WHERE hold_id = ?",
                (amount.amount_minor, hold_id),
            )
    conn.execute(
        "INSERT INTO incoming_returns (returning_agent, return_id, request_hash,"
        " original_instruction_id, status, reason_code, account_id, amount, ledger_transfer_id,"
        " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            payment_return.returning_agent,
            payment_return.return_id,
            digest,
            payment_return.original_instruction_id,
            "REJECTED" if reason else "ACCEPTED",
            reason or "",
            account_id,
            amount.amount_minor,
            transfer_id,
            to_iso(now),
        ),
    )
    return settlement_pb2.ReceivePaymentReturnResponse(
        return_id=payment_return.return_id,
        status=_REJECTED if reason else _ACCEPTED,
        reason_code=reason or "",
    )


def _credit_return(
    conn: sqlite3.Connection,
    payment_return: settlement_pb2.PaymentReturn,
    own_code: str,
    account_id: str,
    order_id: str,
    now: dt.datetime,
    *,
    on_us: bool,
) -> str:
    amount = payment_return.amount
    description = f"refund from {payment_return.returning_agent}"
    transfer_id = ledger.transfer(
        conn,
        SUSPENSE if on_us else RESERVE,
        account_id,
        amount.amount_minor,
        amount.currency_code,
        now=now,
        order_id=order_id,
        description=description,
    )
    account = ledger.account(conn, account_id)
    assert account is not None and account.holder_uri is not None  # the original debited it
    emit_account_entry(
        conn,
        account.holder_uri,
        account=common_pb2.AccountRef(bank_code=own_code, account_id=account_id),
        credit=True,
        amount=money(amount.amount_minor, amount.currency_code),
        order_id=order_id,
        instruction_id=payment_return.return_id,
        balance_after=money(account.booked, amount.currency_code),
        description=description,
    )
    return transfer_id
