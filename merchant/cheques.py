"""Paying an order with an electronic cheque: the payee's side of docs/cheque.md.

The customer's SubmitCheque carries the cheque it wrote and signed offline and
the account certificate of its cheque book. The merchant checks them without
calling anyone (docs/cheque.md section 6, the payee's checks 1 to 8:
:func:`payment.cheque_trust.read_verified`, then payee, amount, order
reference and date against its own order and clock), endorses the cheque to
its acquirer with its published Ed25519 key and deposits it there
(ChequeService.DepositCheque). The order is PAYMENT_PENDING while the cheque
clears; the acquirer's ChequeNotice (:mod:`merchant.settlement_listener`)
settles it (PAID: SETTLED, then DELIVERY_CONFIRMED) or fails it with the
return reason (RETURNED). A cheque drawn on the acquirer itself may be
decided in the deposit's own answer, which is applied the same way
(:func:`merchant.cheque_deposits.apply_deposit`).

The deposit is recorded (its request_id, the documents and the endorsement:
:mod:`merchant.cheque_deposits`) in the transaction that makes the order
PAYMENT_PENDING, before the acquirer is asked. An answer lost on the way
leaves the order pending with its deposit, which the customer's retry (the
same cheque) or the merchant's resolver (:meth:`ChequePayments.resume_deposits`)
sends again, with the same request_id: the acquirer answers a repeat with the
deposit as it is. A refusal by the acquirer (nothing recorded there) drops the
record and reopens the order (CREATED, with the refusal's reason), so the
customer can pay again. The merchant keeps the cheque as a payee keeps a
cheque it was given; it holds no account number (a cheque carries only an
opaque account reference), and no document reaches a log line.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519
from interbank.v1 import cheque_pb2, order_pb2

from merchant import orders
from merchant.cheque_deposits import (
    DEPOSITING,
    ChequePayment,
    DepositApplied,
    apply_deposit,
    drop_cheque_payment,
    insert_cheque_payment,
    load_cheque_payment,
    paid_by_cheque,
    waiting_deposits,
)
from merchant.ordering import OrderBook, require_unpaid
from payment import cheque, errors, ids
from payment.cheque import ChequeError
from payment.cheque_trust import ChequeKeys, ChequeRefused, VerifiedCheque, check_dates
from payment.cheque_trust import read_verified as _read_verified
from payment.clock import now, now_iso, to_iso
from payment.errors import outcome_unknown, relayed
from payment.logs import get_logger

if TYPE_CHECKING:
    from interbank.v1.cheque_pb2_grpc import ChequeServiceAsyncStub

__all__ = ["ChequeDesk", "ChequePayments", "deposit_request_id"]

_log = get_logger("paynet.merchant")

"""The acquirer's refusal of a cheque it holds under another request_id (metadata deposit_id)."""


@dataclass(frozen=True)
class ChequeDesk:
    """What the merchant needs to take cheques: whom to trust, its key, its bank, its clock."""

    keys: ChequeKeys
    """The network's published cheque keys (the drawee banks')."""
    endorsement_key: ed25519.Ed25519PrivateKey = field(repr=False)
    """The merchant's Ed25519 key, published as its signing key: it endorses cheques."""
    acquirer_bank_code: str
    """The merchant's bank: the endorsement's pay_to_bank_code, where cheques are deposited."""
    acquirer: Callable[[], ChequeServiceAsyncStub]
    """The acquirer's ChequeService, over the merchant's shared channel."""
    stale_days: int
    """``[limits] cheque_stale_days``: an older cheque is STALE_DATED."""
    clock: Callable[[], dt.datetime] = now
    """The merchant's clock; a cheque is judged by its UTC date."""


def deposit_request_id(order_id: str, request_id: str) -> str:
    """The DepositCheque request_id for a customer's SubmitCheque request_id."""
    return ids.derived_request_id("deposit", order_id, request_id)


def _parse(name: str, read: Callable[[], object]) -> None:
    """FIELD_INVALID naming the request's field if its document does not parse."""
    try:
        read()
    except ChequeError as exc:
        raise errors.InvalidArgument(
            "FIELD_INVALID", f"{name} does not parse: {exc}", field=name
        ) from None


class ChequePayments:
    """The electronic cheque's acceptance: SubmitCheque, and deposits whose answer was lost."""

    def __init__(self, book: OrderBook, desk: ChequeDesk | None) -> None:
        """desk None: this storefront takes no cheques (SubmitCheque is UNIMPLEMENTED)."""
        self._book = book
        self._desk = desk

    async def submit_cheque(
        self,
        customer_name: str,
        request_id: str,
        order_id: str,
        signed_cheque: bytes,
        signed_certificate: bytes,
    ) -> order_pb2.Order:
        """Check a cheque for one of the customer's orders, endorse it and deposit it.

        The order must be CREATED (FAILED_PRECONDITION, ORDER_NOT_PAYABLE) and the
        cheque pass the payee's checks (INVALID_ARGUMENT with the check's reason);
        both leave the order unchanged. The same cheque submitted again for its
        order (a retry) answers the order as it is, sending the recorded deposit
        again if its answer was lost. The acquirer's refusal reopens the order and
        is relayed; an unknown outcome is UNAVAILABLE, PAYMENT_OUTCOME_UNKNOWN, with
        the order PAYMENT_PENDING until the same cheque is submitted again.
        """
        desk = self._require_desk()
        book = self._book
        digest = cheque.cheque_digest(signed_cheque)
        record, taken = await book.store.read(
            lambda conn: (
                orders.customer_order(conn, order_id, customer_name),
                load_cheque_payment(conn, order_id),
            )
        )
        if taken is not None and taken.cheque_digest == digest:
            return await self._resume(taken)
        require_unpaid(record)
        verified = self._check(desk, record.order, signed_cheque, signed_certificate)
        written = verified.cheque
        endorsement = cheque.sign(
            desk.endorsement_key,
            cheque.Endorsement(digest, book.merchant_name, desk.acquirer_bank_code),
        )
        payment = ChequePayment(
            order_id=order_id,
            deposit_request_id=deposit_request_id(order_id, request_id),
            cheque_digest=digest,
            signed_cheque=signed_cheque,
            signed_certificate=signed_certificate,
            signed_endorsement=endorsement,
            drawee_bank_code=written.drawee_bank_code,
            serial=written.serial,
            deposit_id="",
            state=DEPOSITING,
            return_reason="",
            submitted_at=now_iso(),
        )

        def begin(conn: sqlite3.Connection) -> ChequePayment:
            current = orders.customer_order(conn, order_id, customer_name)
            recorded = load_cheque_payment(conn, order_id)
            if recorded is not None and recorded.cheque_digest == digest:
                return recorded  # the same cheque, recorded meanwhile by a concurrent twin
            # Only a CREATED order: it has no cheque (a refused deposit's record is dropped).
            require_unpaid(current)
            orders.transition(conn, book.trust_domain, current, orders.PAYMENT_PENDING)
            insert_cheque_payment(conn, payment)
            return payment

        recorded = await book.store.transaction(begin)
        if recorded is not payment:
            return await self._resume(recorded)
        _log.info(
            "cheque.accepted",
            order_id=order_id,
            drawee_bank_code=written.drawee_bank_code,
            serial=written.serial,
        )
        return await self._deposit(desk, payment)

    async def resume_deposits(self, *, older_than_s: float) -> int:
        """Send again the deposits whose answer was lost, recorded more than older_than_s
        ago; how many the acquirer answered (their orders then move as the answers say)."""
        desk = self._desk
        if desk is None:
            return 0
        cutoff = to_iso(now() - dt.timedelta(seconds=older_than_s))
        waiting = await self._book.store.read(lambda conn: waiting_deposits(conn, cutoff))
        answered = 0
        for payment in waiting:
            try:
                await self._deposit(desk, payment)
            except errors.PaynetError as exc:
                _log.warning("cheque.resume_failed", order_id=payment.order_id, reason=exc.reason)
                continue
            answered += 1
        return answered

    async def refuse_refund(self, order_id: str) -> None:
        """FAILED_PRECONDITION, REFUND_NOT_SUPPORTED, for a settled order paid by cheque.

        A cheque's money came through the cheque's clearing, not the gateway, which
        has no payment to refund; returning it is not built yet.
        """
        book = self._book

        def refundable_cheque(conn: sqlite3.Connection) -> bool:
            record = orders.load_order(conn, order_id)
            return (
                record is not None
                and record.order.status in orders.REFUNDABLE
                and paid_by_cheque(conn, order_id)
            )

        if await book.store.read(refundable_cheque):
            raise errors.FailedPrecondition(
                "REFUND_NOT_SUPPORTED",
                "refunds of cheque payments are not supported yet",
                order_id=order_id,
            )

    def _require_desk(self) -> ChequeDesk:
        if self._desk is None:
            raise errors.Unimplemented(
                "CHEQUES_NOT_ACCEPTED", "this merchant does not take cheques"
            )
        return self._desk

    def _check(
        self,
        desk: ChequeDesk,
        order: order_pb2.Order,
        signed_cheque: bytes,
        signed_certificate: bytes,
    ) -> VerifiedCheque:
        """The payee's checks 1 to 8 of docs/cheque.md section 6; INVALID_ARGUMENT if one fails."""
        _parse("signed_cheque", lambda: cheque.read_cheque(signed_cheque))
        _parse("signed_certificate", lambda: cheque.read_certificate(signed_certificate))
        try:
            verified = _read_verified(signed_cheque, signed_certificate, desk.keys)
            written = verified.cheque
            if written.payee != self._book.merchant_name:
                raise ChequeRefused(
                    "PAYEE_MISMATCH",
                    f"the cheque pays {written.payee!r}, not {self._book.merchant_name!r}",
                )
            if (written.amount_minor, written.currency_code) != (
                order.total.amount_minor,
                order.total.currency_code,
            ):
                raise ChequeRefused(
                    "AMOUNT_MISMATCH",
                    f"the cheque is for {written.amount_minor} {written.currency_code}; the"
                    f" order's total is {order.total.amount_minor} {order.total.currency_code}",
                )
            if written.order_reference != order.order_id:
                raise ChequeRefused(
                    "ORDER_REFERENCE_MISMATCH",
                    f"the cheque's order reference is not order {order.order_id!r}",
                )
            check_dates(written, desk.clock().astimezone(dt.UTC).date(), desk.stale_days)
        except ChequeRefused as exc:
            _log.info("cheque.refused", order_id=order.order_id, reason=exc.reason)
            raise errors.InvalidArgument(exc.reason, exc.message, order_id=order.order_id) from None
        return verified

    async def _resume(self, payment: ChequePayment) -> order_pb2.Order:
        """The order of a cheque taken before; its deposit sent again if unanswered."""
        if payment.state == DEPOSITING:
            return await self._deposit(self._require_desk(), payment)
        book = self._book
        current = await book.store.read(lambda conn: book.load(conn, payment.order_id))
        return current.order

    async def _deposit(self, desk: ChequeDesk, payment: ChequePayment) -> order_pb2.Order:
        """Send the recorded deposit to the acquirer and apply its answer."""
        book = self._book
        order_id = payment.order_id
        request = cheque_pb2.DepositChequeRequest(
            request_id=payment.deposit_request_id,
            signed_cheque=payment.signed_cheque,
            signed_certificate=payment.signed_certificate,
            signed_endorsement=payment.signed_endorsement,
        )
        try:
            reply = await relayed(
                desk.acquirer().DepositCheque(request, timeout=book.call_timeout_s)
            )
        except errors.PaynetError as exc:
            if outcome_unknown(exc):
                # The acquirer may hold the cheque: the order stays PAYMENT_PENDING with
                # its deposit, which a retry (or the resolver) sends again, same request_id.
                _log.warning("cheque.outcome_unknown", order_id=order_id, status=exc.code.name)
                raise errors.Unavailable(
                    "PAYMENT_OUTCOME_UNKNOWN",
                    f"the deposit of the cheque for order {order_id!r} did not complete; "
                    "submit the same cheque again",
                    order_id=order_id,
                ) from None
            # The acquirer answers a repeat of this record's deposit request with the
            # deposit as it is now, however late: CHEQUE_ALREADY_DEPOSITED means the cheque
            # was deposited under another request, not by this node (its operator, say),
            # and is passed on like any refusal.
            reason = exc.reason
            await book.store.transaction(lambda conn: self._reopen(conn, payment, reason))
            _log.info("cheque.deposit_refused", order_id=order_id, reason=reason)
            raise
        deposit = reply.deposit

        def answered(conn: sqlite3.Connection) -> tuple[DepositApplied, order_pb2.Order]:
            applied = apply_deposit(conn, book.trust_domain, deposit, order_id=order_id)
            return applied, book.load(conn, order_id).order

        applied, order = await book.store.transaction(answered)
        if applied is DepositApplied.MISMATCH:
            _log.warning(
                "cheque.deposit_answer_mismatch", order_id=order_id, deposit_id=deposit.deposit_id
            )
        else:
            _log.info(
                "cheque.deposited",
                order_id=order_id,
                deposit_id=deposit.deposit_id,
                state=cheque_pb2.ChequeState.Name(deposit.state),
                outcome=applied.value,
            )
        return order

    def _reopen(self, conn: sqlite3.Connection, payment: ChequePayment, reason: str) -> None:
        """The acquirer refused the deposit: drop it and reopen the order with the reason."""
        current = load_cheque_payment(conn, payment.order_id)
        if (
            current is None
            or current.state != DEPOSITING
            or current.deposit_request_id != payment.deposit_request_id
        ):
            return  # answered meanwhile (a concurrent retry or the notice)
        drop_cheque_payment(conn, payment.order_id)
        record = self._book.load(conn, payment.order_id)
        if record.order.status == orders.PAYMENT_PENDING:
            orders.transition(
                conn, self._book.trust_domain, record, orders.CREATED, failure_reason=reason
            )
