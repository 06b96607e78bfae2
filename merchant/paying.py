"""Paying an order with an account or a card: the account-based instrument's flow.

This is where one instrument's flow plugs into the merchant. The model names
three instruments (account/card, electronic cheque, electronic cash); each
has its own way in. The account/card one, here: the customer's SubmitPayment
carries a payment sealed to the gateway; the merchant checks the order and
forwards it, unopened, in AuthorizePayment (a sale: captured in the same call
unless the issuer challenges it), and captures a challenged payment once its
challenge is answered (CompletePayment -> CapturePayment). The merchant keeps
only an opaque reference to the sealed payment (its SHA-256): it never holds
instrument data in clear, in its store, its logs or memory it keeps. Another
instrument's acceptance is a module beside this one, composed by
:class:`merchant.payments.Storefront` next to :class:`AccountPayments`; the
orders it moves, their refunds (:mod:`merchant.refunds`) and the gateway's
routing by instrument kind are shared.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Awaitable, Callable

from interbank.v1 import authorization_pb2, common_pb2, order_pb2

from merchant import orders
from merchant.ordering import (
    CAPTURED_OR_LATER,
    FINAL_FAILURES,
    HELD,
    GatewayKeyInfo,
    OrderBook,
)
from merchant.orders import OrderRecord
from payment import errors
from payment.errors import outcome_unknown, relayed
from payment.logs import get_logger

__all__ = [
    "FINAL_CAPTURE_REASONS",
    "LOOKED_UP_REFUSALS",
    "AccountPayments",
    "Captures",
    "LookUp",
    "authorize_request_id",
    "payment_reference",
]

_log = get_logger("paynet.merchant")

FINAL_CAPTURE_REASONS = frozenset(
    {"CHALLENGE_LOCKED", "CHALLENGE_EXPIRED", "HOLD_EXPIRED", "HOLD_NOT_CAPTURABLE"}
)
"""Capture failures after which the order can never be paid: it becomes FAILED."""

LOOKED_UP_REFUSALS = frozenset(
    {
        "INSTRUCTION_EXPIRED",
        "INSTRUCTION_FROM_FUTURE",
        "INSTRUCTION_REPLAYED",
        "IDEMPOTENCY_KEY_REUSED",
    }
)
"""AuthorizePayment refusals that judge the instruction's time or its reuse, not the payment.

A retry of a payment the gateway already has (one it may have completed) can get them
from a gateway that does not answer it from its record, or whose clock is off: the
order is not reopened on them until the payment is looked up (GetPaymentTransaction)."""

LookUp = Callable[[OrderRecord, str], Awaitable[bool]]
"""Settles a pending order by the gateway's record of its payment (reopening it with the
given reason if the gateway has none); whether it moved (merchant.resolver)."""


def payment_reference(sealed_instruction: bytes) -> str:
    """The opaque reference the merchant keeps for a sealed instruction: hex SHA-256."""
    return hashlib.sha256(sealed_instruction).hexdigest()


def authorize_request_id(order_id: str, reference: str) -> str:
    """The AuthorizePayment request_id of one sealed payment for an order."""
    return f"authorize:{order_id}:{reference[:16]}"


class Captures:
    """Captures an order's held payment through the gateway and records captures."""

    def __init__(self, book: OrderBook) -> None:
        self._book = book

    async def capture(self, order_id: str, transaction_id: str) -> order_pb2.Order:
        """Capture through the gateway and record it; errors are relayed.

        After a refusal that can never turn into a capture the order is FAILED;
        after any other error it is left as it was, to be completed again.
        """
        book = self._book
        try:
            reply = await relayed(
                book.gateway().CapturePayment(
                    authorization_pb2.CapturePaymentRequest(
                        request_id=f"capture:{order_id}", transaction_id=transaction_id
                    ),
                    timeout=book.call_timeout_s,
                )
            )
        except errors.PaynetError as exc:
            if exc.reason in FINAL_CAPTURE_REASONS:
                reason = exc.reason
                await book.store.transaction(lambda conn: book.fail_held(conn, order_id, reason))
                _log.info("payment.failed", order_id=order_id, reason=reason)
            raise
        return await self.record(order_id, transaction_id, reply)

    async def record(
        self,
        order_id: str,
        transaction_id: str,
        reply: authorization_pb2.CapturePaymentResponse,
        *,
        authorized: bool = False,
    ) -> order_pb2.Order:
        """Record a capture the gateway reported (authorized: the sale's authorization too)."""
        book = self._book
        rejected = reply.settlement_state == authorization_pb2.SETTLEMENT_STATE_REJECTED

        def record_capture(conn: sqlite3.Connection) -> order_pb2.Order:
            current = book.load(conn, order_id)
            if authorized and current.order.status == orders.PAYMENT_PENDING:
                current = orders.transition(
                    conn,
                    book.trust_domain,
                    current,
                    orders.AUTHORIZED,
                    transaction_id=transaction_id,
                )
            if current.order.status not in CAPTURED_OR_LATER:
                current = orders.transition(conn, book.trust_domain, current, orders.CAPTURED)
            if rejected and current.order.status == orders.CAPTURED:
                # The issuer reversed the customer's debit: the order will never be paid.
                return orders.transition(
                    conn,
                    book.trust_domain,
                    current,
                    orders.REVERSED,
                    failure_reason=reply.settlement_reason or "SETTLEMENT_REJECTED",
                ).order
            # A concurrent completion or an early settlement notice may have moved it already.
            if current.order.status != orders.CAPTURED:
                return current.order
            captured = current
            if captured.credit_pending:
                return orders.settle(conn, book.trust_domain, captured).order
            return captured.order

        order = await book.store.transaction(record_capture)
        _log.info(
            "payment.captured",
            order_id=order_id,
            transaction_id=transaction_id,
            instruction_id=reply.instruction_id,
        )
        return order


class AccountPayments:
    """The account/card instrument's acceptance: SubmitPayment and CompletePayment.

    It takes the instrument kinds the gateway routes to an issuer for a hold
    (gateway.checks.ACCOUNT_BASED_KINDS: bank account and card), sealed, so the
    merchant never learns which.
    """

    def __init__(
        self, book: OrderBook, gateway_key: GatewayKeyInfo, captures: Captures, look_up: LookUp
    ) -> None:
        self._book = book
        self._gateway_key = gateway_key
        self._captures = captures
        self._look_up = look_up

    async def submit_payment(
        self, customer_name: str, order_id: str, payment: common_pb2.SealedPayment
    ) -> order_pb2.Order:
        """Check the order and forward the sealed payment, unopened, for authorization.

        Frictionless payments are captured at once, in the same gateway call
        (a sale: CAPTURED); challenged ones wait in CHALLENGE_REQUIRED for
        CompletePayment. A refused authorization puts the order back to
        CREATED with the reason, and is relayed. A refusal of a resubmitted
        payment (an earlier attempt's answer was lost), or of the instruction's
        time or reuse (:data:`LOOKED_UP_REFUSALS`), does so only once the
        gateway, asked for the payment, has none that holds or moved money.
        """
        book = self._book
        if not payment.sealed_instruction:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                "payment.sealed_instruction is required",
                field="payment.sealed_instruction",
            )
        if payment.gateway_key_id != self._gateway_key.key_id:
            # Known before anything is touched: the gateway could not open it.
            raise errors.InvalidArgument(
                "UNKNOWN_GATEWAY_KEY",
                "the payment is sealed to a gateway key other than the one CreateOrder "
                "returned; seal it to that key",
                gateway_key_id=payment.gateway_key_id[:64],
            )
        reference = payment_reference(payment.sealed_instruction)

        def begin(conn: sqlite3.Connection) -> tuple[OrderRecord, bool]:
            """The order, PAYMENT_PENDING or later, and whether this payment was already
            submitted (a retry)."""
            record = orders.customer_order(conn, order_id, customer_name)
            status = record.order.status
            if status in orders.PAID and record.payment_ref == reference:
                # The same sealed payment again (a retry after a lost answer or a
                # crash): resume where the order is instead of refusing it.
                return record, True
            if status in orders.PAID:
                raise errors.FailedPrecondition(
                    "ORDER_ALREADY_PAID",
                    f"order {order_id!r} already has a payment ({orders.status_name(status)})",
                    order_id=order_id,
                )
            if status in FINAL_FAILURES:
                raise errors.FailedPrecondition(
                    "ORDER_NOT_PAYABLE",
                    f"order {order_id!r} is {orders.status_name(status)}; create a new order",
                    order_id=order_id,
                )
            pending = orders.transition(
                conn, book.trust_domain, record, orders.PAYMENT_PENDING, payment_ref=reference
            )
            return pending, False

        record, resumed = await book.store.transaction(begin)
        order = record.order
        if order.status == orders.AUTHORIZED:
            return await self._captures.capture(order_id, record.transaction_id)
        if order.status != orders.PAYMENT_PENDING:
            return order  # challenged, captured or later: nothing to redo
        request = authorization_pb2.AuthorizePaymentRequest(
            # From the sealed bytes: the same payment resubmitted replays, a new one is new.
            request_id=authorize_request_id(order_id, reference),
            order_id=order_id,
            amount=order.total,
            order_digest=order.order_digest,
            payment=payment,
            capture=True,  # a sale: captured in the same call unless challenged
        )
        try:
            reply = await relayed(
                book.gateway().AuthorizePayment(request, timeout=book.call_timeout_s)
            )
        except errors.PaynetError as exc:
            if outcome_unknown(exc):
                # The gateway may have authorized: the order stays PAYMENT_PENDING, and
                # the same sealed payment, submitted again, replays the same request.
                _log.warning("payment.outcome_unknown", order_id=order_id, status=exc.code.name)
                raise errors.Unavailable(
                    "PAYMENT_OUTCOME_UNKNOWN",
                    f"the authorization of order {order_id!r} did not complete; "
                    "submit the same sealed payment again",
                    order_id=order_id,
                ) from None
            if resumed or exc.reason in LOOKED_UP_REFUSALS:
                # An earlier attempt of this payment may have taken effect (its answer was
                # lost), or the refusal judges only the instruction's time or reuse.
                return await self._look_up_refused(record, exc)
            reason = exc.reason
            await book.store.transaction(
                lambda conn: book.move(conn, order_id, orders.CREATED, failure_reason=reason)
            )
            _log.info("payment.refused", order_id=order_id, reason=reason)
            raise
        if reply.decision == authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED:
            challenged = await book.store.transaction(
                lambda conn: book.move(
                    conn,
                    order_id,
                    orders.CHALLENGE_REQUIRED,
                    transaction_id=reply.transaction_id,
                    challenge=reply.challenge,
                )
            )
            _log.info("payment.challenged", order_id=order_id, transaction_id=reply.transaction_id)
            return challenged.order
        if reply.decision != authorization_pb2.AUTHORIZATION_DECISION_APPROVED:
            await book.store.transaction(
                lambda conn: book.move(
                    conn,
                    order_id,
                    orders.FAILED,
                    failure_reason="GATEWAY_ANSWER_INVALID",
                    transaction_id=reply.transaction_id,
                )
            )
            raise errors.Internal("GATEWAY_ANSWER_INVALID", "the gateway answered with no decision")
        if reply.HasField("capture"):  # a sale: its one line is payment.captured
            return await self._captures.record(
                order_id, reply.transaction_id, reply.capture, authorized=True
            )
        await book.store.transaction(
            lambda conn: book.move(
                conn, order_id, orders.AUTHORIZED, transaction_id=reply.transaction_id
            )
        )
        _log.info("payment.authorized", order_id=order_id, transaction_id=reply.transaction_id)
        return await self._captures.capture(order_id, reply.transaction_id)

    async def _look_up_refused(
        self, record: OrderRecord, refusal: errors.PaynetError
    ) -> order_pb2.Order:
        """The order after a refusal that may not be the payment's last word, once the
        gateway was asked for the payment; the refusal is relayed if the order was reopened.

        The payment is settled as the resolver (:mod:`merchant.resolver`) would settle
        it, except that a transaction the gateway never recorded reopens the order at
        once, with the refusal's reason: the gateway just refused this very request
        before recording it. If the gateway cannot say yet, the order stays
        PAYMENT_PENDING and the customer is told the outcome is unknown.
        """
        book = self._book
        order_id = record.order.order_id
        await self._look_up(record, refusal.reason)
        current = await book.store.read(lambda conn: book.load(conn, order_id))
        status = current.order.status
        if status == orders.PAYMENT_PENDING:
            _log.warning("payment.refusal_unresolved", order_id=order_id, reason=refusal.reason)
            raise errors.Unavailable(
                "PAYMENT_OUTCOME_UNKNOWN",
                f"the authorization of order {order_id!r} is not settled yet; "
                "submit the same sealed payment again",
                order_id=order_id,
            ) from None
        if status == orders.CREATED:
            _log.info("payment.refused", order_id=order_id, reason=refusal.reason)
            raise refusal
        return current.order

    async def complete_payment(self, customer_name: str, order_id: str) -> order_pb2.Order:
        """Capture an order's authorized payment (after its challenge was answered)."""
        record = await self._book.store.read(
            lambda conn: orders.customer_order(conn, order_id, customer_name)
        )
        status = record.order.status
        if status in CAPTURED_OR_LATER:
            return record.order
        if status in FINAL_FAILURES:
            raise errors.FailedPrecondition(
                "ORDER_NOT_PAYABLE",
                f"order {order_id!r} is {orders.status_name(status)}",
                order_id=order_id,
            )
        if status not in HELD:
            raise errors.FailedPrecondition(
                "ORDER_NOT_AUTHORIZED",
                f"order {order_id!r} has no authorized payment to "
                f"complete ({orders.status_name(status)})",
                order_id=order_id,
            )
        return await self._captures.capture(order_id, record.transaction_id)
