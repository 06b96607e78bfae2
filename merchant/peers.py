"""The merchant's channels to the gateway and to its acquirer, and error relaying.

Both channels are long-lived mTLS channels opened on first use (inside the
event loop) and closed with the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import grpc
from interbank.v1 import authorization_pb2_grpc, notification_pb2_grpc

from payment.config import NodeConfig
from payment.tls import TlsIdentity, secure_channel

if TYPE_CHECKING:
    from interbank.v1.authorization_pb2_grpc import GatewayServiceAsyncStub

__all__ = ["CALL_TIMEOUT_S", "MerchantPeers"]

CALL_TIMEOUT_S = 5.0
"""Deadline of every outbound call, in seconds."""


class MerchantPeers:
    """The gateway and the acquirer, each over one shared channel."""

    def __init__(self, gateway: NodeConfig, acquirer: NodeConfig, tls: TlsIdentity) -> None:
        self._gateway_node = gateway
        self._acquirer_node = acquirer
        self._tls = tls
        self._gateway_channel: grpc.aio.Channel | None = None
        self._acquirer_channel: grpc.aio.Channel | None = None
        self._gateway_stub: GatewayServiceAsyncStub | None = None

    def gateway(self) -> GatewayServiceAsyncStub:
        """The gateway's GatewayService."""
        if self._gateway_stub is None:
            self._gateway_channel = secure_channel(self._gateway_node.address, self._tls)
            self._gateway_stub = cast(
                "GatewayServiceAsyncStub",
                authorization_pb2_grpc.GatewayServiceStub(self._gateway_channel),
            )
        return self._gateway_stub

    def acquirer_notifications(self) -> notification_pb2_grpc.NotificationServiceStub:
        """The acquirer's NotificationService, where the merchant's credit notices arrive."""
        if self._acquirer_channel is None:
            self._acquirer_channel = secure_channel(self._acquirer_node.address, self._tls)
        return notification_pb2_grpc.NotificationServiceStub(self._acquirer_channel)

    async def close(self) -> None:
        """Close the channels opened so far."""
        for channel in (self._gateway_channel, self._acquirer_channel):
            if channel is not None:
                await channel.close()
        self._gateway_channel = self._acquirer_channel = None
        self._gateway_stub = None
