"""The merchant node: catalog, store, peers, servicers and the settlement listener.

It takes cheques with its endorsement key, ``<merchant>/signing.key`` in the
network's PKI (made by ``paynet pki init``), read once here, and coins of every
bank of the network, checked against the key sets the banks sign with their
published keys.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import grpc
from interbank.v1 import notification_pb2, notification_pb2_grpc, order_pb2, order_pb2_grpc

from merchant import cheque_deposits, coin_deposits, orders, settlement_listener
from merchant.catalog import Catalog
from merchant.cheques import ChequeDesk
from merchant.coins import CashDesk
from merchant.payments import GatewayKeyInfo, Storefront
from merchant.peers import MerchantPeers
from merchant.servicer import BackOfficeServicer, OrderServicer
from merchant.settlement_listener import SettlementListener
from payment.background import Background
from payment.cheque_trust import ChequeKeys
from payment.config import NetworkConfig, NodeConfig, Role
from payment.envelope import load_ed25519_private, load_x25519_public, raw_public
from payment.notifications import NotificationServicer
from payment.pki import Pki, key_id
from payment.storage import Store
from payment.tls import Channels, NodeIdentity

__all__ = ["SCHEMA", "MerchantApp", "create_app", "load_gateway_key"]

SCHEMA = orders.SCHEMA + cheque_deposits.SCHEMA + coin_deposits.SCHEMA + settlement_listener.SCHEMA

RESOLVE_INTERVAL_S = 30.0
"""How often the merchant looks for payments whose answer was lost (see merchant.resolver)."""

SERVICE_NAMES = (
    order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name,
    order_pb2.DESCRIPTOR.services_by_name["BackOfficeService"].full_name,
    notification_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name,
)


def load_gateway_key(network: NetworkConfig) -> GatewayKeyInfo:
    """The gateway's payment-encryption public key and its id, from the network's PKI."""
    gateway = network.the(Role.GATEWAY)
    hex_key = Pki(network.pki_dir).hpke_public_key(gateway.name).read_text(encoding="ascii")
    public_key = load_x25519_public(hex_key.strip())
    return GatewayKeyInfo(public_key=raw_public(public_key), key_id=key_id(public_key))


class MerchantApp:
    """The merchant's NodeApp."""

    def __init__(self, network: NetworkConfig, node: NodeConfig, identity: NodeIdentity) -> None:
        merchant = network.merchant(node.name)
        self._name = node.name
        self.store = Store(
            node.store_path,
            SCHEMA,
            retention_s=network.limits.idempotency_retention_seconds,
        )
        acquirer = network.node(merchant.bank)
        self._peers = MerchantPeers(
            network.the(Role.GATEWAY),
            acquirer,
            Channels(identity),
            banks=network.nodes_with_role(Role.BANK),
        )
        pki = Pki(network.pki_dir)
        published = ChequeKeys(network)
        cheque_desk = ChequeDesk(
            keys=published,
            endorsement_key=load_ed25519_private(pki.signing_key(node.name).read_bytes()),
            acquirer_bank_code=acquirer.bank_code or "",
            acquirer=self._peers.acquirer_cheques,
            stale_days=network.limits.cheque_stale_days,
        )
        cash_desk = CashDesk(
            keys=published,
            issuer=self._peers.bank_cash,
            acquirer=self._peers.acquirer_cash,
        )
        self.storefront = Storefront(
            self.store,
            network.trust_domain,
            node.name,
            Catalog(merchant.products, network.currency),
            load_gateway_key(network),
            self._peers.gateway,
            call_timeout_s=network.timeouts.node_call_seconds,
            cheque_desk=cheque_desk,
            cash_desk=cash_desk,
        )
        self.listener = SettlementListener(
            self.store,
            network.trust_domain,
            merchant.account_id,
            self._peers.acquirer_notifications,
        )
        self._listening: asyncio.Task[None] | None = None
        self._background = Background()
        # After this, a sealed instruction the gateway never recorded can no longer be
        # fresh (it may be built up to a window ahead of the gateway's clock), plus a minute.
        self._not_received_after_s = 2 * network.limits.instruction_window_seconds + 60.0

    @property
    def service_names(self) -> Sequence[str]:
        """OrderService, BackOfficeService and NotificationService."""
        return SERVICE_NAMES

    def register(self, server: grpc.aio.Server) -> None:
        """Add the storefront and the customers' order-update stream."""
        order_pb2_grpc.add_OrderServiceServicer_to_server(
            OrderServicer(self.storefront, self.store), server
        )
        order_pb2_grpc.add_BackOfficeServiceServicer_to_server(
            BackOfficeServicer(self.storefront, self.store, self._name), server
        )
        notification_pb2_grpc.add_NotificationServiceServicer_to_server(
            NotificationServicer(self.store), server
        )

    async def start(self) -> None:
        """Open the store and start following the acquirer's credit notices.

        Runs before the server takes calls (see payment.server.serve_node).
        """
        await self.store.open()
        if self._listening is None:
            self._listening = asyncio.create_task(self.listener.run(), name="settlement-listener")
            self._background.every(RESOLVE_INTERVAL_S, "payment-resolver", self._resolve_pending)

    async def _resolve_pending(self) -> int:
        return await self.storefront.resolve_pending(
            not_received_after_s=self._not_received_after_s
        )

    async def close(self) -> None:
        """Stop the listener, close the channels and the store."""
        await self._background.stop()
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
            self._listening = None
        await self._peers.close()
        await self.store.close()


def create_app(network: NetworkConfig, node: NodeConfig, identity: NodeIdentity) -> MerchantApp:
    """The merchant node's app (the entry point named in ops.nodes.APP_FACTORIES)."""
    return MerchantApp(network, node, identity)
