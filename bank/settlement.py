"""The settlement bank: member banks' reserves, moved gross per credit transfer.

A submitted transfer is recorded PENDING and its amount earmarked on the
debtor bank's reserve as a pending ledger transfer to the creditor bank's
reserve, in one transaction. It is then delivered to the creditor bank:

- ACCEPTED: the pending transfer is posted; the reserves have moved.
- REJECTED: the pending transfer is voided; no reserves moved (pacs.002 RJCT).
- no answer: it stays PENDING; resubmission and the app's retry loop deliver
  it again (the creditor bank is idempotent by instruction id).

A transfer between two accounts at the same bank moves no reserves and is
only delivered. Transfers are identified by (debtor agent, instruction id).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable

from interbank.v1 import settlement_pb2 as pb

from bank import ledger
from bank.opening import settlement_reserve
from payment import errors
from payment.clock import now as clock_now
from payment.clock import to_iso
from payment.config import NetworkConfig, Role
from payment.logs import get_logger
from payment.storage import Store, request_hash

__all__ = ["DeliverTransfer", "Settlement"]

DeliverTransfer = Callable[
    [str, pb.ReceiveCreditTransferRequest], Awaitable[pb.ReceiveCreditTransferResponse | None]
]
"""Delivers a transfer to the bank with a code; None when the outcome is unknown."""

_log = get_logger("paynet.settlement")
_PENDING, _ACCEPTED, _REJECTED = "PENDING", "ACCEPTED", "REJECTED"


class Settlement:
    """SettlementService's domain over the settlement bank's store."""

    def __init__(self, store: Store, network: NetworkConfig, deliver: DeliverTransfer) -> None:
        self._store = store
        self._network = network
        self._deliver = deliver
        self._members = {
            n.bank_code for n in network.nodes_with_role(Role.BANK) if n.bank_code is not None
        }

    async def submit(
        self,
        request: pb.SubmitCreditTransferRequest,
        caller_bank_code: str,
        *,
        now: dt.datetime | None = None,
    ) -> pb.SubmitCreditTransferResponse:
        """Settle a transfer from the caller's bank; a repeat returns (or completes) the first."""
        transfer = request.transfer
        if transfer.debtor_agent != caller_bank_code:
            raise errors.PermissionDenied(
                "DEBTOR_AGENT_NOT_CALLER", "debtor_agent must be the calling bank's own code"
            )
        self._validate(transfer)
        moment = now or clock_now()
        key = (transfer.debtor_agent, transfer.instruction_id)
        async with self._store.exclusive(f"settle\x00{key[0]}\x00{key[1]}"):
            status, reason = await self._store.transaction(
                lambda conn: self._record(conn, transfer, moment)
            )
            if status == _PENDING:
                status, reason = await self._forward(key)
        return pb.SubmitCreditTransferResponse(
            instruction_id=transfer.instruction_id,
            status=pb.TransferStatus.Value(f"TRANSFER_STATUS_{status}"),
            reason_code=reason,
        )

    async def status(
        self, instruction_id: str, caller_bank_code: str
    ) -> pb.GetTransferStatusResponse:
        """A transfer's status, told only to its debtor or creditor agent."""
        row = await self._store.read(
            lambda conn: conn.execute(
                "SELECT status, reason_code FROM settlement_transfers WHERE instruction_id = ?"
                " AND (debtor_agent = ? OR creditor_agent = ?) ORDER BY debtor_agent = ? DESC",
                (instruction_id, caller_bank_code, caller_bank_code, caller_bank_code),
            ).fetchone()
        )
        if row is None:
            raise errors.NotFound("TRANSACTION_NOT_FOUND", "no such transfer for this bank")
        return pb.GetTransferStatusResponse(
            instruction_id=instruction_id,
            status=pb.TransferStatus.Value(f"TRANSFER_STATUS_{row[0]}"),
            reason_code=row[1],
        )

    async def forward_pending(self) -> int:
        """Deliver every PENDING transfer again; returns how many got decided."""
        keys = await self._store.read(
            lambda conn: conn.execute(
                "SELECT debtor_agent, instruction_id FROM settlement_transfers"
                " WHERE status = ? ORDER BY created_at",
                (_PENDING,),
            ).fetchall()
        )
        decided = 0
        for debtor, instruction_id in keys:
            async with self._store.exclusive(f"settle\x00{debtor}\x00{instruction_id}"):
                status, _ = await self._forward((debtor, instruction_id))
            if status != _PENDING:
                decided += 1
                _log.info("transfer.decided", instruction_id=instruction_id, status=status)
        return decided

    def _validate(self, transfer: pb.CreditTransfer) -> None:
        problems = {
            "transfer.instruction_id": not transfer.instruction_id,
            "transfer.amount": transfer.amount.amount_minor <= 0
            or transfer.amount.currency_code != self._network.currency,
            "transfer.creditor_agent": not transfer.creditor_agent,
        }
        for field, bad in problems.items():
            if bad:
                raise errors.InvalidArgument("FIELD_INVALID", f"{field} is invalid", field=field)

    def _record(
        self, conn: sqlite3.Connection, transfer: pb.CreditTransfer, now: dt.datetime
    ) -> tuple[str, str]:
        digest = request_hash(transfer)
        row = conn.execute(
            "SELECT request_hash, status, reason_code FROM settlement_transfers"
            " WHERE debtor_agent = ? AND instruction_id = ?",
            (transfer.debtor_agent, transfer.instruction_id),
        ).fetchone()
        if row is not None:
            if bytes(row[0]) != digest:
                raise errors.AlreadyExists(
                    "IDEMPOTENCY_KEY_REUSED",
                    "this instruction_id was already submitted with different content",
                    instruction_id=transfer.instruction_id,
                )
            return str(row[1]), str(row[2])
        status, reason, ledger_id = _PENDING, "", None
        debtor, creditor = transfer.debtor_agent, transfer.creditor_agent
        if creditor not in self._members:
            status, reason = _REJECTED, "UNKNOWN_CREDITOR_AGENT"
        elif creditor != debtor:
            # Earmarked, not posted: a rejection then leaves the reserves untouched.
            try:
                ledger_id = ledger.transfer(
                    conn,
                    settlement_reserve(debtor),
                    settlement_reserve(creditor),
                    transfer.amount.amount_minor,
                    transfer.amount.currency_code,
                    now=now,
                    order_id=transfer.end_to_end_id,
                    description=transfer.instruction_id,
                    pending=True,
                )
            except ledger.LimitExceeded:
                status, reason = _REJECTED, "INSUFFICIENT_RESERVE"
        conn.execute(
            "INSERT INTO settlement_transfers (debtor_agent, instruction_id, request_hash,"
            " creditor_agent, amount, transfer, status, reason_code, ledger_transfer_id,"
            " created_at, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                debtor,
                transfer.instruction_id,
                digest,
                creditor,
                transfer.amount.amount_minor,
                transfer.SerializeToString(),
                status,
                reason,
                ledger_id,
                to_iso(now),
                to_iso(now) if status != _PENDING else None,
            ),
        )
        return status, reason

    async def _forward(self, key: tuple[str, str]) -> tuple[str, str]:
        row = await self._store.read(
            lambda conn: conn.execute(
                "SELECT transfer, status, reason_code FROM settlement_transfers"
                " WHERE debtor_agent = ? AND instruction_id = ?",
                key,
            ).fetchone()
        )
        if row[1] != _PENDING:
            return str(row[1]), str(row[2])
        transfer = pb.CreditTransfer.FromString(row[0])
        answer = await self._deliver(
            transfer.creditor_agent,
            pb.ReceiveCreditTransferRequest(request_id=transfer.instruction_id, transfer=transfer),
        )
        if answer is None or answer.status not in (
            pb.TRANSFER_STATUS_ACCEPTED,
            pb.TRANSFER_STATUS_REJECTED,
        ):
            return _PENDING, ""
        return await self._store.transaction(lambda conn: _decide(conn, key, answer))


def _decide(
    conn: sqlite3.Connection, key: tuple[str, str], answer: pb.ReceiveCreditTransferResponse
) -> tuple[str, str]:
    row = conn.execute(
        "SELECT status, reason_code, ledger_transfer_id FROM settlement_transfers"
        " WHERE debtor_agent = ? AND instruction_id = ?",
        key,
    ).fetchone()
    if row[0] != _PENDING:
        return str(row[0]), str(row[1])
    now = clock_now()
    accepted = answer.status == pb.TRANSFER_STATUS_ACCEPTED
    if row[2] is not None:
        if accepted:
            ledger.post_pending(conn, row[2], now=now)
        else:
            ledger.release_pending(conn, row[2])
    status = _ACCEPTED if accepted else _REJECTED
    reason = "" if accepted else answer.reason_code or "REJECTED_BY_CREDITOR_AGENT"
    conn.execute(
        "UPDATE settlement_transfers SET status = ?, reason_code = ?, decided_at = ?"
        " WHERE debtor_agent = ? AND instruction_id = ?",
        (status, reason, to_iso(now), *key),
    )
    return status, reason
