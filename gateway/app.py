"""The gateway node: its store, its HPKE key, its issuer channels and its servicer."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from interbank.v1 import authorization_pb2, authorization_pb2_grpc

from gateway.authorization import PaymentGateway
from gateway.checks import GatewayKey
from gateway.issuers import IssuerChannels
from gateway.servicer import GatewayServicer
from gateway.store import open_store
from payment.config import NetworkConfig, NodeConfig
from payment.envelope import load_x25519_private
from payment.pki import Pki, key_id
from payment.tls import TlsIdentity

__all__ = ["GatewayApp", "create_app", "load_gateway_key"]

SERVICE_NAMES = (authorization_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name,)


def load_gateway_key(network: NetworkConfig, node: NodeConfig) -> GatewayKey:
    """The gateway's HPKE private key and its key id, from the network's PKI."""
    private_key = load_x25519_private(Pki(network.pki_dir).hpke_key(node.name).read_bytes())
    return GatewayKey(private_key=private_key, key_id=key_id(private_key.public_key()))


class GatewayApp:
    """The gateway's NodeApp."""

    def __init__(self, network: NetworkConfig, node: NodeConfig, tls: TlsIdentity) -> None:
        self._store = open_store(node.data_dir, network.limits.idempotency_retention_seconds)
        self._issuers = IssuerChannels(tls)
        self.gateway = PaymentGateway(
            self._store,
            network,
            load_gateway_key(network, node),
            self._issuers.issuer,
            self._issuers.acquirer,
        )

    @property
    def service_names(self) -> Sequence[str]:
        """GatewayService."""
        return SERVICE_NAMES

    def register(self, server: grpc.aio.Server) -> None:
        """Add the GatewayService servicer."""
        authorization_pb2_grpc.add_GatewayServiceServicer_to_server(
            GatewayServicer(self.gateway, self._store), server
        )

    async def start(self) -> None:
        """Open the store (before the server takes calls, see payment.server.serve_node)."""
        await self._store.open()

    async def close(self) -> None:
        """Close the issuer channels and the store."""
        await self._issuers.close()
        await self._store.close()


def create_app(network: NetworkConfig, node: NodeConfig, tls: TlsIdentity) -> GatewayApp:
    """The gateway node's app (the entry point named in payment.server.APP_FACTORIES)."""
    return GatewayApp(network, node, tls)
