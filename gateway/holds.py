"""A recorded transaction's hold at its issuer: look it up, capture it, void it.

Capture and void relay to the issuer the hold of a transaction the calling
merchant owns. Each is noted as a pending call before the issuer is asked, so
one interrupted by a crash or a lost answer is finished later
(:mod:`gateway.recovery`); a definite refusal ends the note, as it is decided.
Each call carries the same request_id every time it is asked, so the issuer
replays what it did, and the deadline of ``[timeouts] node_call_seconds``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from interbank.v1 import authorization_pb2

from gateway import store as records
from gateway.issuers import IssuerLookup
from gateway.store import TransactionRecord, TransactionState
from payment import errors
from payment.config import NetworkConfig
from payment.errors import outcome_unknown, relayed
from payment.logs import get_logger
from payment.storage import Store

if TYPE_CHECKING:
    from interbank.v1.authorization_pb2_grpc import IssuerServiceAsyncStub

__all__ = ["Holds", "capture_response"]

T = TypeVar("T")

_log = get_logger("paynet.gateway")


class Holds:
    """The record of each transaction and the calls on its hold at the issuer."""

    def __init__(self, store: Store, network: NetworkConfig, issuers: IssuerLookup) -> None:
        self._store = store
        self._network = network
        self._issuers = issuers
        self._call_timeout_s = network.timeouts.node_call_seconds

    async def transaction(self, transaction_id: str, merchant_name: str) -> TransactionRecord:
        """The merchant's own transaction; NotFound(TRANSACTION_NOT_FOUND) for any other."""
        record = await self._store.read(lambda conn: records.load_transaction(conn, transaction_id))
        # Another merchant's transaction is reported as missing: its existence is not theirs.
        if record is None or record.merchant_name != merchant_name:
            raise errors.NotFound(
                "TRANSACTION_NOT_FOUND",
                f"no transaction {transaction_id!r} for this merchant",
                transaction_id=transaction_id,
            )
        return record

    async def held(self, transaction_id: str, merchant_name: str, reason: str) -> TransactionRecord:
        """The merchant's transaction with a hold at the issuer; FailedPrecondition(reason)
        for one without."""
        if not transaction_id:
            raise errors.InvalidArgument(
                "FIELD_INVALID", "transaction_id is required", field="transaction_id"
            )
        record = await self.transaction(transaction_id, merchant_name)
        if record.state is not TransactionState.HELD:
            raise errors.FailedPrecondition(
                reason,
                f"transaction {transaction_id!r} has no hold at the issuer",
                transaction_id=transaction_id,
                state=str(record.state),
            )
        return record

    def issuer_of(self, record: TransactionRecord) -> IssuerServiceAsyncStub:
        """The IssuerService of the transaction's issuer."""
        issuer = self._network.bank_by_code(record.issuer_bank_code)
        if issuer is None:
            raise errors.FailedPrecondition(
                "UNKNOWN_BANK_CODE",
                "the transaction's issuer is no longer in the network",
                bank_code=record.issuer_bank_code,
            )
        return self._issuers(issuer)

    async def look_up_hold(
        self, issuer: IssuerServiceAsyncStub, transaction_id: str
    ) -> authorization_pb2.GetHoldResponse | None:
        """The issuer's hold for the transaction, or None if it has none (HOLD_NOT_FOUND).

        Any other failure is raised: the hold is then still unknown.
        """
        try:
            found: authorization_pb2.GetHoldResponse = await relayed(
                issuer.GetHold(
                    authorization_pb2.GetHoldRequest(transaction_id=transaction_id),
                    timeout=self._call_timeout_s,
                )
            )
        except errors.PaynetError as exc:
            if exc.reason == "HOLD_NOT_FOUND":
                return None
            raise
        return found

    async def capture(
        self, transaction_id: str, merchant_name: str
    ) -> authorization_pb2.CapturePaymentResponse:
        """Post the transaction's hold at its issuer."""
        record = await self.held(transaction_id, merchant_name, "HOLD_NOT_CAPTURABLE")
        await self._store.transaction(
            lambda conn: records.begin_call(conn, transaction_id, "capture")
        )
        reply = await self._ending_if_refused(transaction_id, "capture", self.capture_hold(record))
        return capture_response(reply)

    async def capture_hold(
        self, record: TransactionRecord
    ) -> authorization_pb2.CaptureHoldResponse:
        """CaptureHold at the issuer (a retry replays) and record its answer."""
        transaction_id = record.transaction_id
        reply: authorization_pb2.CaptureHoldResponse = await relayed(
            self.issuer_of(record).CaptureHold(
                authorization_pb2.CaptureHoldRequest(
                    request_id=f"capture:{transaction_id}", hold_id=record.hold_id
                ),
                timeout=self._call_timeout_s,
            )
        )

        def done(conn: sqlite3.Connection) -> None:
            records.record_capture(conn, transaction_id, reply.hold_status, reply.instruction_id)
            records.end_call(conn, transaction_id, "capture")

        await self._store.transaction(done)
        _log.info(
            "capture.done",
            transaction_id=transaction_id,
            hold_id=record.hold_id,
            instruction_id=reply.instruction_id,
        )
        return reply

    async def void(
        self, transaction_id: str, merchant_name: str
    ) -> authorization_pb2.VoidPaymentResponse:
        """Release the transaction's hold at its issuer."""
        record = await self.held(transaction_id, merchant_name, "HOLD_NOT_VOIDABLE")
        await self._store.transaction(lambda conn: records.begin_call(conn, transaction_id, "void"))
        return authorization_pb2.VoidPaymentResponse(
            hold_status=await self._ending_if_refused(
                transaction_id, "void", self.void_hold(record)
            )
        )

    async def void_hold(self, record: TransactionRecord) -> authorization_pb2.HoldStatus.ValueType:
        """VoidHold at the issuer (a retry replays) and record its answer."""
        transaction_id = record.transaction_id
        reply: authorization_pb2.VoidHoldResponse = await relayed(
            self.issuer_of(record).VoidHold(
                authorization_pb2.VoidHoldRequest(
                    request_id=f"void:{transaction_id}", hold_id=record.hold_id
                ),
                timeout=self._call_timeout_s,
            )
        )

        def done(conn: sqlite3.Connection) -> None:
            records.set_hold_status(conn, transaction_id, reply.hold_status)
            records.end_call(conn, transaction_id, "void")

        await self._store.transaction(done)
        _log.info("void.done", transaction_id=transaction_id, hold_id=record.hold_id)
        return reply.hold_status

    async def _ending_if_refused(self, transaction_id: str, action: str, call: Awaitable[T]) -> T:
        """The issuer's answer; a definite refusal also ends the pending call (it is decided)."""
        try:
            return await call
        except errors.PaynetError as exc:
            if not outcome_unknown(exc):
                await self._store.transaction(
                    lambda conn: records.end_call(conn, transaction_id, action)
                )
            raise


def capture_response(
    reply: authorization_pb2.CaptureHoldResponse,
) -> authorization_pb2.CapturePaymentResponse:
    """The issuer's capture, as the merchant is told it."""
    return authorization_pb2.CapturePaymentResponse(
        hold_status=reply.hold_status,
        instruction_id=reply.instruction_id,
        settlement_state=reply.settlement_state,
        settlement_reason=reply.settlement_reason,
    )
