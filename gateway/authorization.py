"""The gateway's payment domain: authorize, capture, void, refund and report transactions.

This is the account/card instrument's flow at the gateway, the one instrument of the
three the model names (account, electronic cheque, electronic cash) that exists today:
:data:`gateway.checks.ACCOUNT_BASED_KINDS` is the table of instrument kinds routed here,
by their bank code, to the issuer that holds the money. Another instrument's flow is a
module beside this one, with its own kinds.

Authorization opens and checks the sealed payment (:mod:`gateway.checks`)
before anything is recorded or any peer is called; then it records the
transaction, asks the issuer for a hold and records the hold (and, for a sale,
the capture the issuer did with it). A retry of a recorded transaction is
answered from the record first, before the instruction's time is judged: the
issuer replays its answer. Authorizations for one issuer that queue
while a call to it is in flight go together in one AuthorizeHolds call
(:class:`payment.batching.Coalescer`), each answered as if alone. Capture and
void relay to the issuer the hold of a transaction the calling merchant owns;
each is noted as a pending call before the issuer is asked, so one interrupted
by a crash is finished on restart (:meth:`PaymentGateway.resume_pending_calls`),
as is an authorization a crash left unanswered. A refund of a captured transaction is
asked of the merchant's acquirer (ReturnPayment). A call whose outcome is unknown
(:func:`payment.errors.outcome_unknown`) is retried or resolved by asking the issuer, never
taken as a refusal. Every call carries the deadline of ``[timeouts] node_call_seconds``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
import sqlite3
from collections.abc import Awaitable, Sequence
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from interbank.v1 import authorization_pb2

from gateway import store as records
from gateway.checks import CheckedPayment, GatewayKey, check_fresh, check_payment
from gateway.issuers import AcquirerLookup, IssuerLookup
from gateway.store import TransactionRecord, TransactionState
from payment import errors, ids
from payment.batching import Coalescers, from_entry_error
from payment.clock import now, to_iso
from payment.config import NetworkConfig, NodeConfig, TimeoutsConfig
from payment.errors import outcome_unknown, relayed
from payment.logs import get_logger
from payment.storage import Store

if TYPE_CHECKING:
    from interbank.v1.authorization_pb2_grpc import IssuerServiceAsyncStub

__all__ = ["PaymentGateway"]

T = TypeVar("T")

_log = get_logger("paynet.gateway")

_APPROVED = authorization_pb2.AUTHORIZATION_DECISION_APPROVED
_CHALLENGED = authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
AUTHORIZE_ATTEMPTS = 3
"""AuthorizeHold calls (the first and its retries) before the outcome is resolved by asking."""
RETRY_BASE_DELAY_S = 0.2
"""First retry delay; doubled each time, with up to 100% jitter."""


def no_hold_after_s(call_timeout_s: float) -> float:
    """Age after which an interrupted authorization the issuer has no hold for gets none:
    every AuthorizeHold attempt for it (its retries and their deadlines) has ended by then."""
    return (AUTHORIZE_ATTEMPTS + 2) * call_timeout_s


NO_HOLD_AFTER_S = no_hold_after_s(TimeoutsConfig.node_call_seconds)
"""no_hold_after_s with the default ``[timeouts] node_call_seconds``."""
_OPEN = (authorization_pb2.HOLD_STATUS_AUTHORIZED, authorization_pb2.HOLD_STATUS_CHALLENGE_PENDING)
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
        self._call_timeout_s = network.timeouts.node_call_seconds
        # Transactions this process is authorizing now: the resolver leaves them alone.
        self._authorizing: set[str] = set()
        # Per issuer (by node name): its queue of authorizations, sent in AuthorizeHolds calls.
        self._authorizations: Coalescers[
            str, authorization_pb2.AuthorizeHoldRequest, authorization_pb2.AuthorizeHoldResult
        ] = Coalescers(self._send_authorizations, "AuthorizeHolds")

    async def authorize(
        self, request: authorization_pb2.AuthorizePaymentRequest, merchant_name: str
    ) -> authorization_pb2.AuthorizePaymentResponse:
        """Check the sealed payment, record the transaction and ask its issuer for a hold.

        A retry (the same request_id) of a transaction already recorded and not
        refused is answered from the record first: its instruction was judged
        fresh when it first came, so it is sent to the issuer again whatever its
        age now, and the issuer replays its first answer. Only a first attempt,
        or one after a refusal, is judged by the instruction's time window.

        Issuer refusals are relayed with their code and reason; the transaction
        is then recorded as failed. An outcome that stays unknown is relayed as
        such and resolved by asking the issuer (:meth:`_settle_unknown`).
        """
        checked = check_payment(request, merchant_name, self._network, self._key)
        # Derived from the merchant's request: a retried request, even after a crash of this
        # node, reuses the transaction and the issuer's idempotency key, never a second hold.
        transaction_id = ids.transaction_id(merchant_name, request.request_id)
        self._authorizing.add(transaction_id)
        try:
            return await self._authorize(checked, request, transaction_id)
        finally:
            self._authorizing.discard(transaction_id)

    async def _authorize(
        self,
        checked: CheckedPayment,
        request: authorization_pb2.AuthorizePaymentRequest,
        transaction_id: str,
    ) -> authorization_pb2.AuthorizePaymentResponse:
        recorded = await self._store.read(
            partial(records.load_transaction, transaction_id=transaction_id)
        )
        if recorded is not None:
            _require_same_payment(recorded, checked, request.request_id)
        retried = recorded is not None and recorded.state is not TransactionState.FAILED
        window_s = self._network.limits.instruction_window_seconds
        if not retried:
            check_fresh(checked, now(), window_s)
        record = TransactionRecord(
            transaction_id=transaction_id,
            order_id=checked.order_id,
            merchant_name=checked.merchant_name,
            amount_minor=checked.amount_minor,
            currency_code=checked.currency_code,
            issuer_bank_code=checked.issuer.bank_code or "",
            state=TransactionState.AUTHORIZING,
            created_at=to_iso(now()),
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
        return await self._ask_issuer(checked, request, record, retried=retried)

    async def _ask_issuer(
        self,
        checked: CheckedPayment,
        request: authorization_pb2.AuthorizePaymentRequest,
        record: TransactionRecord,
        *,
        retried: bool,
    ) -> authorization_pb2.AuthorizePaymentResponse:
        """AuthorizeHold for a recorded transaction; record and relay the issuer's answer.

        retried: the transaction was recorded before and not refused (a retry).
        """
        transaction_id = record.transaction_id
        hold_request = authorization_pb2.AuthorizeHoldRequest(
            request_id=f"authorize:{transaction_id}",
            transaction_id=transaction_id,
            instruction=checked.instruction,
            dual_signature=checked.dual_signature,
            merchant_name=record.merchant_name,
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
            if outcome_unknown(exc):
                await self._settle_unknown(
                    checked.issuer, transaction_id, reason, void_open=not retried
                )
            elif reason != "IDEMPOTENCY_KEY_REUSED":
                # (IDEMPOTENCY_KEY_REUSED: the issuer holds something for this transaction
                # already; it stays AUTHORIZING and is resolved with GetHold.)
                await self._store.transaction(
                    lambda conn: records.mark_failed(conn, transaction_id, reason)
                )
            _log.info(
                "authorization.failed",
                transaction_id=transaction_id,
                order_id=record.order_id,
                merchant=record.merchant_name,
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
            order_id=record.order_id,
            merchant=record.merchant_name,
            issuer_bank_code=record.issuer_bank_code,
            hold_id=reply.hold_id,
            decision=authorization_pb2.AuthorizationDecision.Name(reply.decision),
            instruction_id=captured.instruction_id if captured is not None else None,
            retried=retried,
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
        """AuthorizeHold, retried while its outcome is unknown; the last unknown is raised.

        The request goes to the issuer in an AuthorizeHolds batch with the
        other authorizations queued for that issuer; its entry is answered as
        the single call would be, and a failure of the whole call is its own.
        A retry carries the same request_id, so the issuer replays its first
        answer instead of placing a second hold.
        """
        delay = RETRY_BASE_DELAY_S
        for attempt in range(1, AUTHORIZE_ATTEMPTS + 1):
            try:
                result = await self._authorizations.submit(bank.name, hold_request)
                if result.HasField("error"):
                    raise from_entry_error(result.error)
                return result.report
            except errors.PaynetError as exc:
                if not outcome_unknown(exc):
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
        raise unknown

    async def _send_authorizations(
        self, bank_name: str, entries: list[authorization_pb2.AuthorizeHoldRequest]
    ) -> Sequence[authorization_pb2.AuthorizeHoldResult]:
        reply: authorization_pb2.AuthorizeHoldsResponse = await relayed(
            self._issuers(self._network.node(bank_name)).AuthorizeHolds(
                authorization_pb2.AuthorizeHoldsRequest(entries=entries),
                timeout=self._call_timeout_s,
            )
        )
        return reply.results

    async def _look_up_hold(
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

    async def _settle_unknown(
        self, bank: NodeConfig, transaction_id: str, reason: str, *, void_open: bool
    ) -> None:
        """Record what became of an authorization whose outcome stayed unknown, if the
        issuer can say (GetHold by transaction id); never guess.

        No hold: the transaction failed with reason. A hold still open, on a first
        attempt, is voided (the transaction failed with reason), so no money stays
        held for a payment the merchant will find failed; on a retry of a recorded
        transaction, or if the void does not go through, it is recorded as found,
        for the merchant to capture or void. A posted hold (a sale) is recorded as
        found: the money moved, so the transaction is not a failure, and the
        merchant's retry or lookup finds the sale. If the issuer cannot say, the
        transaction stays AUTHORIZING and :meth:`resume_pending_calls` asks again.
        """
        issuer = self._issuers(bank)
        try:
            found = await self._look_up_hold(issuer, transaction_id)
        except errors.PaynetError:
            _log.warning("authorization.resolved", transaction_id=transaction_id, hold="unknown")
            return
        if found is None:
            await self._store.transaction(
                lambda conn: records.mark_failed(conn, transaction_id, reason)
            )
            _log.warning("authorization.resolved", transaction_id=transaction_id, hold="none")
            return
        voided = False
        if void_open and found.status in _OPEN:
            try:
                await relayed(
                    issuer.VoidHold(
                        authorization_pb2.VoidHoldRequest(
                            request_id=f"void:{transaction_id}", hold_id=found.hold_id
                        ),
                        timeout=self._call_timeout_s,
                    )
                )
                voided = True
            except errors.PaynetError as exc:
                _log.warning(
                    "authorization.void_failed", transaction_id=transaction_id, reason=exc.reason
                )

        def settle(conn: sqlite3.Connection) -> None:
            if voided:
                records.mark_failed(conn, transaction_id, reason)
            else:
                records.record_hold(conn, transaction_id, found.hold_id, found.status)

        await self._store.transaction(settle)
        _log.warning(
            "authorization.resolved",
            transaction_id=transaction_id,
            hold=found.hold_id,
            hold_status=authorization_pb2.HoldStatus.Name(found.status),
            voided=voided,
        )

    async def _resolve_interrupted_authorizations(self) -> int:
        """Ask the issuer about each authorization recorded but never answered; how many
        were settled.

        A crash between recording an authorization and recording the issuer's
        answer leaves it AUTHORIZING, with nobody to finish it. Each one not
        being asked right now is looked up at its issuer (GetHold by transaction
        id): a hold found is recorded as the issuer has it (a posted one with its
        credit transfer), for the merchant to capture, void or record; no hold,
        once every attempt that could still place one has ended
        (:func:`no_hold_after_s`), fails the transaction with HOLD_NOT_FOUND. An
        issuer that cannot say is asked again next round.
        """
        cutoff = to_iso(now() - dt.timedelta(seconds=no_hold_after_s(self._call_timeout_s)))
        interrupted = await self._store.read(records.authorizing)
        settled = 0
        for record in interrupted:
            transaction_id = record.transaction_id
            if transaction_id in self._authorizing:
                continue  # an authorization of this process is asking right now
            try:
                found = await self._look_up_hold(self._issuer_of(record), transaction_id)
            except errors.PaynetError:
                continue
            if found is None:
                if record.created_at >= cutoff:
                    continue  # an attempt may still be on its way to the issuer
                await self._store.transaction(
                    partial(
                        records.mark_failed, transaction_id=transaction_id, reason="HOLD_NOT_FOUND"
                    )
                )
            else:
                await self._record_found_hold(record, found)
            settled += 1
            _log.warning(
                "authorization.interrupted_resolved",
                transaction_id=transaction_id,
                hold_status=authorization_pb2.HoldStatus.Name(found.status) if found else None,
            )
        return settled

    async def _record_found_hold(
        self, record: TransactionRecord, found: authorization_pb2.GetHoldResponse
    ) -> None:
        """Record a hold GetHold reported; a posted one also with its credit transfer."""
        await self._store.transaction(
            lambda conn: records.record_hold(
                conn, record.transaction_id, found.hold_id, found.status
            )
        )
        if found.status != authorization_pb2.HOLD_STATUS_CAPTURED:
            return
        try:
            # Capturing a posted hold changes nothing at the issuer: it names the transfer.
            await self._capture_hold(dataclasses.replace(record, hold_id=found.hold_id))
        except errors.PaynetError as exc:
            # The merchant's CapturePayment, or its retry, records it later.
            _log.warning(
                "authorization.capture_unread",
                transaction_id=record.transaction_id,
                reason=exc.reason,
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
                    request_id=ids.derived_request_id(
                        "refund", record.transaction_id, request.request_id
                    ),
                    original_instruction_id=record.instruction_id,
                    original_debtor_agent=record.issuer_bank_code,
                    amount=amount,
                    merchant_name=merchant_name,
                ),
                timeout=self._call_timeout_s,
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
            if not outcome_unknown(exc):
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
                timeout=self._call_timeout_s,
            )
        )

        def done(conn: sqlite3.Connection) -> None:
            records.set_hold_status(conn, transaction_id, reply.hold_status)
            records.end_call(conn, transaction_id, "void")

        await self._store.transaction(done)
        _log.info("void.done", transaction_id=transaction_id, hold_id=record.hold_id)
        return reply.hold_status

    async def resume_pending_calls(self, older_than_s: float = 0.0) -> int:
        """Finish authorizations, captures and voids whose issuer answers were never recorded.

        Authorizations a crash interrupted are settled by asking the issuer
        (:meth:`_resolve_interrupted_authorizations`). A crash (or a lost
        answer) between asking the issuer for a capture or void and recording
        its answer leaves a pending call. It is asked again with the same
        request_id, so the issuer replays what it did, or does it now. A
        definite refusal ends the call with the hold's status read from the
        issuer. Runs on start and then periodically; returns how many were finished.
        """
        finished = await self._resolve_interrupted_authorizations()
        cutoff = to_iso(now() - dt.timedelta(seconds=older_than_s))
        pending = await self._store.read(lambda conn: records.pending_calls(conn, cutoff))
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
                if outcome_unknown(exc):
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
                timeout=self._call_timeout_s,
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


def _require_same_payment(
    recorded: TransactionRecord, checked: CheckedPayment, request_id: str
) -> None:
    """A request_id already recorded may only be retried for the same payment."""
    if (
        recorded.order_id,
        recorded.amount_minor,
        recorded.currency_code,
        recorded.issuer_bank_code,
    ) != (
        checked.order_id,
        checked.amount_minor,
        checked.currency_code,
        checked.issuer.bank_code or "",
    ):
        raise errors.AlreadyExists(
            "IDEMPOTENCY_KEY_REUSED",
            f"request_id {request_id!r} was already used for a different payment; "
            "choose a new request_id for a new request",
            request_id=request_id,
        )


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
