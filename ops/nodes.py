"""Which service serves each node role: the one table from a role to the factory of
its app, used wherever nodes are launched (``paynet serve``, the launcher, tests)."""

from __future__ import annotations

from collections.abc import Mapping

from bank.app import create_bank_app, create_settlement_app
from gateway.app import create_app as create_gateway_app
from merchant.app import create_app as create_merchant_app
from payment.config import NetworkConfig, NodeConfig, Role
from payment.server import AppFactory, NodeApp
from payment.tls import NodeIdentity

__all__ = ["APP_FACTORIES", "load_app"]

APP_FACTORIES: Mapping[Role, AppFactory] = {
    Role.SETTLEMENT: create_settlement_app,
    Role.BANK: create_bank_app,
    Role.GATEWAY: create_gateway_app,
    Role.MERCHANT: create_merchant_app,
}
"""Each role's app factory (the customer role runs no node)."""


def load_app(network: NetworkConfig, node: NodeConfig, identity: NodeIdentity) -> NodeApp:
    """The app of a node, built by its role's factory."""
    return APP_FACTORIES[node.role](network, node, identity)
