"""The events a bank writes to its outbox, in the transaction of the change they announce."""

from __future__ import annotations

import sqlite3

from interbank.v1 import common_pb2, notification_pb2

from bank.messages import RETURN, fields, parse
from payment.notifications import emit

__all__ = ["announce_settled_return", "emit_account_entry", "emit_hold_notice", "money"]


def money(amount_minor: int, currency: str) -> common_pb2.Money:
    """A Money message."""
    return common_pb2.Money(amount_minor=amount_minor, currency_code=currency)


def emit_hold_notice(
    conn: sqlite3.Connection,
    recipient: str,
    *,
    hold_id: str,
    order_id: str,
    event: str,
    amount: common_pb2.Money,
) -> None:
    """Tell the holder that a hold was placed, voided, expired or declined."""
    notice = notification_pb2.HoldNotice(
        hold_id=hold_id, order_id=order_id, event=event, amount=amount
    )
    emit(conn, recipient, notification_pb2.SubscribeResponse(hold=notice))


def emit_account_entry(
    conn: sqlite3.Connection,
    recipient: str,
    *,
    account: common_pb2.AccountRef,
    credit: bool,
    amount: common_pb2.Money,
    order_id: str,
    instruction_id: str,
    balance_after: common_pb2.Money,
    description: str,
) -> None:
    """Tell the holder that money moved on its account."""
    direction = (
        notification_pb2.ACCOUNT_ENTRY_DIRECTION_CREDIT
        if credit
        else notification_pb2.ACCOUNT_ENTRY_DIRECTION_DEBIT
    )
    notice = notification_pb2.AccountEntryNotice(
        account=account,
        direction=direction,
        amount=amount,
        order_id=order_id,
        instruction_id=instruction_id,
        balance_after=balance_after,
        description=description,
    )
    emit(conn, recipient, notification_pb2.SubscribeResponse(account_entry=notice))


def announce_settled_return(conn: sqlite3.Connection, return_id: str) -> None:
    """Tell the merchant that a refund of its payment settled: a RefundNotice.

    Call it in the transaction that records the payment return SETTLED: the
    merchant then learns of every refund of its payments exactly when it is
    settled, whoever asked for it, and its order's refunded total can follow
    (the notice carries the payment's settled refunds so far, this one included).
    """
    # 'SETTLED' is bank.outgoing.SETTLED, spelled out: that module imports this one.
    row = conn.execute(
        "SELECT r.transfer, r.account_id, a.holder_uri FROM outgoing_transfers r"
        " JOIN accounts a ON a.account_id = r.account_id"
        " WHERE r.instruction_id = ? AND r.kind = ? AND r.settlement_state = 'SETTLED'",
        (return_id, RETURN),
    ).fetchone()
    if row is None or row[2] is None:
        return  # not a settled return from a holder's account: nobody to tell
    blob, account_id, recipient = row
    sent = fields(parse(RETURN, blob))
    (refunded,) = conn.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM outgoing_transfers"
        " WHERE kind = ? AND original_instruction_id = ? AND settlement_state = 'SETTLED'",
        (RETURN, sent.original_instruction_id),
    ).fetchone()
    notice = notification_pb2.RefundNotice(
        refund_id=return_id,
        order_id=sent.end_to_end_id,
        account=common_pb2.AccountRef(bank_code=sent.payer, account_id=account_id),
        original_instruction_id=sent.original_instruction_id or "",
        amount=money(sent.amount, sent.currency),
        refunded_total=money(int(refunded), sent.currency),
    )
    emit(conn, recipient, notification_pb2.SubscribeResponse(refund=notice))
