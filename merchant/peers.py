"""The merchant's channels to the gateway and to its acquirer (notices and cheque deposits).

Both channels are long-lived mTLS channels opened on first use (inside the
event loop) and closed with the app. Calls on them carry the deadline of
``[timeouts] node_call_seconds``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from interbank.v1 import authorization_pb2_grpc, cheque_pb2_grpc, notification_pb2_grpc

from payment.config import NodeConfig
from payment.tls import Channels

if TYPE_CHECKING:
    from interbank.v1.authorization_pb2_grpc import GatewayServiceAsyncStub
    from interbank.v1.cheque_pb2_grpc import ChequeServiceAsyncStub

__all__ = ["MerchantPeers"]


class MerchantPeers:
    """The gateway and the acquirer, each over one shared channel (new ones after a
    certificate rotation)."""

    def __init__(self, gateway: NodeConfig, acquirer: NodeConfig, channels: Channels) -> None:
        self._gateway_node = gateway
        self._acquirer_node = acquirer
        self._channels = channels

    def gateway(self) -> GatewayServiceAsyncStub:
        """The gateway's GatewayService."""
        return cast(
            "GatewayServiceAsyncStub",
            authorization_pb2_grpc.GatewayServiceStub(
                self._channels.get(self._gateway_node.address)
            ),
        )

    def acquirer_notifications(self) -> notification_pb2_grpc.NotificationServiceStub:
        """The acquirer's NotificationService, where the merchant's credit notices arrive."""
        return notification_pb2_grpc.NotificationServiceStub(
            self._channels.get(self._acquirer_node.address)
        )

    def acquirer_cheques(self) -> ChequeServiceAsyncStub:
        """The acquirer's ChequeService, where the merchant deposits the cheques it endorsed."""
        return cast(
            "ChequeServiceAsyncStub",
            cheque_pb2_grpc.ChequeServiceStub(self._channels.get(self._acquirer_node.address)),
        )

    async def close(self) -> None:
        """Close the channels opened so far."""
        await self._channels.close()
