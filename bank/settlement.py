"""The settlement bank: member banks' reserves, moved gross or net.

Three kinds of interbank message settle here the same way: credit transfers
(pacs.008, issuer -> acquirer), payment returns (pacs.004, acquirer -> issuer,
referencing the transfer they return) and cheque presentments (acquirer ->
drawee, the money flowing from the drawee to the acquirer). Each is
identified by (paying agent, id), recorded PENDING, delivered to the bank
that decides it (the one credited, or for a cheque the drawee), and decided
by its answer:

- gross mode: the amount is earmarked at once as a pending ledger transfer
  between the two reserves; ACCEPTED posts it, REJECTED voids it.
- net mode: it joins the open settlement window, within the paying bank's net
  debit cap (:mod:`bank.windows`); reserves move only when the window closes.
- no answer: it stays PENDING; resubmission and the app's retry loop deliver
  it again (the receiving bank is idempotent by id).

Only money between two member banks settles here. A message whose receiving
bank is its paying bank, or that names one account as debtor and creditor, is
refused before anything is recorded (:func:`bank.messages.refuse_malformed`,
SAME_AGENT, SELF_TRANSFER), and so is an amount outside 1 to
:data:`payment.money.MAX_AMOUNT_MINOR` (FIELD_INVALID): a self-payment moves
no reserve, so delivering it would let the bank credit a holder with money
that no reserve backs.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from google.protobuf.message import Message
from interbank.v1 import settlement_pb2 as pb

from bank import ledger, windows
from bank.messages import (
    CHEQUE,
    COINS,
    RETURN,
    TRANSFER,
    Deliver,
    MessageFields,
    SettlementMessage,
    StatusAnswer,
    fields,
    parse,
    refuse_malformed,
)
from bank.opening import settlement_reserve
from payment import errors, money
from payment.clock import from_iso, timestamp, to_iso
from payment.clock import now as clock_now
from payment.config import NetworkConfig, Role, SettlementMode
from payment.logs import get_logger
from payment.storage import Store, request_hash

__all__ = ["Settlement"]

_log = get_logger("paynet.settlement")
_PENDING, _ACCEPTED, _REJECTED = "PENDING", "ACCEPTED", "REJECTED"


class Settlement:
    """SettlementService's domain over the settlement bank's store."""

    def __init__(self, store: Store, network: NetworkConfig, deliver: Deliver) -> None:
        self._store = store
        self._network = network
        self._deliver = deliver
        self._net = network.settlement.mode is SettlementMode.NET
        self._members = {
            n.bank_code for n in network.nodes_with_role(Role.BANK) if n.bank_code is not None
        }

    @property
    def net_mode(self) -> bool:
        """True when transfers settle in net settlement windows."""
        return self._net

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
        status, reason, window_id = await self._settle(
            transfer,
            now or clock_now(),
            (f"SubmitCreditTransfer|{caller_bank_code}", request.request_id, request),
        )
        return pb.SubmitCreditTransferResponse(
            instruction_id=transfer.instruction_id,
            status=pb.TransferStatus.Value(f"TRANSFER_STATUS_{status}"),
            reason_code=reason,
            window_id=window_id,
        )

    async def submit_return(
        self,
        request: pb.SubmitPaymentReturnRequest,
        caller_bank_code: str,
        *,
        now: dt.datetime | None = None,
    ) -> pb.SubmitPaymentReturnResponse:
        """Settle a return from the caller's bank of a transfer it received."""
        payment_return = request.payment_return
        if payment_return.returning_agent != caller_bank_code:
            raise errors.PermissionDenied(
                "RETURNING_AGENT_NOT_CALLER", "returning_agent must be the calling bank's own code"
            )
        self._validate(payment_return)
        if not payment_return.original_instruction_id:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                "payment_return.original_instruction_id is required",
                field="payment_return.original_instruction_id",
            )
        status, reason, window_id = await self._settle(
            payment_return,
            now or clock_now(),
            (f"SubmitPaymentReturn|{caller_bank_code}", request.request_id, request),
        )
        return pb.SubmitPaymentReturnResponse(
            return_id=payment_return.return_id,
            status=pb.TransferStatus.Value(f"TRANSFER_STATUS_{status}"),
            reason_code=reason,
            window_id=window_id,
        )

    async def present(
        self,
        request: pb.SubmitChequePresentmentRequest,
        caller_bank_code: str,
        *,
        now: dt.datetime | None = None,
    ) -> pb.SubmitChequePresentmentResponse:
        """Settle a cheque presented by the caller's bank to its drawee; a repeat returns
        (or completes) the first."""
        presentment = request.presentment
        if presentment.presenting_agent != caller_bank_code:
            raise errors.PermissionDenied(
                "PRESENTING_AGENT_NOT_CALLER",
                "presenting_agent must be the calling bank's own code",
            )
        self._validate(presentment)
        status, reason, window_id = await self._settle(
            presentment,
            now or clock_now(),
            (f"SubmitChequePresentment|{caller_bank_code}", request.request_id, request),
        )
        return pb.SubmitChequePresentmentResponse(
            presentment_id=presentment.presentment_id,
            status=pb.TransferStatus.Value(f"TRANSFER_STATUS_{status}"),
            reason_code=reason,
            window_id=window_id,
        )

    async def submit_coins(
        self,
        request: pb.SubmitCoinDepositRequest,
        caller_bank_code: str,
        *,
        now: dt.datetime | None = None,
    ) -> pb.SubmitCoinDepositResponse:
        """Settle a coin deposit sent by the caller's bank to the coins' issuer; a repeat
        returns (or completes) the first, with the issuer's double-spend proof if any."""
        deposit = request.deposit
        if deposit.presenting_agent != caller_bank_code:
            raise errors.PermissionDenied(
                "PRESENTING_AGENT_NOT_CALLER",
                "presenting_agent must be the calling bank's own code",
            )
        self._validate(deposit)
        status, reason, window_id = await self._settle(
            deposit,
            now or clock_now(),
            (f"SubmitCoinDeposit|{caller_bank_code}", request.request_id, request),
        )
        response = pb.SubmitCoinDepositResponse(
            deposit_id=deposit.deposit_id,
            status=pb.TransferStatus.Value(f"TRANSFER_STATUS_{status}"),
            reason_code=reason,
            window_id=window_id,
        )
        detail = await self._store.read(
            lambda conn: conn.execute(
                "SELECT detail FROM settlement_transfers WHERE debtor_agent = ?"
                " AND instruction_id = ?",
                (deposit.issuing_agent, deposit.deposit_id),
            ).fetchone()
        )
        if detail is not None and detail[0]:
            response.double_spend_proof.ParseFromString(detail[0])
        return response

    async def status(
        self, instruction_id: str, caller_bank_code: str
    ) -> pb.GetTransferStatusResponse:
        """A transfer's (or return's) status, told only to the two banks it concerns."""
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
        """Deliver every PENDING message again; returns how many got decided."""
        keys = await self._store.read(
            lambda conn: conn.execute(
                "SELECT debtor_agent, instruction_id FROM settlement_transfers"
                " WHERE status = ? ORDER BY created_at",
                (_PENDING,),
            ).fetchall()
        )
        decided = 0
        for payer, message_id in keys:
            async with self._store.exclusive(f"settle\x00{payer}\x00{message_id}"):
                status, _ = await self._forward((payer, message_id))
            if status != _PENDING:
                decided += 1
                _log.info("transfer.decided", instruction_id=message_id, status=status)
        return decided

    async def get_window(self, window_id: str) -> pb.SettlementWindow:
        """A settlement window (the open one when window_id is empty)."""
        windows.require_net_mode(self._net)

        def query(conn: sqlite3.Connection) -> windows.Window | None:
            return windows.window(conn, window_id or None)

        found = await self._store.read(query)
        if found is None:
            if window_id:
                raise errors.NotFound(
                    "SETTLEMENT_WINDOW_NOT_FOUND", f"no settlement window {window_id!r}"
                )
            # No transfer has arrived yet: open the first window to report it.
            found = await self._store.transaction(
                lambda conn: windows.window(conn, windows.open_window(conn, clock_now()))
            )
            assert found is not None
        return self._window_proto(found)

    async def close_window(self, *, now: dt.datetime | None = None) -> pb.SettlementWindow:
        """Close the open window, net it and move the net amounts between reserves."""
        windows.require_net_mode(self._net)
        moment = now or clock_now()
        async with self._store.exclusive("settlement-window"):
            closed = await self._store.transaction(
                lambda conn: windows.close_open_window(conn, moment)
            )
            await self._store.transaction(
                lambda conn: windows.settle_window(conn, closed, self._network.currency, moment)
            )
            found = await self._store.read(lambda conn: windows.window(conn, closed))
        assert found is not None
        _log.info(
            "window.settled",
            window_id=found.window_id,
            transfers=found.transfer_count,
            positions=found.positions,
        )
        return self._window_proto(found)

    async def settle_closed_windows(self) -> int:
        """Settle windows left CLOSED by a crash between closing and settling."""
        if not self._net:
            return 0
        async with self._store.exclusive("settlement-window"):
            closed = await self._store.read(
                lambda conn: [
                    r[0]
                    for r in conn.execute(
                        "SELECT window_id FROM settlement_windows WHERE status = ?"
                        " ORDER BY closed_at",
                        (windows.CLOSED,),
                    )
                ]
            )
            for window_id in closed:
                await self._settle_window(window_id)
        return len(closed)

    async def _settle_window(self, window_id: str) -> None:
        def step(conn: sqlite3.Connection) -> None:
            windows.settle_window(conn, window_id, self._network.currency, clock_now())

        await self._store.transaction(step)

    async def close_if_due(self, now: dt.datetime | None = None) -> bool:
        """Close the open window when it has transfers and its time is up (net mode), as of
        now (the clock's time unless given)."""
        seconds = self._network.settlement.window_seconds
        if not self._net or seconds <= 0:
            return False
        current = await self._store.read(lambda conn: windows.window(conn, None))
        if current is None or current.transfer_count == 0:
            return False
        age = (now or clock_now()) - from_iso(current.opened_at)
        if age.total_seconds() < seconds:
            return False
        await self.close_window()
        return True

    def _window_proto(self, found: windows.Window) -> pb.SettlementWindow:
        message = pb.SettlementWindow(
            window_id=found.window_id,
            status=pb.SettlementWindowStatus.Value(f"SETTLEMENT_WINDOW_STATUS_{found.status}"),
            opened_at=timestamp(found.opened_at),
            transfer_count=found.transfer_count,
            positions=[
                pb.NetPosition(bank_code=bank, net_minor=net, currency_code=self._network.currency)
                for bank, net in sorted(found.positions.items())
            ],
        )
        for field, moment in (("closed_at", found.closed_at), ("settled_at", found.settled_at)):
            stamp = timestamp(moment)
            if stamp is not None:
                getattr(message, field).CopyFrom(stamp)
        return message

    def _validate(self, message: SettlementMessage) -> None:
        """FIELD_INVALID for a missing id, a foreign currency or no receiving bank, then
        whatever :func:`refuse_malformed` refuses (amount range, SAME_AGENT, SELF_TRANSFER)."""
        entry = fields(message)
        id_field = {
            "transfer": "instruction_id",
            "payment_return": "return_id",
            "presentment": "presentment_id",
            "deposit": "deposit_id",
        }[entry.path]
        problems = {
            f"{entry.path}.{id_field}": not entry.message_id,
            f"{entry.path}.amount": entry.currency != self._network.currency,
            f"{entry.path}.receiving_agent": not entry.payee,
        }
        if entry.kind == CHEQUE:
            problems[f"{entry.path}.drawee_agent"] = not entry.payer
        if entry.kind == COINS:
            problems[f"{entry.path}.issuing_agent"] = not entry.payer
        for field, bad in problems.items():
            if bad:
                raise errors.InvalidArgument("FIELD_INVALID", f"{field} is invalid", field=field)
        refuse_malformed(message)

    async def _settle(
        self,
        message: SettlementMessage,
        now: dt.datetime,
        claim: tuple[str, str, Message],
    ) -> tuple[str, str, str]:
        """Record (once) and settle a message; claim is (scope, request_id, request)."""
        entry = fields(message)
        key = (entry.payer, entry.message_id)
        scope, request_id, request = claim
        async with self._store.exclusive(f"settle\x00{key[0]}\x00{key[1]}"):
            status, reason, window_id = await self._store.claimed_transaction(
                scope, request_id, request, lambda conn: self._record(conn, message, entry, now)
            )
            if status == _PENDING:
                status, reason = await self._forward(key)
        return status, reason, window_id

    def _record(
        self,
        conn: sqlite3.Connection,
        message: SettlementMessage,
        entry: MessageFields,
        now: dt.datetime,
    ) -> tuple[str, str, str]:
        digest = request_hash(message)
        row = conn.execute(
            "SELECT request_hash, status, reason_code, window_id FROM settlement_transfers"
            " WHERE debtor_agent = ? AND instruction_id = ?",
            (entry.payer, entry.message_id),
        ).fetchone()
        if row is not None:
            if bytes(row[0]) != digest:
                raise errors.AlreadyExists(
                    "IDEMPOTENCY_KEY_REUSED",
                    f"this {entry.kind} id was already submitted with different content",
                    instruction_id=entry.message_id,
                )
            return str(row[1]), str(row[2]), str(row[3] or "")
        status, reason, ledger_id, window_id = _PENDING, "", None, None
        refusal = self._refusal(conn, entry)
        if refusal is not None:
            status, reason = _REJECTED, refusal
        elif self._net:
            window_id = windows.open_window(conn, now)
            cap = self._network.settlement.cap_of(entry.payer)
            refusal = windows.cap_refusal(conn, window_id, entry.payer, entry.amount, cap)
            if refusal is not None:
                status, reason, window_id = _REJECTED, refusal, None
            else:
                windows.record_pending(conn, window_id, entry.payer, entry.amount)
        else:
            # Earmarked, not posted: a rejection then leaves the reserves untouched.
            try:
                ledger_id = ledger.transfer(
                    conn,
                    settlement_reserve(entry.payer),
                    settlement_reserve(entry.payee),
                    entry.amount,
                    entry.currency,
                    now=now,
                    order_id=entry.end_to_end_id,
                    description=entry.message_id,
                    pending=True,
                )
            except ledger.LimitExceeded:
                status, reason = _REJECTED, "INSUFFICIENT_RESERVE"
            except money.AmountOverflow:
                status, reason = _REJECTED, money.AMOUNT_OVERFLOW
        conn.execute(
            "INSERT INTO settlement_transfers (debtor_agent, instruction_id, kind,"
            " original_instruction_id, request_hash, creditor_agent, amount, message, status,"
            " reason_code, ledger_transfer_id, window_id, created_at, decided_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.payer,
                entry.message_id,
                entry.kind,
                entry.original_instruction_id,
                digest,
                entry.payee,
                entry.amount,
                message.SerializeToString(),
                status,
                reason,
                ledger_id,
                window_id,
                to_iso(now),
                to_iso(now) if status != _PENDING else None,
            ),
        )
        if status == _REJECTED:
            _log.info("transfer.rejected", instruction_id=entry.message_id, reason=reason)
        return status, reason, window_id or ""

    def _refusal(self, conn: sqlite3.Connection, entry: MessageFields) -> str | None:
        if entry.payee not in self._members:
            return "UNKNOWN_CREDITOR_AGENT"
        if entry.kind == CHEQUE and entry.payer not in self._members:
            return "UNKNOWN_DRAWEE_AGENT"
        if entry.kind == COINS and entry.payer not in self._members:
            return "UNKNOWN_ISSUING_AGENT"
        if entry.kind != RETURN:
            return None
        original = conn.execute(
            "SELECT amount FROM settlement_transfers WHERE debtor_agent = ?"
            " AND instruction_id = ? AND kind = ? AND creditor_agent = ? AND status = ?",
            (entry.payee, entry.original_instruction_id, TRANSFER, entry.payer, _ACCEPTED),
        ).fetchone()
        if original is None:
            return "ORIGINAL_TRANSFER_NOT_FOUND"
        (returned,) = conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM settlement_transfers"
            " WHERE original_instruction_id = ? AND kind = ? AND status != ?",
            (entry.original_instruction_id, RETURN, _REJECTED),
        ).fetchone()
        if returned + entry.amount > original[0]:
            return "RETURN_EXCEEDS_ORIGINAL"
        return None

    async def _forward(self, key: tuple[str, str]) -> tuple[str, str]:
        row = await self._store.read(
            lambda conn: conn.execute(
                "SELECT kind, message, status, reason_code FROM settlement_transfers"
                " WHERE debtor_agent = ? AND instruction_id = ?",
                key,
            ).fetchone()
        )
        if row[2] != _PENDING:
            return str(row[2]), str(row[3])
        message = parse(row[0], row[1])
        answer = await self._deliver(fields(message).receiver, message)
        if answer is None or answer[0] not in (_ACCEPTED, _REJECTED):
            return _PENDING, ""
        return await self._store.transaction(lambda conn: self._decide(conn, key, answer))

    def _decide(
        self, conn: sqlite3.Connection, key: tuple[str, str], answer: StatusAnswer
    ) -> tuple[str, str]:
        row = conn.execute(
            "SELECT status, reason_code, ledger_transfer_id, window_id, creditor_agent, amount"
            " FROM settlement_transfers WHERE debtor_agent = ? AND instruction_id = ?",
            key,
        ).fetchone()
        if row[0] != _PENDING:
            return str(row[0]), str(row[1])
        now = clock_now()
        accepted = answer[0] == _ACCEPTED
        if row[2] is not None:
            if accepted:
                ledger.post_pending(conn, row[2], now=now)
            else:
                ledger.release_pending(conn, row[2])
        if row[3] is not None:
            windows.record_answer(conn, row[3], key[0], row[4], row[5], accepted=accepted)
        status = _ACCEPTED if accepted else _REJECTED
        reason = "" if accepted else answer[1] or "REJECTED_BY_CREDITOR_AGENT"
        conn.execute(
            "UPDATE settlement_transfers SET status = ?, reason_code = ?, decided_at = ?"
            " WHERE debtor_agent = ? AND instruction_id = ?",
            (status, reason, to_iso(now), *key),
        )
        return status, reason

    async def keep_detail(self, payer: str, message_id: str, detail: bytes) -> None:
        """Keep what the deciding bank said beside its answer (a coin deposit's
        double-spend proof), for the sender's resubmissions to read."""
        await self._store.transaction(
            lambda conn: conn.execute(
                "UPDATE settlement_transfers SET detail = ? WHERE debtor_agent = ?"
                " AND instruction_id = ?",
                (detail, payer, message_id),
            )
        )
