"""Operators' calls to a running network, each made with the node's own certificate.

- the settlement bank's operator closes and inspects settlement windows;
- a merchant's operator refunds orders through the merchant's back office.

The CLI (``paynet settlement …``, ``paynet refund …``) and the demo use them.
"""

from __future__ import annotations

import uuid
from typing import Any

from interbank.v1 import common_pb2, order_pb2, order_pb2_grpc, settlement_pb2
from interbank.v1 import settlement_pb2_grpc as settlement_grpc

from payment.config import NetworkConfig, Role
from payment.errors import relayed
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

__all__ = ["close_window", "get_window", "refund_order", "window_json"]


async def close_window(network: NetworkConfig) -> settlement_pb2.SettlementWindow:
    """Close the open settlement window and settle it; returns the settled window."""
    settlement = network.the(Role.SETTLEMENT)
    identity = TlsIdentity.load(Pki(network.pki_dir), settlement.name)
    async with secure_channel(settlement.address, identity) as channel:
        reply: settlement_pb2.CloseSettlementWindowResponse = await relayed(
            settlement_grpc.SettlementServiceStub(channel).CloseSettlementWindow(
                settlement_pb2.CloseSettlementWindowRequest(request_id=str(uuid.uuid4())),
                timeout=network.timeouts.operator_call_seconds,
            )
        )
    return reply.window


async def get_window(
    network: NetworkConfig, window_id: str = ""
) -> settlement_pb2.SettlementWindow:
    """A settlement window (the open one when window_id is empty)."""
    settlement = network.the(Role.SETTLEMENT)
    identity = TlsIdentity.load(Pki(network.pki_dir), settlement.name)
    async with secure_channel(settlement.address, identity) as channel:
        reply: settlement_pb2.GetSettlementWindowResponse = await relayed(
            settlement_grpc.SettlementServiceStub(channel).GetSettlementWindow(
                settlement_pb2.GetSettlementWindowRequest(window_id=window_id),
                timeout=network.timeouts.operator_call_seconds,
            )
        )
    return reply.window


async def refund_order(
    network: NetworkConfig,
    merchant: str,
    order_id: str,
    amount_minor: int | None = None,
    *,
    request_id: str | None = None,
) -> order_pb2.RefundOrderResponse:
    """Refund (part of, or all that is left of) a settled order as the merchant."""
    node = network.node(merchant)
    request = order_pb2.RefundOrderRequest(
        request_id=request_id or str(uuid.uuid4()), order_id=order_id
    )
    if amount_minor is not None:
        request.amount.CopyFrom(
            common_pb2.Money(amount_minor=amount_minor, currency_code=network.currency)
        )
    identity = TlsIdentity.load(Pki(network.pki_dir), merchant)
    async with secure_channel(node.address, identity) as channel:
        return await relayed(
            order_pb2_grpc.BackOfficeServiceStub(channel).RefundOrder(
                request, timeout=network.timeouts.operator_call_seconds
            )
        )


def window_json(window: settlement_pb2.SettlementWindow) -> dict[str, Any]:
    """A window as a JSON-ready object."""
    status = settlement_pb2.SettlementWindowStatus.Name(window.status)
    return {
        "window_id": window.window_id,
        "status": status.removeprefix("SETTLEMENT_WINDOW_STATUS_"),
        "transfer_count": window.transfer_count,
        "positions": {p.bank_code: p.net_minor for p in window.positions},
        "opened_at": window.opened_at.ToJsonString() if window.HasField("opened_at") else None,
        "closed_at": window.closed_at.ToJsonString() if window.HasField("closed_at") else None,
        "settled_at": window.settled_at.ToJsonString() if window.HasField("settled_at") else None,
    }
