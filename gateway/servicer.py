"""GatewayService over gRPC: protobuf in, domain call, protobuf out.

The caller is the merchant named by its certificate; every mutating call
(AuthorizePayment, CapturePayment, VoidPayment, RefundPayment) is idempotent
per (method, merchant, request_id) (payment.storage.idempotent): a stored
result is looked up before the call does anything else. An AuthorizePayment
whose result was never stored (the node died first) is answered from its
transaction's record, before its instruction's time is judged
(PaymentGateway.authorize).

A capture or void is noted as a pending call before the issuer is asked (so a
lost answer is finished on restart). When the issuer refuses it outright, the
call is over and changed nothing: the note this request made is removed, so a
refused call leaves the store as it was and nothing is resumed later. A note
made by an earlier request whose answer was lost is left for the resume loop.
A refund is asked of the merchant's acquirer (ReturnPayment).
"""

from __future__ import annotations

import grpc
from interbank.v1 import authorization_pb2, authorization_pb2_grpc

from gateway.authorization import PaymentGateway
from payment.identity import caller
from payment.storage import Store, idempotent

__all__ = ["GatewayServicer"]


class GatewayServicer(authorization_pb2_grpc.GatewayServiceServicer):
    """Serves GatewayService to merchants."""

    def __init__(self, gateway: PaymentGateway, store: Store) -> None:
        self._gateway = gateway
        self._store = store

    @idempotent(authorization_pb2.AuthorizePaymentResponse)
    async def AuthorizePayment(
        self,
        request: authorization_pb2.AuthorizePaymentRequest,
        context: grpc.aio.ServicerContext,
    ) -> authorization_pb2.AuthorizePaymentResponse:
        """Open, check and route a sealed payment; relay the issuer's decision."""
        return await self._gateway.authorize(request, caller().name)

    @idempotent(authorization_pb2.CapturePaymentResponse)
    async def CapturePayment(
        self,
        request: authorization_pb2.CapturePaymentRequest,
        context: grpc.aio.ServicerContext,
    ) -> authorization_pb2.CapturePaymentResponse:
        """Post the hold of one of the caller's transactions."""
        return await self._gateway.capture(request.transaction_id, caller().name)

    @idempotent(authorization_pb2.VoidPaymentResponse)
    async def VoidPayment(
        self,
        request: authorization_pb2.VoidPaymentRequest,
        context: grpc.aio.ServicerContext,
    ) -> authorization_pb2.VoidPaymentResponse:
        """Release the hold of one of the caller's transactions."""
        return await self._gateway.void(request.transaction_id, caller().name)

    async def GetPaymentTransaction(
        self,
        request: authorization_pb2.GetPaymentTransactionRequest,
        context: grpc.aio.ServicerContext,
    ) -> authorization_pb2.GetPaymentTransactionResponse:
        """The record of one of the caller's transactions."""
        record = await self._gateway.transaction(request.transaction_id, caller().name)
        return authorization_pb2.GetPaymentTransactionResponse(transaction=record.to_proto())

    @idempotent(authorization_pb2.RefundPaymentResponse)
    async def RefundPayment(
        self,
        request: authorization_pb2.RefundPaymentRequest,
        context: grpc.aio.ServicerContext,
    ) -> authorization_pb2.RefundPaymentResponse:
        """Refund (part of) one of the caller's captured transactions through its acquirer."""
        return await self._gateway.refund(request, caller().name)
