"""Refunds: (part of) a captured transaction returned through the merchant's acquirer.

The gateway holds no money: a refund is asked of the merchant's acquirer
(ReturnPayment), which returns it to the issuer over the original credit
transfer, and the total refunded is recorded on the transaction. The call
carries the deadline of ``[timeouts] node_call_seconds``.
"""

from __future__ import annotations

from functools import partial

from interbank.v1 import authorization_pb2

from gateway import store as records
from gateway.holds import Holds
from gateway.issuers import AcquirerLookup
from payment import errors, ids
from payment.config import NetworkConfig
from payment.errors import relayed
from payment.logs import get_logger
from payment.storage import Store

__all__ = ["Refunds"]

_log = get_logger("paynet.gateway")


class Refunds:
    """Refunds of captured transactions, asked of the merchant's acquirer."""

    def __init__(
        self, store: Store, network: NetworkConfig, holds: Holds, acquirers: AcquirerLookup
    ) -> None:
        self._store = store
        self._network = network
        self._holds = holds
        self._acquirers = acquirers
        self._call_timeout_s = network.timeouts.node_call_seconds

    async def refund(
        self, request: authorization_pb2.RefundPaymentRequest, merchant_name: str
    ) -> authorization_pb2.RefundPaymentResponse:
        """Ask the merchant's acquirer to return (part of) a captured transaction."""
        record = await self._holds.held(
            request.transaction_id, merchant_name, "PAYMENT_NOT_REFUNDABLE"
        )
        if record.hold_status != authorization_pb2.HOLD_STATUS_CAPTURED:
            # A capture whose answer was lost (the merchant may know it settled before we
            # do): finish it first, so the refund sees the payment as the issuer has it.
            pending = await self._store.read(
                partial(records.pending_calls, transaction_id=record.transaction_id)
            )
            if (record.transaction_id, "capture") in pending:
                await self._holds.capture_hold(record)
                record = await self._holds.transaction(record.transaction_id, merchant_name)
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
