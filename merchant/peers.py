"""The merchant's channels to the gateway, to its acquirer (notices, cheque and coin
deposits) and to the banks whose coins it takes (their key sets).

Every channel is a long-lived mTLS channel opened on first use (inside the
event loop) and closed with the app. Calls on them carry the deadline of
``[timeouts] node_call_seconds``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from interbank.v1 import (
    authorization_pb2_grpc,
    cash_pb2_grpc,
    cheque_pb2_grpc,
    notification_pb2_grpc,
)

from payment.config import NodeConfig
from payment.tls import Channels

if TYPE_CHECKING:
    from interbank.v1.authorization_pb2_grpc import GatewayServiceAsyncStub
    from interbank.v1.cash_pb2_grpc import CashServiceAsyncStub
    from interbank.v1.cheque_pb2_grpc import ChequeServiceAsyncStub

__all__ = ["MerchantPeers"]


class MerchantPeers:
    """The gateway, the acquirer and the other banks, each over one shared channel (new
    ones after a certificate rotation)."""

    def __init__(
        self,
        gateway: NodeConfig,
        acquirer: NodeConfig,
        channels: Channels,
        banks: Iterable[NodeConfig] = (),
    ) -> None:
        """banks: the network's commercial banks, whose key sets coins are checked against."""
        self._gateway_node = gateway
        self._acquirer_node = acquirer
        self._channels = channels
        self._banks = {bank.bank_code: bank for bank in banks if bank.bank_code}

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

    def acquirer_cash(self) -> CashServiceAsyncStub:
        """The acquirer's CashService, where the merchant deposits the coins it was paid."""
        return cast(
            "CashServiceAsyncStub",
            cash_pb2_grpc.CashServiceStub(self._channels.get(self._acquirer_node.address)),
        )

    def bank_cash(self, bank_code: str) -> CashServiceAsyncStub | None:
        """The CashService of the bank with this code (its key set); None if no bank has it."""
        bank = self._banks.get(bank_code)
        if bank is None:
            return None
        return cast(
            "CashServiceAsyncStub",
            cash_pb2_grpc.CashServiceStub(self._channels.get(bank.address)),
        )

    async def close(self) -> None:
        """Close the channels opened so far."""
        await self._channels.close()
