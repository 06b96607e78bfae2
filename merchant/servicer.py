"""OrderService and NotificationService over gRPC: protobuf in, domain call, protobuf out.

The caller is the customer named by its certificate; every mutating call is
idempotent per (method, customer, request_id).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from interbank.v1 import notification_pb2, order_pb2, order_pb2_grpc

from merchant.payments import Storefront
from payment.identity import caller
from payment.notifications import NotificationServicer
from payment.storage import Store

__all__ = ["OrderServicer", "OrderUpdatesServicer"]

Ready = Callable[[], Awaitable[None]]


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    """Serves the storefront to customers."""

    def __init__(self, storefront: Storefront, store: Store, ready: Ready) -> None:
        self._storefront = storefront
        self._store = store
        # Awaited first by every call: the store opens on first use, see MerchantApp.
        self._ready = ready

    async def ListProducts(
        self, request: order_pb2.ListProductsRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.ListProductsResponse:
        """The catalog."""
        return order_pb2.ListProductsResponse(products=self._storefront.catalog.products())

    async def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.CreateOrderResponse:
        """Price and store an order for the caller."""
        await self._ready()
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
        await self._ready()
        order = await self._storefront.get_order(caller().name, request.order_id)
        return order_pb2.GetOrderResponse(order=order)

    async def SubmitPayment(
        self, request: order_pb2.SubmitPaymentRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.SubmitPaymentResponse:
        """Forward the caller's sealed payment for one of its orders."""
        await self._ready()
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
        await self._ready()
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
        await self._ready()
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


class OrderUpdatesServicer(NotificationServicer):
    """The shared outbox stream, waiting for the store to open first."""

    def __init__(self, store: Store, ready: Ready) -> None:
        super().__init__(store)
        self._ready = ready

    async def Subscribe(
        self, request: notification_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[notification_pb2.SubscribeResponse]:
        """The caller's order updates after a sequence number, then new ones as they happen."""
        await self._ready()
        async for event in super().Subscribe(request, context):
            yield event
