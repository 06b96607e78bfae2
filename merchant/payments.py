"""The storefront's domain: create orders, take payments, capture, cancel.

The merchant checks the order and forwards the customer's sealed payment to
the gateway unopened. It keeps only an opaque reference to it (the SHA-256 of
the sealed bytes): it never holds instrument data in clear, in its store, its
logs or memory it keeps.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import grpc
from interbank.v1 import authorization_pb2, common_pb2, order_pb2

from merchant import orders
from merchant.catalog import Catalog
from merchant.orders import OrderRecord
from merchant.peers import CALL_TIMEOUT_S
from payment import errors, ids
from payment.clock import now, now_iso, timestamp
from payment.envelope import OrderLineText, order_digest
from payment.errors import relayed
from payment.logs import get_logger
from payment.storage import Store

if TYPE_CHECKING:
    from interbank.v1.authorization_pb2_grpc import GatewayServiceAsyncStub

__all__ = [
    "FINAL_CAPTURE_REASONS",
    "LOOKED_UP_REFUSALS",
    "GatewayKeyInfo",
    "Storefront",
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

_CAPTURED_OR_LATER = frozenset(
    {
        orders.CAPTURED,
        orders.SETTLED,
        orders.DELIVERY_CONFIRMED,
        orders.PARTIALLY_REFUNDED,
        orders.REFUNDED,
        orders.REVERSED,
    }
)
_HELD = frozenset({orders.CHALLENGE_REQUIRED, orders.AUTHORIZED})
OUTCOME_UNKNOWN = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
    }
)
"""A peer's failure with one of these codes may have taken effect: retry, do not undo."""
_FINAL_FAILURES = frozenset({orders.FAILED, orders.CANCELED, orders.REVERSED})


@dataclass(frozen=True)
class GatewayKeyInfo:
    """The gateway's payment-encryption public key, as handed to customers."""

    public_key: bytes
    """The raw 32-byte X25519 public key."""
    key_id: str
    """payment.pki.key_id of the key."""


def payment_reference(sealed_instruction: bytes) -> str:
    """The opaque reference the merchant keeps for a sealed instruction: hex SHA-256."""
    return hashlib.sha256(sealed_instruction).hexdigest()


def authorize_request_id(order_id: str, reference: str) -> str:
    """The AuthorizePayment request_id of one sealed payment for an order."""
    return f"authorize:{order_id}:{reference[:16]}"


RESOLVE_AFTER_S: Final = 60.0
"""How long a payment stays PAYMENT_PENDING before the merchant asks the gateway about it."""
_RELEASED = {
    authorization_pb2.HOLD_STATUS_VOIDED: "HOLD_VOIDED",
    authorization_pb2.HOLD_STATUS_EXPIRED: "HOLD_EXPIRED",
}
_POSTABLE = frozenset(
    {authorization_pb2.HOLD_STATUS_AUTHORIZED, authorization_pb2.HOLD_STATUS_CAPTURED}
)


class Storefront:
    """A merchant's orders and their payments through the gateway."""

    def __init__(
        self,
        store: Store,
        trust_domain: str,
        merchant_name: str,
        catalog: Catalog,
        gateway_key: GatewayKeyInfo,
        gateway: Callable[[], GatewayServiceAsyncStub],
    ) -> None:
        self._store = store
        self._trust_domain = trust_domain
        self._merchant_name = merchant_name
        self.catalog = catalog
        self.gateway_key = gateway_key
        self._gateway = gateway

    def create_order(
        self,
        conn: sqlite3.Connection,
        customer_name: str,
        lines: Iterable[order_pb2.CreateOrderLine],
    ) -> order_pb2.CreateOrderResponse:
        """Price, store and announce a new order (a one-transaction step)."""
        priced = self.catalog.price(lines)
        order_id = str(uuid.uuid4())
        digest = order_digest(
            order_id,
            self._merchant_name,
            customer_name,
            priced.currency_code,
            priced.total_minor,
            [
                OrderLineText(line.sku, line.quantity, line.unit_price.amount_minor)
                for line in priced.lines
            ],
        )
        created = timestamp(now())
        order = order_pb2.Order(
            order_id=order_id,
            merchant_name=self._merchant_name,
            customer_name=customer_name,
            lines=priced.lines,
            total=common_pb2.Money(
                amount_minor=priced.total_minor, currency_code=priced.currency_code
            ),
            status=orders.CREATED,
            order_digest=digest,
            created_at=created,
            updated_at=created,
        )
        orders.insert_order(conn, self._trust_domain, order)
        return order_pb2.CreateOrderResponse(
            order=order,
            gateway_public_key=self.gateway_key.public_key,
            gateway_key_id=self.gateway_key.key_id,
        )

    async def get_order(self, customer_name: str, order_id: str) -> order_pb2.Order:
        """One of the customer's orders."""
        record = await self._store.read(
            lambda conn: orders.customer_order(conn, order_id, customer_name)
        )
        return record.order

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
        if not payment.sealed_instruction:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                "payment.sealed_instruction is required",
                field="payment.sealed_instruction",
            )
        if payment.gateway_key_id != self.gateway_key.key_id:
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
            if status in _FINAL_FAILURES:
                raise errors.FailedPrecondition(
                    "ORDER_NOT_PAYABLE",
                    f"order {order_id!r} is {orders.status_name(status)}; create a new order",
                    order_id=order_id,
                )
            pending = orders.transition(
                conn, self._trust_domain, record, orders.PAYMENT_PENDING, payment_ref=reference
            )
            return pending, False

        record, resumed = await self._store.transaction(begin)
        order = record.order
        if order.status == orders.AUTHORIZED:
            return await self._capture(order_id, record.transaction_id)
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
            reply = await relayed(self._gateway().AuthorizePayment(request, timeout=CALL_TIMEOUT_S))
        except errors.PaynetError as exc:
            if exc.code in OUTCOME_UNKNOWN:
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
            await self._store.transaction(
                lambda conn: self._move(conn, order_id, orders.CREATED, failure_reason=reason)
            )
            _log.info("payment.refused", order_id=order_id, reason=reason)
            raise
        if reply.decision == authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED:
            challenged = await self._store.transaction(
                lambda conn: self._move(
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
            await self._store.transaction(
                lambda conn: self._move(
                    conn,
                    order_id,
                    orders.FAILED,
                    failure_reason="GATEWAY_ANSWER_INVALID",
                    transaction_id=reply.transaction_id,
                )
            )
            raise errors.Internal("GATEWAY_ANSWER_INVALID", "the gateway answered with no decision")
        if reply.HasField("capture"):  # a sale: its one line is payment.captured
            return await self._record_capture(
                order_id, reply.transaction_id, reply.capture, authorized=True
            )
        await self._store.transaction(
            lambda conn: self._move(
                conn, order_id, orders.AUTHORIZED, transaction_id=reply.transaction_id
            )
        )
        _log.info("payment.authorized", order_id=order_id, transaction_id=reply.transaction_id)
        return await self._capture(order_id, reply.transaction_id)

    async def _look_up_refused(
        self, record: OrderRecord, refusal: errors.PaynetError
    ) -> order_pb2.Order:
        """The order after a refusal that may not be the payment's last word, once the
        gateway was asked for the payment; the refusal is relayed if the order was reopened.

        The payment is settled as :meth:`resolve_pending` would settle it, except
        that a transaction the gateway never recorded reopens the order at once,
        with the refusal's reason: the gateway just refused this very request
        before recording it. If the gateway cannot say yet, the order stays
        PAYMENT_PENDING and the customer is told the outcome is unknown.
        """
        order_id = record.order.order_id
        await self._resolve(record, not_found_reason=refusal.reason)
        current = await self._store.read(lambda conn: self._load(conn, order_id))
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

    async def resolve_pending(
        self, *, not_received_after_s: float, older_than_s: float = RESOLVE_AFTER_S
    ) -> int:
        """Find out what became of payments whose answer was lost; how many orders moved.

        An order stays PAYMENT_PENDING when the gateway's answer was lost, until
        the customer submits the same sealed payment again. For each one pending
        longer than older_than_s, the merchant asks the gateway for the
        transaction (its id is derived from the request): a hold that is
        authorized or posted is captured, so the order is paid as the customer
        meant; a hold waiting for its challenge makes the order
        CHALLENGE_REQUIRED, where the customer completes or cancels it; a
        refused payment or a released hold puts the order back to CREATED with
        the reason. A transaction the gateway does not know, once
        not_received_after_s has passed (the sealed instruction can no longer be
        fresh), puts it back to CREATED with PAYMENT_NOT_RECEIVED. A transaction
        the gateway is still authorizing is left.
        """
        moment = now()
        pending = await self._store.read(
            lambda conn: orders.orders_in(conn, orders.PAYMENT_PENDING)
        )
        moved = 0
        for record in pending:
            age_s = (moment - record.order.updated_at.ToDatetime(dt.UTC)).total_seconds()
            if age_s < older_than_s:
                continue
            late = age_s >= not_received_after_s
            if await self._resolve(
                record, not_found_reason="PAYMENT_NOT_RECEIVED" if late else None
            ):
                moved += 1
        return moved

    async def _resolve(self, record: OrderRecord, *, not_found_reason: str | None) -> bool:
        """Settle a pending order by the gateway's record of its payment; whether it moved.

        not_found_reason: what reopens the order if the gateway has no such
        transaction; None leaves it pending (the payment may still arrive).
        """
        order_id = record.order.order_id
        transaction_id = ids.transaction_id(
            self._merchant_name, authorize_request_id(order_id, record.payment_ref)
        )
        try:
            reply = await relayed(
                self._gateway().GetPaymentTransaction(
                    authorization_pb2.GetPaymentTransactionRequest(transaction_id=transaction_id),
                    timeout=CALL_TIMEOUT_S,
                )
            )
        except errors.PaynetError as exc:
            if exc.reason != "TRANSACTION_NOT_FOUND" or not_found_reason is None:
                return False  # the gateway is unreachable, or the payment may still arrive
            return await self._reopen(record, not_found_reason)
        found = reply.transaction
        if found.failure_reason:
            return await self._reopen(record, found.failure_reason)
        if found.hold_status in _RELEASED:
            return await self._reopen(record, _RELEASED[found.hold_status])
        if found.hold_status == authorization_pb2.HOLD_STATUS_CHALLENGE_PENDING:
            # Held for a challenge the customer never saw here: as a challenged order, it
            # can be completed once answered, or canceled, which releases the hold.
            challenged = await self._still_pending(
                record, orders.CHALLENGE_REQUIRED, transaction_id=transaction_id
            )
            if challenged:
                _log.info("payment.resolved", order_id=order_id, transaction_id=transaction_id)
            return challenged
        if found.hold_status not in _POSTABLE:
            return False  # still authorizing
        if not await self._still_pending(record, orders.AUTHORIZED, transaction_id=transaction_id):
            return False
        _log.info("payment.resolved", order_id=order_id, transaction_id=transaction_id)
        try:
            await self._capture(order_id, transaction_id)
        except errors.PaynetError as exc:
            # AUTHORIZED now: the customer's CompletePayment, or a retry, captures it.
            _log.warning("payment.resolve_capture_failed", order_id=order_id, reason=exc.reason)
        return True

    async def _reopen(self, record: OrderRecord, reason: str) -> bool:
        """Back to CREATED with the reason, so the customer can pay again."""
        if not await self._still_pending(record, orders.CREATED, failure_reason=reason):
            return False
        _log.info("payment.resolved", order_id=record.order.order_id, reason=reason)
        return True

    async def _still_pending(
        self,
        record: OrderRecord,
        target: orders.OrderStatus,
        *,
        failure_reason: str | None = None,
        transaction_id: str | None = None,
    ) -> bool:
        """Move the order to target if it is still pending on the same payment."""

        def move(conn: sqlite3.Connection) -> bool:
            current = self._load(conn, record.order.order_id)
            if (
                current.order.status != orders.PAYMENT_PENDING
                or current.payment_ref != record.payment_ref
            ):
                return False  # the customer's own retry got there first
            orders.transition(
                conn,
                self._trust_domain,
                current,
                target,
                failure_reason=failure_reason,
                transaction_id=transaction_id,
            )
            return True

        return await self._store.transaction(move)

    async def complete_payment(self, customer_name: str, order_id: str) -> order_pb2.Order:
        """Capture an order's authorized payment (after its challenge was answered)."""
        record = await self._store.read(
            lambda conn: orders.customer_order(conn, order_id, customer_name)
        )
        status = record.order.status
        if status in _CAPTURED_OR_LATER:
            return record.order
        if status in _FINAL_FAILURES:
            raise errors.FailedPrecondition(
                "ORDER_NOT_PAYABLE",
                f"order {order_id!r} is {orders.status_name(status)}",
                order_id=order_id,
            )
        if status not in _HELD:
            raise errors.FailedPrecondition(
                "ORDER_NOT_AUTHORIZED",
                f"order {order_id!r} has no authorized payment to "
                f"complete ({orders.status_name(status)})",
                order_id=order_id,
            )
        return await self._capture(order_id, record.transaction_id)

    async def cancel_order(self, customer_name: str, order_id: str) -> order_pb2.Order:
        """Cancel an order not yet captured, voiding its hold if it has one."""

        def begin(conn: sqlite3.Connection) -> OrderRecord:
            record = orders.customer_order(conn, order_id, customer_name)
            if record.order.status == orders.CREATED:
                return orders.transition(conn, self._trust_domain, record, orders.CANCELED)
            self._require_cancelable(record)
            return record

        record = await self._store.transaction(begin)
        if record.order.status == orders.CANCELED:
            return record.order
        await relayed(
            self._gateway().VoidPayment(
                authorization_pb2.VoidPaymentRequest(
                    request_id=f"void:{order_id}", transaction_id=record.transaction_id
                ),
                timeout=CALL_TIMEOUT_S,
            )
        )

        def finish(conn: sqlite3.Connection) -> OrderRecord:
            current = self._load(conn, order_id)
            self._require_cancelable(current)
            return orders.transition(conn, self._trust_domain, current, orders.CANCELED)

        canceled = await self._store.transaction(finish)
        _log.info("order.canceled", order_id=order_id, transaction_id=record.transaction_id)
        return canceled.order

    async def _capture(self, order_id: str, transaction_id: str) -> order_pb2.Order:
        """Capture through the gateway and record it; errors are relayed.

        After a refusal that can never turn into a capture the order is FAILED;
        after any other error it is left as it was, to be completed again.
        """
        try:
            reply = await relayed(
                self._gateway().CapturePayment(
                    authorization_pb2.CapturePaymentRequest(
                        request_id=f"capture:{order_id}", transaction_id=transaction_id
                    ),
                    timeout=CALL_TIMEOUT_S,
                )
            )
        except errors.PaynetError as exc:
            if exc.reason in FINAL_CAPTURE_REASONS:
                reason = exc.reason
                await self._store.transaction(lambda conn: self._fail_held(conn, order_id, reason))
                _log.info("payment.failed", order_id=order_id, reason=reason)
            raise
        return await self._record_capture(order_id, transaction_id, reply)

    async def _record_capture(
        self,
        order_id: str,
        transaction_id: str,
        reply: authorization_pb2.CapturePaymentResponse,
        *,
        authorized: bool = False,
    ) -> order_pb2.Order:
        """Record a capture the gateway reported (authorized: the sale's authorization too)."""
        rejected = reply.settlement_state == authorization_pb2.SETTLEMENT_STATE_REJECTED

        def record_capture(conn: sqlite3.Connection) -> order_pb2.Order:
            current = self._load(conn, order_id)
            if authorized and current.order.status == orders.PAYMENT_PENDING:
                current = orders.transition(
                    conn,
                    self._trust_domain,
                    current,
                    orders.AUTHORIZED,
                    transaction_id=transaction_id,
                )
            if current.order.status not in _CAPTURED_OR_LATER:
                current = orders.transition(conn, self._trust_domain, current, orders.CAPTURED)
            if rejected and current.order.status == orders.CAPTURED:
                # The issuer reversed the customer's debit: the order will never be paid.
                return orders.transition(
                    conn,
                    self._trust_domain,
                    current,
                    orders.REVERSED,
                    failure_reason=reply.settlement_reason or "SETTLEMENT_REJECTED",
                ).order
            # A concurrent completion or an early settlement notice may have moved it already.
            if current.order.status != orders.CAPTURED:
                return current.order
            captured = current
            if captured.credit_pending:
                return orders.settle(conn, self._trust_domain, captured).order
            return captured.order

        order = await self._store.transaction(record_capture)
        _log.info(
            "payment.captured",
            order_id=order_id,
            transaction_id=transaction_id,
            instruction_id=reply.instruction_id,
        )
        return order

    async def refund_order(
        self, order_id: str, amount: common_pb2.Money | None, request_id: str
    ) -> order_pb2.RefundOrderResponse:
        """Refund (part of) a settled order through the gateway and the acquirer."""
        record, recorded, attempted = await self._store.read(
            lambda conn: (
                self._load(conn, order_id),
                _recorded_refund(conn, order_id, request_id),
                _refund_attempt(conn, order_id, request_id),
            )
        )
        order = record.order
        if recorded is None and attempted is not None:
            # This very request reached the gateway before and its answer was lost: ask
            # again with the same id, whatever the order's state now (a RefundNotice may
            # already have refunded it), so the gateway and the merchant record it alike.
            if amount is not None and amount.amount_minor != attempted:
                raise errors.AlreadyExists(
                    "IDEMPOTENCY_KEY_REUSED",
                    f"request_id {request_id!r} asked to refund {attempted} minor units; "
                    "choose a new request_id for a new refund",
                    request_id=request_id,
                )
            wanted = common_pb2.Money(
                amount_minor=attempted, currency_code=order.total.currency_code
            )
            return await self._send_refund(record, request_id, wanted)
        if recorded is not None:
            # This very request was refunded before and its answer lost: the same answer.
            amount_minor, refund_id = recorded
            if amount is not None and amount.amount_minor != amount_minor:
                raise errors.AlreadyExists(
                    "IDEMPOTENCY_KEY_REUSED",
                    f"request_id {request_id!r} already refunded {amount_minor} minor units; "
                    "choose a new request_id for a new refund",
                    request_id=request_id,
                )
            return order_pb2.RefundOrderResponse(order=order, refund_id=refund_id)
        if order.status not in orders.REFUNDABLE:
            raise errors.FailedPrecondition(
                "ORDER_NOT_REFUNDABLE",
                f"order {order_id!r} is {orders.status_name(order.status)}: only a settled order"
                " can be refunded (cancel an unpaid one instead)",
                order_id=order_id,
            )
        remaining = order.total.amount_minor - order.refunded_total.amount_minor
        wanted = (
            amount
            if amount is not None
            else common_pb2.Money(amount_minor=remaining, currency_code=order.total.currency_code)
        )
        if wanted.currency_code != order.total.currency_code or wanted.amount_minor <= 0:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                f"amount must be above 0 in {order.total.currency_code}",
                field="amount",
            )
        if wanted.amount_minor > remaining:
            raise errors.FailedPrecondition(
                "REFUND_EXCEEDS_PAYMENT",
                f"at most {remaining} minor units of order {order_id!r} can still be refunded",
                refundable_minor=str(remaining),
            )
        await self._store.transaction(
            lambda conn: conn.execute(
                "INSERT OR IGNORE INTO refund_attempts (order_id, request_id, amount_minor)"
                " VALUES (?, ?, ?)",
                (order_id, request_id, wanted.amount_minor),
            )
        )
        return await self._send_refund(record, request_id, wanted)

    async def _send_refund(
        self, record: OrderRecord, request_id: str, wanted: common_pb2.Money
    ) -> order_pb2.RefundOrderResponse:
        """Ask the gateway for a refund recorded as attempted, and record its answer."""
        order_id = record.order.order_id
        reply = await relayed(
            self._gateway().RefundPayment(
                authorization_pb2.RefundPaymentRequest(
                    request_id=ids.derived_request_id("refund", order_id, request_id),
                    transaction_id=record.transaction_id,
                    amount=wanted,
                ),
                timeout=CALL_TIMEOUT_S,
            )
        )

        def record_refund(conn: sqlite3.Connection) -> order_pb2.Order:
            current = self._load(conn, order_id)
            conn.execute(
                "INSERT OR IGNORE INTO refunds (order_id, request_id, amount_minor, refund_id,"
                " recorded_at) VALUES (?, ?, ?, ?, ?)",
                (order_id, request_id, wanted.amount_minor, reply.refund_id, now_iso()),
            )
            refunded = reply.refunded_total
            if refunded.amount_minor <= current.order.refunded_total.amount_minor:
                return current.order  # a replayed answer: already recorded
            target = (
                orders.REFUNDED
                if refunded.amount_minor >= current.order.total.amount_minor
                else orders.PARTIALLY_REFUNDED
            )
            return orders.transition(
                conn, self._trust_domain, current, target, refunded_total=refunded
            ).order

        refunded_order = await self._store.transaction(record_refund)
        _log.info(
            "order.refunded",
            order_id=order_id,
            refund_id=reply.refund_id,
            refunded_minor=reply.refunded_total.amount_minor,
        )
        return order_pb2.RefundOrderResponse(order=refunded_order, refund_id=reply.refund_id)

    def _move(
        self,
        conn: sqlite3.Connection,
        order_id: str,
        target: orders.OrderStatus,
        *,
        failure_reason: str | None = None,
        transaction_id: str | None = None,
        challenge: order_pb2.ChallengeRef | None = None,
    ) -> OrderRecord:
        return orders.transition(
            conn,
            self._trust_domain,
            self._load(conn, order_id),
            target,
            failure_reason=failure_reason,
            transaction_id=transaction_id,
            challenge=challenge,
        )

    def _fail_held(self, conn: sqlite3.Connection, order_id: str, reason: str) -> None:
        current = self._load(conn, order_id)
        if current.order.status in _HELD:
            orders.transition(
                conn, self._trust_domain, current, orders.FAILED, failure_reason=reason
            )

    @staticmethod
    def _load(conn: sqlite3.Connection, order_id: str) -> OrderRecord:
        record = orders.load_order(conn, order_id)
        if record is None:
            raise errors.NotFound("ORDER_NOT_FOUND", f"no order {order_id!r}", order_id=order_id)
        return record

    @staticmethod
    def _require_cancelable(record: OrderRecord) -> None:
        if record.order.status not in _HELD:
            raise errors.FailedPrecondition(
                "ORDER_NOT_CANCELABLE",
                f"order {record.order.order_id!r} is "
                f"{orders.status_name(record.order.status)} and can no longer be canceled",
                order_id=record.order.order_id,
            )


def _refund_attempt(conn: sqlite3.Connection, order_id: str, request_id: str) -> int | None:
    """The amount of a refund this request asked the gateway for, or None if it never did."""
    row = conn.execute(
        "SELECT amount_minor FROM refund_attempts WHERE order_id = ? AND request_id = ?",
        (order_id, request_id),
    ).fetchone()
    return None if row is None else int(row[0])


def _recorded_refund(
    conn: sqlite3.Connection, order_id: str, request_id: str
) -> tuple[int, str] | None:
    """(amount_minor, refund_id) of a refund recorded for this request, or None."""
    row = conn.execute(
        "SELECT amount_minor, refund_id FROM refunds WHERE order_id = ? AND request_id = ?",
        (order_id, request_id),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))
