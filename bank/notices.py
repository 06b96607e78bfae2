"""The events a bank writes to its outbox, in the transaction of the change they announce."""

from __future__ import annotations

import sqlite3

from interbank.v1 import common_pb2, notification_pb2

from payment.notifications import emit

__all__ = ["emit_account_entry", "emit_hold_notice", "money"]


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
