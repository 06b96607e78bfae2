"""The bank's and the settlement bank's records, read whole for the operator's tools.

Reconciliation compares every hold and interbank message against the orders;
the window export takes a settled window's credit transfers out as ISO 20022.
They read through these functions, never the tables, so the tables stay the
bank's to change. Each function takes a connection (a read snapshot or the
caller's transaction) and returns plain records, each table in the order its
rows were written.

:func:`record_accepted_transfers` fills a window in bulk, for the netting
benchmark: production records transfers one at a time through
:class:`bank.settlement.Settlement`.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from interbank.v1 import cash_pb2
from interbank.v1 import settlement_pb2 as pb

from bank.messages import TRANSFER, fields, parse
from payment.clock import to_iso
from payment.storage import request_hash

__all__ = [
    "ChequeDepositRecord",
    "ChequePaidRecord",
    "CoinDepositRecord",
    "CoinReceivedRecord",
    "HoldRecord",
    "IncomingReturnRecord",
    "IncomingTransferRecord",
    "OutgoingRecord",
    "SettlementRecord",
    "WindowPosition",
    "accepted_credit_transfers",
    "cheque_deposit_records",
    "cheque_paid_records",
    "coin_deposit_records",
    "coin_received_records",
    "hold_records",
    "incoming_return_records",
    "incoming_transfer_records",
    "outgoing_records",
    "record_accepted_transfers",
    "settlement_records",
    "window_positions",
]

_ACCEPTED = "ACCEPTED"


@dataclass(frozen=True)
class HoldRecord:
    """A hold at the issuer, as reconciliation compares it."""

    hold_id: str
    """The issuer's id."""
    order_id: str
    """The merchant's order."""
    amount: int
    """Held amount in minor units."""
    status: str
    """CHALLENGE_PENDING, AUTHORIZED, CAPTURED, VOIDED or EXPIRED."""
    instruction_id: str
    """The outgoing credit transfer once captured; "" before."""
    refunded_minor: int
    """Money returned to the customer by the acquirer's payment returns."""
    account_id: str
    """The customer's account."""
    transaction_id: str
    """The gateway's transaction id."""


@dataclass(frozen=True)
class OutgoingRecord:
    """A credit transfer or payment return the bank sent to the settlement bank."""

    instruction_id: str
    """The transfer's instruction id, or the return's id."""
    kind: str
    """``transfer`` or ``return``."""
    order_id: str
    """The end-to-end id."""
    amount: int
    """Amount in minor units."""
    settlement_state: str
    """PENDING, SETTLED or REJECTED."""
    original_instruction_id: str
    """The transfer a return gives back; "" for a transfer."""
    account_id: str
    """The account debited."""


@dataclass(frozen=True)
class IncomingTransferRecord:
    """A credit transfer the bank received as the creditor (acquirer) bank."""

    debtor_agent: str
    """The paying bank's code."""
    instruction_id: str
    """Its instruction id."""
    end_to_end_id: str
    """The order it pays."""
    amount: int
    """Amount in minor units."""
    status: str
    """The bank's answer: ACCEPTED or REJECTED."""
    account_id: str
    """The account credited; "" if none was."""


@dataclass(frozen=True)
class IncomingReturnRecord:
    """A payment return the bank received as the issuer."""

    returning_agent: str
    """The returning (acquirer) bank's code."""
    return_id: str
    """The return's id."""
    original_instruction_id: str
    """The credit transfer it gives back."""
    amount: int
    """Amount in minor units."""
    status: str
    """The bank's answer: ACCEPTED or REJECTED."""
    account_id: str
    """The account credited; "" if none was."""


@dataclass(frozen=True)
class SettlementRecord:
    """A transfer, return, cheque presentment or coin deposit the settlement bank received."""

    debtor_agent: str
    """The paying bank's code (the returning bank's for a return, the drawee's for a
    cheque, the issuer's for coins)."""
    instruction_id: str
    """The transfer's instruction id, the return's id, the presentment's or deposit's id."""
    kind: str
    """``transfer``, ``return``, ``cheque`` or ``coins``."""
    original_instruction_id: str
    """The transfer a return gives back; "" for a transfer."""
    end_to_end_id: str
    """The order: a transfer's end-to-end id, a return's original one."""
    amount: int
    """Amount in minor units."""
    status: str
    """PENDING, ACCEPTED or REJECTED."""


@dataclass(frozen=True)
class WindowPosition:
    """A bank's running position in a settlement window."""

    bank_code: str
    """The member bank."""
    net_minor: int
    """Accepted transfers received minus sent."""
    pending_out_minor: int
    """Transfers sent that the creditor bank has not answered."""


def hold_records(conn: sqlite3.Connection) -> list[HoldRecord]:
    """Every hold the issuer placed."""
    return [
        HoldRecord(*row)
        for row in conn.execute(
            "SELECT hold_id, order_id, amount, status, COALESCE(instruction_id, ''),"
            " refunded_minor, account_id, transaction_id FROM holds"
        )
    ]


def outgoing_records(conn: sqlite3.Connection) -> list[OutgoingRecord]:
    """Every credit transfer and payment return the bank sent."""
    return [
        OutgoingRecord(*row)
        for row in conn.execute(
            "SELECT instruction_id, kind, order_id, amount, settlement_state,"
            " COALESCE(original_instruction_id, ''), account_id FROM outgoing_transfers"
        )
    ]


def incoming_transfer_records(conn: sqlite3.Connection) -> list[IncomingTransferRecord]:
    """Every credit transfer the bank received."""
    return [
        IncomingTransferRecord(*row)
        for row in conn.execute(
            "SELECT debtor_agent, instruction_id, end_to_end_id, amount, status,"
            " COALESCE(account_id, '') FROM incoming_transfers"
        )
    ]


@dataclass(frozen=True)
class ChequeDepositRecord:
    """A cheque deposited at this bank (the acquirer's side)."""

    deposit_id: str
    """The deposit's id, also its presentment id."""
    drawee_bank_code: str
    """The bank the cheque is drawn on."""
    order_id: str
    """The order the cheque pays."""
    amount: int
    """The cheque's amount."""
    state: str
    """IN_CLEARING, PAID or RETURNED."""
    account_id: str
    """The merchant's account provisionally credited."""


@dataclass(frozen=True)
class ChequePaidRecord:
    """A cheque drawn on this bank and paid (the drawee's side)."""

    presentment_id: str
    """The presentment it was paid on (the acquirer's deposit id)."""
    presenting_agent: str
    """The bank that presented it (this bank for a cheque deposited here)."""
    serial: int
    """The cheque's serial."""
    amount: int
    """The amount debited from the drawer."""


def cheque_deposit_records(conn: sqlite3.Connection) -> list[ChequeDepositRecord]:
    """Every cheque deposited at the bank."""
    return [
        ChequeDepositRecord(*row)
        for row in conn.execute(
            "SELECT deposit_id, drawee_bank_code, order_id, amount, state, account_id"
            " FROM cheque_deposits ORDER BY created_at"
        )
    ]


def cheque_paid_records(conn: sqlite3.Connection) -> list[ChequePaidRecord]:
    """Every cheque drawn on the bank that it paid."""
    return [
        ChequePaidRecord(*row)
        for row in conn.execute(
            "SELECT presentment_id, presenting_agent, serial, amount FROM cheques_paid"
            " ORDER BY paid_at"
        )
    ]


@dataclass(frozen=True)
class CoinDepositRecord:
    """A merchant's coin deposit at this bank (the acquirer's side)."""

    deposit_id: str
    """The acquirer's id of the deposit, also the id the issuer takes it under."""
    issuing_bank_code: str
    """The bank that issued the coins."""
    order_id: str
    """The order the coins pay (the contract's order_id)."""
    amount: int
    """The coins' face values together."""
    state: str
    """PENDING, ACCEPTED or REJECTED."""
    account_id: str
    """The merchant's account, credited when ACCEPTED."""


@dataclass(frozen=True)
class CoinReceivedRecord:
    """A coin deposit presented to this bank as the coins' issuer."""

    presenting_agent: str
    """The acquirer that presented it (this bank for its own merchants' deposits)."""
    deposit_id: str
    """The acquirer's deposit id."""
    order_id: str
    """The order the coins paid, from the contract kept with the spent coins; "" for a
    deposit refused (no coin was spent)."""
    amount: int
    """The coins' face values together."""
    status: str
    """ACCEPTED or REJECTED."""


def coin_deposit_records(conn: sqlite3.Connection) -> list[CoinDepositRecord]:
    """Every coin deposit the bank's merchants made at it."""
    return [
        CoinDepositRecord(*row)
        for row in conn.execute(
            "SELECT deposit_id, issuing_bank_code, order_id, amount, state, account_id"
            " FROM coin_deposits ORDER BY created_at"
        )
    ]


def coin_received_records(conn: sqlite3.Connection) -> list[CoinReceivedRecord]:
    """Every deposit of its coins the bank took or refused."""
    contracts: dict[tuple[str, str], bytes] = {}
    for presenting, deposit_id, contract in conn.execute(
        "SELECT presenting_agent, deposit_id, contract FROM spent_coins"
    ):
        contracts.setdefault((presenting, deposit_id), contract)
    records = []
    for presenting, deposit_id, amount, status in conn.execute(
        "SELECT presenting_agent, deposit_id, amount, status FROM coin_deposits_received"
        " ORDER BY received_at"
    ):
        contract = contracts.get((presenting, deposit_id))
        order_id = cash_pb2.CoinContract.FromString(contract).order_id if contract else ""
        records.append(CoinReceivedRecord(presenting, deposit_id, order_id, amount, status))
    return records


def incoming_return_records(conn: sqlite3.Connection) -> list[IncomingReturnRecord]:
    """Every payment return the bank received."""
    return [
        IncomingReturnRecord(*row)
        for row in conn.execute(
            "SELECT returning_agent, return_id, original_instruction_id, amount, status,"
            " COALESCE(account_id, '') FROM incoming_returns"
        )
    ]


def settlement_records(conn: sqlite3.Connection) -> list[SettlementRecord]:
    """Every transfer, return, cheque presentment and coin deposit the settlement bank
    received."""
    records = []
    for payer, ident, kind, original, amount, status, blob in conn.execute(
        "SELECT debtor_agent, instruction_id, kind, COALESCE(original_instruction_id, ''),"
        " amount, status, message FROM settlement_transfers"
    ):
        # The table keeps the end-to-end id only inside the message.
        order_id = fields(parse(kind, blob)).end_to_end_id
        records.append(SettlementRecord(payer, ident, kind, original, order_id, amount, status))
    return records


def accepted_credit_transfers(conn: sqlite3.Connection, window_id: str) -> list[pb.CreditTransfer]:
    """A window's accepted credit transfers (not its returns), in the order they arrived."""
    return [
        pb.CreditTransfer.FromString(blob)
        for (blob,) in conn.execute(
            "SELECT message FROM settlement_transfers WHERE window_id = ? AND kind = ?"
            " AND status = ? ORDER BY created_at, instruction_id",
            (window_id, TRANSFER, _ACCEPTED),
        )
    ]


def window_positions(conn: sqlite3.Connection, window_id: str) -> list[WindowPosition]:
    """Every bank's running position in a window."""
    return [
        WindowPosition(*row)
        for row in conn.execute(
            "SELECT bank_code, net_minor, pending_out_minor FROM window_positions"
            " WHERE window_id = ?",
            (window_id,),
        )
    ]


def record_accepted_transfers(
    conn: sqlite3.Connection,
    window_id: str,
    transfers: Sequence[pb.CreditTransfer],
    now: dt.datetime,
) -> None:
    """Record transfers as received and accepted in a window, in one statement.

    Only the transfers' rows: the window's running positions are the caller's
    to keep (:func:`bank.windows.record_pending` and ``record_answer``).
    """
    stamp = to_iso(now)
    conn.executemany(
        "INSERT INTO settlement_transfers (debtor_agent, instruction_id, kind,"
        " original_instruction_id, request_hash, creditor_agent, amount, message, status,"
        " reason_code, ledger_transfer_id, window_id, created_at, decided_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                transfer.debtor_agent,
                transfer.instruction_id,
                TRANSFER,
                None,
                request_hash(transfer),
                transfer.creditor_agent,
                transfer.amount.amount_minor,
                transfer.SerializeToString(),
                _ACCEPTED,
                "",
                None,
                window_id,
                stamp,
                stamp,
            )
            for transfer in transfers
        ],
    )
