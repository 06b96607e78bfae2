"""The gateway node: its store, its HPKE key, its issuer channels and its servicer."""

from __future__ import annotations

import asyncio
import contextlib
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
from payment.logs import get_logger
from payment.pki import Pki, key_id
from payment.tls import Channels, NodeIdentity

__all__ = ["GatewayApp", "create_app", "load_gateway_key"]

_log = get_logger("paynet.gateway")
RESUME_INTERVAL_S = 2.0
"""How often the gateway looks for captures and voids whose answers were lost."""

SERVICE_NAMES = (authorization_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name,)


def load_gateway_key(network: NetworkConfig, node: NodeConfig) -> GatewayKey:
    """The gateway's HPKE private key and its key id, from the network's PKI."""
    private_key = load_x25519_private(Pki(network.pki_dir).hpke_key(node.name).read_bytes())
    return GatewayKey(private_key=private_key, key_id=key_id(private_key.public_key()))


class GatewayApp:
    """The gateway's NodeApp."""

    def __init__(self, network: NetworkConfig, node: NodeConfig, identity: NodeIdentity) -> None:
        self._resuming: asyncio.Task[None] | None = None
        self._store = open_store(node.store_path, network.limits.idempotency_retention_seconds)
        self._issuers = IssuerChannels(Channels(identity))
        self._call_timeout_s = network.timeouts.node_call_seconds
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
        """Open the store and resume interrupted calls (before the server takes calls)."""
        await self._store.open()
        self._resuming = asyncio.create_task(self._resume_forever(), name="resume-calls")

    async def _resume_forever(self) -> None:
        # The first round finishes what a crash interrupted; later rounds pick up calls
        # whose answers were lost (older than a call's deadline, so none is still running).
        older_than = 0.0
        while True:
            try:
                await self.gateway.resume_pending_calls(older_than)
            except Exception as exc:
                _log.warning("background.failed", job="resume-calls", error_type=type(exc).__name__)
            older_than = 2 * self._call_timeout_s
            await asyncio.sleep(RESUME_INTERVAL_S)

    async def close(self) -> None:
        """Stop resuming calls, close the issuer channels and the store."""
        if self._resuming is not None:
            self._resuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resuming
            self._resuming = None
        await self._issuers.close()
        await self._store.close()


def create_app(network: NetworkConfig, node: NodeConfig, identity: NodeIdentity) -> GatewayApp:
    """The gateway node's app (the entry point named in ops.nodes.APP_FACTORIES)."""
    return GatewayApp(network, node, identity)
