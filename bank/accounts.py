"""Online banking: an account's balance and statement, for its holder only.

An account that is not the caller's and an account that does not exist get
the same answer, so a caller cannot learn which account ids exist.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from interbank.v1 import account_pb2, common_pb2, notification_pb2

from bank import ledger
from bank.notices import money
from payment import errors
from payment.clock import now as clock_now
from payment.clock import timestamp, to_iso
from payment.storage import Store

__all__ = ["Accounts", "held_by"]


class Accounts:
    """AccountService's domain over the bank's store."""

    def __init__(self, store: Store, bank_code: str) -> None:
        self._store = store
        self._code = bank_code

    async def balance(self, account_id: str, caller_uri: str) -> account_pb2.GetBalanceResponse:
        """Booked, available and held balance of the caller's account."""

        def query(conn: sqlite3.Connection) -> account_pb2.GetBalanceResponse:
            account = held_by(conn, account_id, caller_uri)
            return account_pb2.GetBalanceResponse(
                account=common_pb2.AccountRef(bank_code=self._code, account_id=account_id),
                booked=money(account.booked, account.currency),
                available=money(account.available, account.currency),
                held=money(account.debits_pending, account.currency),
                uncollected=money(account.credits_pending, account.currency),
            )

        return await self._store.read(query)

    async def statement(
        self,
        account_id: str,
        caller_uri: str,
        *,
        from_time: dt.datetime | None = None,
        to_time: dt.datetime | None = None,
    ) -> account_pb2.ListStatementResponse:
        """Opening and closing booked balance of [from_time, to_time) and the entries between."""
        if from_time is not None and to_time is not None and from_time > to_time:
            raise errors.InvalidArgument(
                "PERIOD_INVALID", "from_time is after to_time: give a period that starts first"
            )
        end = to_iso(to_time or clock_now())
        start = to_iso(from_time) if from_time is not None else None

        def query(conn: sqlite3.Connection) -> account_pb2.ListStatementResponse:
            account = held_by(conn, account_id, caller_uri)
            lines = ledger.statement_lines(conn, account_id, start, end)
            currency = account.currency
            return account_pb2.ListStatementResponse(
                account=common_pb2.AccountRef(bank_code=self._code, account_id=account_id),
                opening_balance=money(lines.opening, currency),
                closing_balance=money(lines.closing, currency),
                entries=[
                    account_pb2.StatementEntry(
                        entry_id=entry.transfer_id,
                        booked_at=timestamp(entry.booked_at),
                        direction=(
                            notification_pb2.ACCOUNT_ENTRY_DIRECTION_CREDIT
                            if entry.credit
                            else notification_pb2.ACCOUNT_ENTRY_DIRECTION_DEBIT
                        ),
                        amount=money(entry.amount, currency),
                        order_id=entry.order_id,
                        description=entry.description,
                        balance_after=money(entry.balance_after, currency),
                    )
                    for entry in lines.entries
                ],
            )

        return await self._store.read(query)


def held_by(conn: sqlite3.Connection, account_id: str, caller_uri: str) -> ledger.Account:
    """The holder account account_id if caller_uri holds it; PERMISSION_DENIED,
    ACCOUNT_NOT_HELD_BY_CALLER otherwise (whether or not it exists)."""
    account = ledger.account(conn, account_id) if account_id else None
    if account is None or account.kind != "holder" or account.holder_uri != caller_uri:
        raise errors.PermissionDenied(
            "ACCOUNT_NOT_HELD_BY_CALLER", "the caller holds no account with this id at this bank"
        )
    return account
