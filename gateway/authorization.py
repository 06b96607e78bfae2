"""The gateway's payment domain: authorize, capture, void and report transactions.

Authorization opens and checks the sealed payment (:mod:`gateway.checks`)
before anything is recorded or any peer is called; then it records the
transaction, asks the issuer for a hold and records the hold (and, for a sale,
the capture the issuer did with it). Authorizations for one issuer that queue
while a call to it is in flight go together in one AuthorizeHolds call
(:class:`payment.batching.Coalescer`), each answered as if alone. Capture and
void relay to the issuer the hold of a transaction the calling merchant owns;
each is noted as a pending call before the issuer is asked, so one interrupted
by a crash is finished on restart (:meth:`PaymentGateway.resume_pending_calls`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import sqlite3
from collections.abc import Awaitable, Sequence
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import grpc
from interbank.v1 import authorization_pb2

from gateway import store as records
from gateway.checks import GatewayKey, check_fresh, check_payment
from gateway.issuers import CALL_TIMEOUT_S, AcquirerLookup, IssuerLookup
from gateway.store import TransactionRecord, TransactionState
from payment import errors, ids
from payment.batching import Coalescers, from_entry_error
from payment.clock import now, to_iso
from payment.config import NetworkConfig, NodeConfig
from payment.errors import relayed
from payment.logs import get_logger
from payment.storage import Store

if TYPE_CHECKING:
    from interbank.v1.authorization_pb2_grpc import IssuerServiceAsyncStub

__all__ = ["PaymentGateway"]

T = TypeVar("T")

_log = get_logger("paynet.gateway")

_APPROVED = authorization_pb2.AUTHORIZATION_DECISION_APPROVED
_CHALLENGED = authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
_OUTCOME_UNKNOWN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
AUTHORIZE_ATTEMPTS = 3
"""AuthorizeHold calls (the first and its retries) before the outcome is resolved by asking."""
RETRY_BASE_DELAY_S = 0.2
"""First retry delay; doubled each time, with up to 100% jitter."""
_HOLD_STATUS_OF_DECISION = {
    _APPROVED: authorization_pb2.HOLD_STATUS_AUTHORIZED,
    _CHALLENGED: authorization_pb2.HOLD_STATUS_CHALLENGE_PENDING,
}


class PaymentGateway:
    """Opens, checks and routes payments; keeps a record of each transaction."""

    def __init__(
        self,
        store: Store,
        network: NetworkConfig,
        key: GatewayKey,
        issuers: IssuerLookup,
        acquirers: AcquirerLookup,
    ) -> None:
        self._store = store
        self._network = network
        self._key = key
        self._issuers = issuers
        self._acquirers = acquirers
        # Per issuer (by node name): its queue of authorizations, sent in AuthorizeHolds calls.
        self._authorizations: Coalescers[
            str, authorization_pb2.AuthorizeHoldRequest, authorization_pb2.AuthorizeHoldResult
        ] = Coalescers(self._send_authorizations, "AuthorizeHolds")

    async def authorize(
        self, request: authorization_pb2.AuthorizePaymentRequest, merchant_name: str
    ) -> authorization_pb2.AuthorizePaymentResponse:
        """Check the sealed payment, record the transaction and ask its issuer for a hold.

        Issuer refusals are relayed with their code and reason; the transaction
        is then recorded as failed.
        """
        checked = check_payment(request, merchant_name, self._network, self._key)
        window_s = self._network.limits.instruction_window_seconds
        check_fresh(checked, now(), window_s)
        # Derived from the merchant's request: a retried request, even after a crash of this
        # node, reuses the transaction and the issuer's idempotency key, never a second hold.
        transaction_id = ids.transaction_id(merchant_name, request.request_id)
        record = TransactionRecord(
            transaction_id=transaction_id,
            order_id=checked.order_id,
            merchant_name=merchant_name,
            amount_minor=checked.amount_minor,
            currency_code=checked.currency_code,
            issuer_bank_code=checked.issuer.bank_code or "",
            state=TransactionState.AUTHORIZING,
        )
        # The nonce is remembered for the instruction's whole window: until then it could
        # still be fresh enough to be replayed.
        nonce_expires = to_iso(checked.created_at + dt.timedelta(seconds=window_s))

        def record_payment(conn: sqlite3.Connection) -> None:
            # One transaction: a replay leaves neither a nonce nor a record behind.
            records.claim_nonce(conn, checked.nonce, transaction_id, nonce_expires)
            records.insert_transaction(conn, record)

        # Durable before the issuer is asked, so a hold never exists without our record.
        await self._store.transaction(record_payment)
        hold_request = authorization_pb2.AuthorizeHoldRequest(
            request_id=f"authorize:{transaction_id}",
            transaction_id=transaction_id,
            instruction=checked.instruction,
            dual_signature=checked.dual_signature,
            merchant_name=merchant_name,
            creditor_account=checked.creditor_account,
            capture=request.capture,
        )
        try:
            reply = await self._authorize_hold(checked.issuer, hold_request)
            hold_status = _HOLD_STATUS_OF_DECISION.get(reply.decision)
            if hold_status is None:
                raise errors.Internal(
                    "ISSUER_ANSWER_INVALID", "the issuer answered with no decision"
                )
        except errors.PaynetError as exc:
            reason = exc.reason
            await self._store.transaction(
                lambda conn: records.mark_failed(conn, transaction_id, reason)
            )
            _log.info(
                "authorization.failed",
                transaction_id=transaction_id,
                order_id=checked.order_id,
                merchant=merchant_name,
                issuer_bank_code=record.issuer_bank_code,
                reason=reason,
            )
            raise
        captured = (
            reply.capture if reply.decision == _APPROVED and reply.HasField("capture") else None
        )

        def record_reply(conn: sqlite3.Connection) -> None:
            records.record_hold(conn, transaction_id, reply.hold_id, hold_status)
            if captured is not None:
                records.record_capture(
                    conn, transaction_id, captured.hold_status, captured.instruction_id
                )

        await self._store.transaction(record_reply)
        _log.info(
            "authorization.held",
            transaction_id=transaction_id,
            order_id=checked.order_id,
            merchant=merchant_name,
            issuer_bank_code=record.issuer_bank_code,
            hold_id=reply.hold_id,
            decision=authorization_pb2.AuthorizationDecision.Name(reply.decision),
            instruction_id=captured.instruction_id if captured is not None else None,
        )
        response = authorization_pb2.AuthorizePaymentResponse(
            transaction_id=transaction_id, decision=reply.decision
        )
        if reply.HasField("challenge"):
            response.challenge.CopyFrom(reply.challenge)
        if captured is not None:
            response.capture.CopyFrom(_capture_response(captured))
        return response

    async def _authorize_hold(
        self, bank: NodeConfig, hold_request: authorization_pb2.AuthorizeHoldRequest
    ) -> authorization_pb2.AuthorizeHoldResponse:
        """AuthorizeHold, retried while its outcome is unknown, then resolved by asking.

        The request goes to the issuer in an AuthorizeHolds batch with the
        other authorizations queued for that issuer; its entry is answered as
        the single call would be, and a failure of the whole call is its own.
        A retry carries the same request_id, so the issuer replays its first
        answer instead of placing a second hold. If the outcome is still unknown
        after the retries, the gateway asks the issuer for the transaction's hold
        (GetHold by transaction id) rather than guess: a hold it finds is voided,
        so no money stays held for a payment the merchant was told failed.
        """
        delay = RETRY_BASE_DELAY_S
        for attempt in range(1, AUTHORIZE_ATTEMPTS + 1):
            try:
                result = await self._authorizations.submit(bank.name, hold_request)
                if result.HasField("error"):
                    raise from_entry_error(result.error)
                return result.report
            except errors.PaynetError as exc:
                if exc.code not in _OUTCOME_UNKNOWN:
                    raise
                unknown = exc
                _log.warning(
                    "authorization.outcome_unknown",
                    transaction_id=hold_request.transaction_id,
                    attempt=attempt,
                    status=exc.code.name,
                )
            if attempt < AUTHORIZE_ATTEMPTS:
                await asyncio.sleep(delay * (1 + random.random()))
                delay *= 2
        await self._release_unknown_hold(self._issuers(bank), hold_request.transaction_id)
        raise unknown

    async def _send_authorizations(
        self, bank_name: str, entries: list[authorization_pb2.AuthorizeHoldRequest]
    ) -> Sequence[authorization_pb2.AuthorizeHoldResult]:
        reply: authorization_pb2.AuthorizeHoldsResponse = await relayed(
            self._issuers(self._network.node(bank_name)).AuthorizeHolds(
                authorization_pb2.AuthorizeHoldsRequest(entries=entries), timeout=CALL_TIMEOUT_S
            )
        )
        return reply.results

    async def _release_unknown_hold(
        self, issuer: IssuerServiceAsyncStub, transaction_id: str
    ) -> None:
        try:
            found = await relayed(
                issuer.GetHold(
                    authorization_pb2.GetHoldRequest(transaction_id=transaction_id),
                    timeout=CALL_TIMEOUT_S,
                )
            )
        except errors.PaynetError as exc:
            # NOT_FOUND is an answer: no hold was placed. Anything else stays unknown, and
            # an unresolved hold expires at the issuer on its own.
            _log.warning(
                "authorization.resolved",
                transaction_id=transaction_id,
                hold="none" if exc.reason == "HOLD_NOT_FOUND" else "unknown",
            )
            return
        voided = found.status in (
            authorization_pb2.HOLD_STATUS_AUTHORIZED,
            authorization_pb2.HOLD_STATUS_CHALLENGE_PENDING,
        )
        # A sold (captured) hold is not voided: the merchant's retry of the same request
        # replays the sale and records it.
        if voided:
            await relayed(
                issuer.VoidHold(
                    authorization_pb2.VoidHoldRequest(
                        request_id=f"void:{transaction_id}", hold_id=found.hold_id
                    ),
                    timeout=CALL_TIMEOUT_S,
                )
            )
        _log.warning(
            "authorization.resolved",
            transaction_id=transaction_id,
            hold=found.hold_id,
            hold_status=authorization_pb2.HoldStatus.Name(found.status),
            voided=voided,
        )

    async def capture(
        self, transaction_id: str, merchant_name: str
    ) -> authorization_pb2.CapturePaymentResponse:
        """Post the transaction's hold at its issuer."""
        record = await self._held(transaction_id, merchant_name, "HOLD_NOT_CAPTURABLE")
        await self._store.transaction(
            lambda conn: records.begin_call(conn, transaction_id, "capture")
        )
        reply = await self._ending_if_refused(transaction_id, "capture", self._capture_hold(record))
        return _capture_response(reply)

    async def _capture_hold(
        self, record: TransactionRecord
    ) -> authorization_pb2.CaptureHoldResponse:
        """CaptureHold at the issuer (a retry replays) and record its answer."""
        transaction_id = record.transaction_id
        reply: authorization_pb2.CaptureHoldResponse = await relayed(
            self._issuer_of(record).CaptureHold(
                authorization_pb2.CaptureHoldRequest(
                    request_id=f"capture:{transaction_id}", hold_id=record.hold_id
                ),
                timeout=CALL_TIMEOUT_S,
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

    async def refund(
        self, request: authorization_pb2.RefundPaymentRequest, merchant_name: str
    ) -> authorization_pb2.RefundPaymentResponse:
        """Ask the merchant's acquirer to return (part of) a captured transaction."""
        record = await self._held(request.transaction_id, merchant_name, "PAYMENT_NOT_REFUNDABLE")
        if record.hold_status != authorization_pb2.HOLD_STATUS_CAPTURED:
            # A capture whose answer was lost (the merchant may know it settled before we
            # do): finish it first, so the refund sees the payment as the issuer has it.
            pending = await self._store.read(
                partial(records.pending_calls, transaction_id=record.transaction_id)
            )
            if (record.transaction_id, "capture") in pending:
                await self._capture_hold(record)
                record = await self.transaction(record.transaction_id, merchant_name)
        if (
            record.hold_status != authorization_pb2.HOLD_STATUS_CAPTURED
            or not record.instruction_id
        ):
            raise errors.FailedPrecondition(
                "PAYMENT_NOT_REFUNDABLE",
                f"transaction {record.transaction_id!r} was not captured: void it instead",
                transaction_id=record.transaction_id,
            )
        amount = request.amount
        if amount.amount_minor <= 0 or amount.currency_code != record.currency_code:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                f"amount must be above 0 in {record.currency_code}",
                field="amount",
            )
        acquirer = self._network.node(self._network.merchant(merchant_name).bank)
        reply = await relayed(
            self._acquirers(acquirer).ReturnPayment(
                authorization_pb2.ReturnPaymentRequest(
                    request_id=f"refund:{record.transaction_id}:{request.request_id}",
                    original_instruction_id=record.instruction_id,
                    original_debtor_agent=record.issuer_bank_code,
                    amount=amount,
                    merchant_name=merchant_name,
                ),
                timeout=CALL_TIMEOUT_S,
            )
        )
        returned = reply.returned_total.amount_minor
        await self._store.transaction(
            lambda conn: records.record_refund(conn, record.transaction_id, returned)
        )
        _log.info(
            "refund.done",
            transaction_id=record.transaction_id,
            return_id=reply.return_id,
            refunded_minor=returned,
        )
        return authorization_pb2.RefundPaymentResponse(
            refund_id=reply.return_id, refunded_total=reply.returned_total
        )

    async def void(
        self, transaction_id: str, merchant_name: str
    ) -> authorization_pb2.VoidPaymentResponse:
        """Release the transaction's hold at its issuer."""
        record = await self._held(transaction_id, merchant_name, "HOLD_NOT_VOIDABLE")
        await self._store.transaction(lambda conn: records.begin_call(conn, transaction_id, "void"))
        return authorization_pb2.VoidPaymentResponse(
            hold_status=await self._ending_if_refused(
                transaction_id, "void", self._void_hold(record)
            )
        )

    async def _ending_if_refused(self, transaction_id: str, action: str, call: Awaitable[T]) -> T:
        """The issuer's answer; a definite refusal also ends the pending call (it is decided)."""
        try:
            return await call
        except errors.PaynetError as exc:
            if exc.code not in _OUTCOME_UNKNOWN:
                await self._store.transaction(
                    lambda conn: records.end_call(conn, transaction_id, action)
                )
            raise

    async def _void_hold(self, record: TransactionRecord) -> authorization_pb2.HoldStatus.ValueType:
        """VoidHold at the issuer (a retry replays) and record its answer."""
        transaction_id = record.transaction_id
        reply: authorization_pb2.VoidHoldResponse = await relayed(
            self._issuer_of(record).VoidHold(
                authorization_pb2.VoidHoldRequest(
                    request_id=f"void:{transaction_id}", hold_id=record.hold_id
                ),
                timeout=CALL_TIMEOUT_S,
            )
        )

        def done(conn: sqlite3.Connection) -> None:
            records.set_hold_status(conn, transaction_id, reply.hold_status)
            records.end_call(conn, transaction_id, "void")

        await self._store.transaction(done)
        _log.info("void.done", transaction_id=transaction_id, hold_id=record.hold_id)
        return reply.hold_status

    async def resume_pending_calls(self, older_than_s: float = 0.0) -> int:
        """Finish captures and voids asked of issuers whose answers were never recorded.

        A crash (or a lost answer) between asking the issuer and recording
        its answer leaves a pending call. It is asked again with the same
        request_id, so the issuer replays what it did, or does it now. A
        definite refusal ends the call with the hold's status read from the
        issuer. Runs on start and then periodically; returns the calls finished.
        """
        cutoff = to_iso(now() - dt.timedelta(seconds=older_than_s))
        pending = await self._store.read(lambda conn: records.pending_calls(conn, cutoff))
        finished = 0
        for transaction_id, action in pending:
            record = await self._store.read(
                partial(records.load_transaction, transaction_id=transaction_id)
            )
            if record is None:
                continue
            try:
                if action == "capture":
                    await self._capture_hold(record)
                else:
                    await self._void_hold(record)
            except errors.PaynetError as exc:
                if exc.code in _OUTCOME_UNKNOWN:
                    continue  # still unknown: the next round asks again
                await self._settle_refused_call(record, action, exc.reason)
            finished += 1
            _log.warning("call.resumed", transaction_id=transaction_id, action=action)
        return finished

    async def _settle_refused_call(
        self, record: TransactionRecord, action: str, reason: str
    ) -> None:
        """The issuer refused a resumed call: record the hold as the issuer has it."""
        found = await relayed(
            self._issuer_of(record).GetHold(
                authorization_pb2.GetHoldRequest(transaction_id=record.transaction_id),
                timeout=CALL_TIMEOUT_S,
            )
        )

        def done(conn: sqlite3.Connection) -> None:
            records.set_hold_status(conn, record.transaction_id, found.status)
            records.end_call(conn, record.transaction_id, action)

        await self._store.transaction(done)
        _log.warning(
            "call.refused",
            transaction_id=record.transaction_id,
            action=action,
            reason=reason,
            hold_status=authorization_pb2.HoldStatus.Name(found.status),
        )

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

    async def _held(
        self, transaction_id: str, merchant_name: str, reason: str
    ) -> TransactionRecord:
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

    def _issuer_of(self, record: TransactionRecord) -> IssuerServiceAsyncStub:
        issuer = self._network.bank_by_code(record.issuer_bank_code)
        if issuer is None:
            raise errors.FailedPrecondition(
                "UNKNOWN_BANK_CODE",
                "the transaction's issuer is no longer in the network",
                bank_code=record.issuer_bank_code,
            )
        return self._issuers(issuer)


def _capture_response(
    reply: authorization_pb2.CaptureHoldResponse,
) -> authorization_pb2.CapturePaymentResponse:
    """The issuer's capture, as the merchant is told it."""
    return authorization_pb2.CapturePaymentResponse(
        hold_status=reply.hold_status,
        instruction_id=reply.instruction_id,
        settlement_state=reply.settlement_state,
        settlement_reason=reply.settlement_reason,
    )
