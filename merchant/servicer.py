"""OrderService and NotificationService over gRPC: protobuf in, domain call, protobuf out.

The caller is the customer named by its certificate; every mutating call is
idempotent per (method, customer, request_id).
"""

from __future__ import annotations

import grpc
from interbank.v1 import order_pb2, order_pb2_grpc

from merchant.payments import Storefront
from payment import errors
from payment.identity import caller
from payment.storage import Store

__all__ = ["BackOfficeServicer", "OrderServicer"]


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    """Serves the storefront to customers."""

    def __init__(self, storefront: Storefront, store: Store) -> None:
        self._storefront = storefront
        self._store = store

    async def ListProducts(
        self, request: order_pb2.ListProductsRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.ListProductsResponse:
        """The catalog."""
        return order_pb2.ListProductsResponse(products=self._storefront.catalog.products())

    async def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.CreateOrderResponse:
        """Price and store an order for the caller."""
        customer = caller()
        return await self._store.once(
            f"CreateOrder|{customer.uri}",
            request.request_id,
            request,
            order_pb2.CreateOrderResponse,
            lambda conn: self._storefront.create_order(conn, customer.name, request.lines),
        )

    async def GetOrder(
        self, request: order_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.GetOrderResponse:
        """One of the caller's orders."""
        order = await self._storefront.get_order(caller().name, request.order_id)
        return order_pb2.GetOrderResponse(order=order)

    async def SubmitPayment(
        self, request: order_pb2.SubmitPaymentRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.SubmitPaymentResponse:
        """Forward the caller's sealed payment for one of its orders."""
        customer = caller()

        async def step() -> order_pb2.SubmitPaymentResponse:
            order = await self._storefront.submit_payment(
                customer.name, request.order_id, request.payment
            )
            return order_pb2.SubmitPaymentResponse(order=order)

        return await self._store.once_async(
            f"SubmitPayment|{customer.uri}",
            request.request_id,
            request,
            order_pb2.SubmitPaymentResponse,
            step,
        )

    async def CompletePayment(
        self, request: order_pb2.CompletePaymentRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.CompletePaymentResponse:
        """Capture the authorized payment of one of the caller's orders."""
        customer = caller()

        async def step() -> order_pb2.CompletePaymentResponse:
            order = await self._storefront.complete_payment(customer.name, request.order_id)
            return order_pb2.CompletePaymentResponse(order=order)

        return await self._store.once_async(
            f"CompletePayment|{customer.uri}",
            request.request_id,
            request,
            order_pb2.CompletePaymentResponse,
            step,
        )

    async def CancelOrder(
        self, request: order_pb2.CancelOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.CancelOrderResponse:
        """Cancel one of the caller's orders before capture."""
        customer = caller()

        async def step() -> order_pb2.CancelOrderResponse:
            order = await self._storefront.cancel_order(customer.name, request.order_id)
            return order_pb2.CancelOrderResponse(order=order)

        return await self._store.once_async(
            f"CancelOrder|{customer.uri}",
            request.request_id,
            request,
            order_pb2.CancelOrderResponse,
            step,
        )


class BackOfficeServicer(order_pb2_grpc.BackOfficeServiceServicer):
    """The merchant's own operations, for callers holding the merchant's certificate."""

    def __init__(self, storefront: Storefront, store: Store, merchant_name: str) -> None:
        self._storefront = storefront
        self._store = store
        self._merchant_name = merchant_name

    async def RefundOrder(
        self, request: order_pb2.RefundOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.RefundOrderResponse:
        """Refund (part of) a settled order."""
        operator = caller()
        if operator.name != self._merchant_name:
            raise errors.PermissionDenied(
                "NOT_THIS_MERCHANT", "only this merchant's own certificate may refund its orders"
            )
        amount = request.amount if request.HasField("amount") else None
        return await self._store.once_async(
            f"RefundOrder|{operator.uri}",
            request.request_id,
            request,
            order_pb2.RefundOrderResponse,
            lambda: self._storefront.refund_order(request.order_id, amount, request.request_id),
        )
