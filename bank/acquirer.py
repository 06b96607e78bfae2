"""The acquirer: refunding a merchant's settled payment as an interbank return.

The merchant's money is here, so a refund starts here: the merchant's account
is debited into suspense and a payment return (after pacs.004) referencing the
original credit transfer is recorded, in one transaction; then it is sent to
the settlement bank like any outgoing message (:mod:`bank.outgoing`). The
issuer credits the customer when the return is delivered; a rejected return
reverses the merchant's debit; a settled one sends the merchant a RefundNotice
(:func:`bank.notices.announce_settled_return`), whoever asked for the refund, so
the merchant's books learn of it even when its node did not ask. The refund of
a payment from a customer of this same bank is booked inside it
(:func:`bank.outgoing.book_on_us`), as the payment was.

All returns of a transfer together never exceed it. The return's id is derived
from the caller and its request id, so a retried request finds its first
return instead of making a second one.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid

from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import common_pb2, settlement_pb2

from bank import ledger
from bank.messages import RETURN
from bank.notices import emit_account_entry, money
from bank.opening import SUSPENSE
from bank.outgoing import PENDING, REJECTED, OutgoingTransfers, record_outgoing
from payment import errors
from payment.clock import now as clock_now
from payment.config import NetworkConfig, NodeConfig, Role
from payment.identity import spiffe_id
from payment.money import require_amount
from payment.storage import Store, request_hash

__all__ = ["Acquirer"]

_DEFAULT_REASON = "CUST"


class Acquirer:
    """AcquirerService's domain over the bank's store."""

    def __init__(
        self, store: Store, network: NetworkConfig, node: NodeConfig, outgoing: OutgoingTransfers
    ) -> None:
        if node.bank_code is None:
            raise ValueError(f"node {node.name} has no bank_code")
        self._store = store
        self._network = network
        self._code = node.bank_code
        self._outgoing = outgoing

    async def return_payment(
        self,
        request: authz.ReturnPaymentRequest,
        caller_uri: str,
        *,
        now: dt.datetime | None = None,
    ) -> authz.ReturnPaymentResponse:
        """Debit the merchant and settle a return to the issuer; answers once it is decided."""
        moment = now or clock_now()
        if not request.request_id:
            raise errors.InvalidArgument(
                "REQUEST_ID_MISSING", "request_id is required: choose a unique id per request"
            )
        require_amount(request.amount.amount_minor, "amount")
        if request.amount.currency_code != self._network.currency:
            raise errors.InvalidArgument(
                "FIELD_INVALID", f"amount must be in {self._network.currency}", field="amount"
            )
        return_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{caller_uri}|{request.request_id}"))
        async with self._store.exclusive(f"return\x00{return_id}"):
            await self._store.transaction(
                lambda conn: self._begin(conn, request, return_id, moment)
            )
            state, reason = await self._outgoing.deliver(return_id)
        if state == PENDING:
            raise errors.Unavailable(
                "RETURN_PENDING",
                "the settlement bank has not answered yet; the return is recorded and will be"
                " delivered: retry with the same request_id for its outcome",
                return_id=return_id,
            )
        if state == REJECTED:
            raise errors.FailedPrecondition(
                "RETURN_REJECTED",
                f"the settlement of the return was rejected ({reason}); the merchant's debit"
                " was reversed",
                settlement_reason=reason,
                return_id=return_id,
            )
        returned = await self._store.read(
            lambda conn: _returned(conn, request.original_instruction_id, up_to=return_id)
        )
        return authz.ReturnPaymentResponse(
            return_id=return_id,
            returned_total=money(returned, self._network.currency),
        )

    def _begin(
        self,
        conn: sqlite3.Connection,
        request: authz.ReturnPaymentRequest,
        return_id: str,
        now: dt.datetime,
    ) -> None:
        digest = request_hash(request)
        existing = conn.execute(
            "SELECT request_hash FROM outgoing_transfers WHERE instruction_id = ?", (return_id,)
        ).fetchone()
        if existing is not None:
            if bytes(existing[0]) != digest:
                raise errors.AlreadyExists(
                    "IDEMPOTENCY_KEY_REUSED",
                    "this request_id was already used for a different refund",
                    request_id=request.request_id,
                )
            return
        amount = request.amount
        merchant_uri = spiffe_id(self._network.trust_domain, Role.MERCHANT, request.merchant_name)
        original = conn.execute(
            "SELECT t.account_id, t.amount, t.end_to_end_id FROM incoming_transfers t"
            " JOIN accounts a ON a.account_id = t.account_id"
            " WHERE t.debtor_agent = ? AND t.instruction_id = ? AND t.status = 'ACCEPTED'"
            " AND a.holder_uri = ?",
            (request.original_debtor_agent, request.original_instruction_id, merchant_uri),
        ).fetchone()
        if original is None:
            raise errors.NotFound(
                "ORIGINAL_TRANSFER_NOT_FOUND",
                "no settled transfer with this instruction id credited this merchant here",
                instruction_id=request.original_instruction_id,
            )
        account_id, original_amount, order_id = original
        refundable = original_amount - _returned(conn, request.original_instruction_id)
        if amount.amount_minor > refundable:
            raise errors.FailedPrecondition(
                "REFUND_EXCEEDS_PAYMENT",
                f"at most {refundable} minor units of this payment can still be refunded",
                refundable_minor=str(refundable),
            )
        try:
            ledger.transfer(
                conn,
                account_id,
                SUSPENSE,
                amount.amount_minor,
                amount.currency_code,
                now=now,
                order_id=order_id,
                description=f"refund of order {order_id}",
            )
        except ledger.LimitExceeded:
            raise errors.FailedPrecondition(
                "INSUFFICIENT_FUNDS", "the merchant's available balance is below the refund"
            ) from None
        payment_return = settlement_pb2.PaymentReturn(
            return_id=return_id,
            original_instruction_id=request.original_instruction_id,
            original_end_to_end_id=order_id,
            amount=amount,
            returning_agent=self._code,
            receiving_agent=request.original_debtor_agent,
            reason_code=request.reason_code or _DEFAULT_REASON,
        )
        record_outgoing(conn, payment_return, account_id=account_id, now=now, request_hash=digest)
        merchant = ledger.account(conn, account_id)
        assert merchant is not None  # the debit above needed it
        emit_account_entry(
            conn,
            merchant_uri,
            account=common_pb2.AccountRef(bank_code=self._code, account_id=account_id),
            credit=False,
            amount=money(amount.amount_minor, amount.currency_code),
            order_id=order_id,
            instruction_id=return_id,
            balance_after=money(merchant.booked, amount.currency_code),
            description=f"refund of order {order_id}",
        )


def _returned(
    conn: sqlite3.Connection, original_instruction_id: str, up_to: str | None = None
) -> int:
    """Returns of a transfer not rejected (settled or on their way), in minor units.

    With up_to (a return id), only that return and the ones recorded before it:
    the total as it stood when that return was made, so a replay answers the same.
    """
    (total,) = conn.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM outgoing_transfers"
        " WHERE kind = ? AND original_instruction_id = ? AND settlement_state != ?"
        " AND (? IS NULL OR rowid <= (SELECT rowid FROM outgoing_transfers"
        " WHERE instruction_id = ?))",
        (RETURN, original_instruction_id, REJECTED, up_to, up_to),
    ).fetchone()
    return int(total)
