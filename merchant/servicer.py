"""OrderService and BackOfficeService over gRPC: protobuf in, domain call, protobuf out.

The caller is the customer (OrderService) or the merchant itself (BackOfficeService)
named by its certificate; every mutating call is idempotent per (method, caller,
request_id) (payment.storage.idempotent). The customers' NotificationService is
payment.notifications.NotificationServicer, registered by merchant.app.

A sealed payment is checked for its shape before the order is touched: a
payment that cannot be one the gateway opens (too short to hold an HPKE
encapsulated key and tag, no well-formed key id, no 64-byte signature) is
refused at once, so it neither moves the order nor reaches the gateway.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

import grpc
from interbank.v1 import common_pb2, order_pb2, order_pb2_grpc

from merchant.payments import Storefront
from payment import errors
from payment.identity import caller
from payment.storage import Store, idempotent, idempotent_transaction, served_once

__all__ = ["BackOfficeServicer", "OrderServicer", "check_sealed_payment"]

_ENVELOPE_LEN = 32 + 16
"""HPKE X25519 encapsulated key plus the AES-128-GCM tag: a sealed instruction holds more."""
_SIGNATURE_LEN = 64
"""An Ed25519 signature."""
_KEY_ID = re.compile(r"\A[0-9a-f]{16}\Z")
"""payment.pki.key_id: 8 bytes of SHA-256, in lower-case hex."""


def check_sealed_payment(payment: common_pb2.SealedPayment) -> None:
    """Refuse a sealed payment whose shape no gateway could accept (nothing is read or written).

    FIELD_INVALID for a missing or too short sealed instruction,
    UNKNOWN_GATEWAY_KEY for a key id that is not one, DUAL_SIGNATURE_INVALID
    for a signature that is not 64 bytes: the reasons the gateway and the
    issuer give for the same payment.
    """
    if len(payment.sealed_instruction) <= _ENVELOPE_LEN:
        raise errors.InvalidArgument(
            "FIELD_INVALID",
            "payment.sealed_instruction is required: the instruction sealed to the gateway key",
            field="payment.sealed_instruction",
        )
    if not _KEY_ID.match(payment.gateway_key_id):
        raise errors.InvalidArgument(
            "UNKNOWN_GATEWAY_KEY",
            "payment.gateway_key_id must be the gateway key id returned by CreateOrder",
        )
    if len(payment.dual_signature) != _SIGNATURE_LEN:
        raise errors.InvalidArgument(
            "DUAL_SIGNATURE_INVALID",
            f"payment.dual_signature must be a {_SIGNATURE_LEN}-byte Ed25519 signature",
        )


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    """Serves the storefront to customers (OrderService)."""

    def __init__(self, storefront: Storefront, store: Store) -> None:
        self._storefront = storefront
        self._store = store

    async def ListProducts(
        self, request: order_pb2.ListProductsRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.ListProductsResponse:
        """The catalog."""
        return order_pb2.ListProductsResponse(products=self._storefront.catalog.products())

    @idempotent_transaction(order_pb2.CreateOrderResponse)
    def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: grpc.aio.ServicerContext
    ) -> Callable[[sqlite3.Connection], order_pb2.CreateOrderResponse]:
        """Price and store an order for the caller."""
        customer = caller()
        return lambda conn: self._storefront.create_order(conn, customer.name, request.lines)

    async def GetOrder(
        self, request: order_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.GetOrderResponse:
        """One of the caller's orders."""
        order = await self._storefront.get_order(caller().name, request.order_id)
        return order_pb2.GetOrderResponse(order=order)

    @idempotent(order_pb2.SubmitPaymentResponse)
    async def SubmitPayment(
        self, request: order_pb2.SubmitPaymentRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.SubmitPaymentResponse:
        """Forward the caller's sealed payment for one of its orders."""
        check_sealed_payment(request.payment)
        order = await self._storefront.submit_payment(
            caller().name, request.order_id, request.payment
        )
        return order_pb2.SubmitPaymentResponse(order=order)

    async def SubmitCheque(
        self, request: order_pb2.SubmitChequeRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.SubmitChequeResponse:
        """Pay one of the caller's orders with an electronic cheque (merchant.cheques).

        Served once per request_id like SubmitPayment; a repeat answers the order as
        it is now, which moves on after the deposit (SETTLED or FAILED by the notice).
        """
        customer = caller().name
        answered = await served_once(
            self._store,
            "SubmitCheque",
            request,
            order_pb2.SubmitChequeResponse,
            lambda: self._submit_cheque(customer, request),
        )
        order = await self._storefront.get_order(customer, answered.order.order_id)
        return order_pb2.SubmitChequeResponse(order=order)

    async def _submit_cheque(
        self, customer: str, request: order_pb2.SubmitChequeRequest
    ) -> order_pb2.SubmitChequeResponse:
        order = await self._storefront.submit_cheque(
            customer,
            request.request_id,
            request.order_id,
            request.signed_cheque,
            request.signed_certificate,
        )
        return order_pb2.SubmitChequeResponse(order=order)

    async def SubmitCoins(
        self, request: order_pb2.SubmitCoinsRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.SubmitCoinsResponse:
        """Pay one of the caller's orders with electronic coins (merchant.coins).

        Served once per request_id; a repeat answers the order as it is now, sending
        its deposit again while the issuer has not decided it.
        """
        customer = caller().name
        served: list[bool] = []

        async def submit() -> order_pb2.SubmitCoinsResponse:
            served.append(True)
            order = await self._storefront.submit_coins(
                customer, request.request_id, request.order_id, request.coins
            )
            return order_pb2.SubmitCoinsResponse(order=order)

        answered = await served_once(
            self._store, "SubmitCoins", request, order_pb2.SubmitCoinsResponse, submit
        )
        if served:
            return answered
        order = await self._storefront.coins.answer_again(
            customer, request.request_id, answered.order.order_id
        )
        return order_pb2.SubmitCoinsResponse(order=order)

    @idempotent(order_pb2.CompletePaymentResponse)
    async def CompletePayment(
        self, request: order_pb2.CompletePaymentRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.CompletePaymentResponse:
        """Capture the authorized payment of one of the caller's orders."""
        order = await self._storefront.complete_payment(caller().name, request.order_id)
        return order_pb2.CompletePaymentResponse(order=order)

    @idempotent(order_pb2.CancelOrderResponse)
    async def CancelOrder(
        self, request: order_pb2.CancelOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.CancelOrderResponse:
        """Cancel one of the caller's orders before capture."""
        order = await self._storefront.cancel_order(caller().name, request.order_id)
        return order_pb2.CancelOrderResponse(order=order)


class BackOfficeServicer(order_pb2_grpc.BackOfficeServiceServicer):
    """The merchant's own operations (BackOfficeService), for callers holding the
    merchant's certificate."""

    def __init__(self, storefront: Storefront, store: Store, merchant_name: str) -> None:
        self._storefront = storefront
        self._store = store
        self._merchant_name = merchant_name

    async def RefundOrder(
        self, request: order_pb2.RefundOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.RefundOrderResponse:
        """Refund (part of) a settled order."""
        if caller().name != self._merchant_name:
            raise errors.PermissionDenied(
                "NOT_THIS_MERCHANT", "only this merchant's own certificate may refund its orders"
            )
        amount = request.amount if request.HasField("amount") else None
        return await served_once(
            self._store,
            "RefundOrder",
            request,
            order_pb2.RefundOrderResponse,
            lambda: self._storefront.refund_order(request.order_id, amount, request.request_id),
        )
