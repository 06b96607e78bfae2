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
(:class:`payment.batching.Coalescer`), each answered as if alone. A call whose
outcome is unknown (:func:`payment.errors.outcome_unknown`) is retried, then
resolved by asking the issuer, never taken as a refusal. Every call carries the
deadline of ``[timeouts] node_call_seconds``.

The rest of the domain lives beside this module, and :class:`PaymentGateway`
is its one entry point: capture and void of a transaction's hold
(:mod:`gateway.holds`), refunds through the merchant's acquirer
(:mod:`gateway.refunds`), and what an unknown outcome, a crash or a lost answer
left unfinished (:mod:`gateway.recovery`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import sqlite3
from collections.abc import Callable, Sequence

from interbank.v1 import authorization_pb2

from gateway import store as records
from gateway.checks import CheckedPayment, GatewayKey, check_fresh, check_payment
from gateway.holds import Holds, capture_response
from gateway.issuers import AcquirerLookup, IssuerLookup
from gateway.recovery import Recovery
from gateway.refunds import Refunds
from gateway.store import TransactionRecord, TransactionState
from payment import errors, ids
from payment.batching import Coalescers, from_entry_error
from payment.clock import now, to_iso
from payment.config import NetworkConfig, NodeConfig, TimeoutsConfig
from payment.errors import outcome_unknown, relayed
from payment.logs import get_logger
from payment.storage import Store

__all__ = ["PaymentGateway"]

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
        *,
        clock: Callable[[], dt.datetime] = now,
    ) -> None:
        """clock: this node's time, by which instructions and interrupted calls are aged."""
        self._store = store
        self._network = network
        self._key = key
        self._issuers = issuers
        self._clock = clock
        self._call_timeout_s = network.timeouts.node_call_seconds
        # Transactions this process is authorizing now: the resolver leaves them alone.
        self._authorizing: set[str] = set()
        # Per issuer (by node name): its queue of authorizations, sent in AuthorizeHolds calls.
        self._authorizations: Coalescers[
            str, authorization_pb2.AuthorizeHoldRequest, authorization_pb2.AuthorizeHoldResult
        ] = Coalescers(self._send_authorizations, "AuthorizeHolds")
        self._holds = Holds(store, network, issuers)
        self._refunds = Refunds(store, network, self._holds, acquirers)
        self._recovery = Recovery(
            store,
            network,
            issuers,
            self._holds,
            clock=clock,
            authorizing=self._authorizing,
            no_hold_after_s=no_hold_after_s(self._call_timeout_s),
        )

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
        such and resolved by asking the issuer (:meth:`gateway.recovery.Recovery.settle_unknown`).
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
        window_s = self._network.limits.instruction_window_seconds
        moment = self._clock()
        record = TransactionRecord(
            transaction_id=transaction_id,
            order_id=checked.order_id,
            merchant_name=checked.merchant_name,
            amount_minor=checked.amount_minor,
            currency_code=checked.currency_code,
            issuer_bank_code=checked.issuer.bank_code or "",
            state=TransactionState.AUTHORIZING,
            created_at=to_iso(moment),
        )
        # The nonce is remembered for the instruction's whole window: until then it could
        # still be fresh enough to be replayed.
        nonce_expires = to_iso(checked.created_at + dt.timedelta(seconds=window_s))

        def record_payment(conn: sqlite3.Connection) -> bool:
            """Record the payment; True if it retries one recorded before and not refused.

            One transaction: the record is read before the instruction's time is
            judged, and a refusal (stale, replayed, key reused) leaves neither a
            nonce nor a record behind.
            """
            recorded = records.load_transaction(conn, transaction_id)
            if recorded is not None:
                _require_same_payment(recorded, checked, request.request_id)
            retried = recorded is not None and recorded.state is not TransactionState.FAILED
            if not retried:
                check_fresh(checked, moment, window_s)
            records.claim_nonce(conn, checked.nonce, transaction_id, nonce_expires)
            records.insert_transaction(conn, record)
            return retried

        # Durable before the issuer is asked, so a hold never exists without our record.
        retried = await self._store.transaction(record_payment)
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
                await self._recovery.settle_unknown(
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
            response.capture.CopyFrom(capture_response(captured))
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

    async def capture(
        self, transaction_id: str, merchant_name: str
    ) -> authorization_pb2.CapturePaymentResponse:
        """Post the transaction's hold at its issuer (:meth:`gateway.holds.Holds.capture`)."""
        return await self._holds.capture(transaction_id, merchant_name)

    async def void(
        self, transaction_id: str, merchant_name: str
    ) -> authorization_pb2.VoidPaymentResponse:
        """Release the transaction's hold at its issuer (:meth:`gateway.holds.Holds.void`)."""
        return await self._holds.void(transaction_id, merchant_name)

    async def refund(
        self, request: authorization_pb2.RefundPaymentRequest, merchant_name: str
    ) -> authorization_pb2.RefundPaymentResponse:
        """Ask the merchant's acquirer to return (part of) a captured transaction
        (:meth:`gateway.refunds.Refunds.refund`)."""
        return await self._refunds.refund(request, merchant_name)

    async def transaction(self, transaction_id: str, merchant_name: str) -> TransactionRecord:
        """The merchant's own transaction; NotFound(TRANSACTION_NOT_FOUND) for any other."""
        return await self._holds.transaction(transaction_id, merchant_name)

    async def resume_pending_calls(self, older_than_s: float = 0.0) -> int:
        """Finish authorizations, captures and voids whose issuer answers were never
        recorded; how many were finished (:meth:`Recovery.resume_pending_calls`)."""
        return await self._recovery.resume_pending_calls(older_than_s)


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
