"""The merchant and gateway apps served on real mTLS sockets, with stand-in banks.

The issuer (alfa) and the acquirer (beta) are small fakes; the gateway and the
merchant are the real apps behind payment.server.create_server, so identity,
authorization and error mapping run exactly as deployed.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from interbank.v1 import (
    authorization_pb2,
    authorization_pb2_grpc,
    common_pb2,
    notification_pb2,
    notification_pb2_grpc,
    order_pb2,
    order_pb2_grpc,
)

from gateway.app import create_app as create_gateway_app
from merchant.app import create_app as create_merchant_app
from ops.devnet import free_ports
from payment import envelope, errors
from payment.clock import now, timestamp
from payment.config import NetworkConfig, parse_network
from payment.identity import spiffe_id
from payment.notifications import NotificationServicer, emit
from payment.pki import Pki, init_pki
from payment.server import create_server
from payment.storage import Store
from payment.tls import NodeIdentity, TlsIdentity, secure_channel


class FakeIssuer(authorization_pb2_grpc.IssuerServiceServicer):
    """alfa as issuer: approves everything; a capture credits the merchant at beta."""

    def __init__(self, acquirer_store: Store, network: NetworkConfig) -> None:
        self._acquirer_store = acquirer_store
        self._network = network
        self.holds: dict[str, authorization_pb2.AuthorizeHoldRequest] = {}

    async def AuthorizeHold(self, request: Any, context: Any) -> Any:
        hold_id = f"hold-{request.transaction_id}"
        self.holds[hold_id] = request
        return authorization_pb2.AuthorizeHoldResponse(
            hold_id=hold_id, decision=authorization_pb2.AUTHORIZATION_DECISION_APPROVED
        )

    async def AuthorizeHolds(self, request: Any, context: Any) -> Any:
        return authorization_pb2.AuthorizeHoldsResponse(
            results=[
                authorization_pb2.AuthorizeHoldResult(
                    report=await self.AuthorizeHold(entry, context)
                )
                for entry in request.entries
            ]
        )

    async def CaptureHold(self, request: Any, context: Any) -> Any:
        instruction = common_pb2.PaymentInstruction.FromString(
            self.holds[request.hold_id].instruction
        )
        notice = notification_pb2.SubscribeResponse(
            account_entry=notification_pb2.AccountEntryNotice(
                account=self.holds[request.hold_id].creditor_account,
                direction=notification_pb2.ACCOUNT_ENTRY_DIRECTION_CREDIT,
                amount=instruction.amount,
                order_id=instruction.order_id,
            )
        )
        merchant = spiffe_id(self._network.trust_domain, "merchant", "shop")
        await self._acquirer_store.transaction(lambda conn: emit(conn, merchant, notice))
        return authorization_pb2.CaptureHoldResponse(
            hold_status=authorization_pb2.HOLD_STATUS_CAPTURED, instruction_id="instr-1"
        )


@dataclass
class FakeBankApp:
    """A NodeApp serving whatever servicers it is given."""

    adders: Sequence[tuple[Any, Any]]
    names: Sequence[str]

    @property
    def service_names(self) -> Sequence[str]:
        return self.names

    def register(self, server: grpc.aio.Server) -> None:
        for add, servicer in self.adders:
            add(servicer, server)

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass
class Running:
    network: NetworkConfig
    merchant_address: str
    gateway_address: str


@pytest.fixture
async def running(tmp_path: Path, document: dict[str, Any]) -> AsyncIterator[Running]:
    for node, port in zip(document["nodes"], free_ports(len(document["nodes"])), strict=True):
        node["address"] = f"127.0.0.1:{port}"
    network = parse_network(document, base_dir=tmp_path)
    init_pki(network, tmp_path / "pki")
    pki = Pki(network.pki_dir)
    acquirer_store = Store(tmp_path / "beta.sqlite3", "")
    await acquirer_store.open()
    banks = {
        "alfa": FakeBankApp(
            [
                (
                    authorization_pb2_grpc.add_IssuerServiceServicer_to_server,
                    FakeIssuer(acquirer_store, network),
                )
            ],
            ["interbank.v1.IssuerService"],
        ),
        "beta": FakeBankApp(
            [
                (
                    notification_pb2_grpc.add_NotificationServiceServicer_to_server,
                    NotificationServicer(acquirer_store),
                )
            ],
            ["interbank.v1.NotificationService"],
        ),
    }
    servers = []
    apps: list[Any] = []
    for name in ("alfa", "beta", "gateway", "shop"):
        node = network.node(name)
        tls = NodeIdentity.load(pki, name)
        app = banks.get(name) or (create_gateway_app if name == "gateway" else create_merchant_app)(
            network, node, tls
        )
        server, _, _ = await create_server(network, app, tls, node.address)
        await app.start()
        await server.start()
        servers.append(server)
        apps.append(app)
    try:
        yield Running(network, network.node("shop").address, network.node("gateway").address)
    finally:
        for server in servers:
            await server.stop(None)
        for app in apps:
            await app.close()
        await acquirer_store.close()


def sealed_payment(
    network: NetworkConfig, created: order_pb2.CreateOrderResponse
) -> common_pb2.SealedPayment:
    order = created.order
    instruction = common_pb2.PaymentInstruction(
        instrument=common_pb2.PaymentInstrument(
            kind=common_pb2.INSTRUMENT_KIND_CARD, bank_code="ALFAXX01", number="4000001234567899"
        ),
        amount=order.total,
        order_digest=order.order_digest,
        order_id=order.order_id,
        merchant_name=order.merchant_name,
        customer_name="alice",
        nonce=os.urandom(16),
        created_at=timestamp(now()),
    ).SerializeToString()
    key = envelope.load_x25519_public(created.gateway_public_key)
    signing = envelope.load_ed25519_private(Pki(network.pki_dir).signing_key("alice").read_bytes())
    return common_pb2.SealedPayment(
        sealed_instruction=envelope.seal_instruction(instruction, key, order.order_digest),
        dual_signature=envelope.sign_dual(signing, order.order_digest, instruction),
        gateway_key_id=created.gateway_key_id,
    )


async def test_a_purchase_is_captured_settled_and_its_delivery_confirmed_over_mtls(
    running: Running,
) -> None:
    pki = Pki(running.network.pki_dir)
    async with secure_channel(running.merchant_address, TlsIdentity.load(pki, "alice")) as channel:
        shop = order_pb2_grpc.OrderServiceStub(channel)
        created = await shop.CreateOrder(
            order_pb2.CreateOrderRequest(
                request_id=str(uuid.uuid4()),
                lines=[order_pb2.CreateOrderLine(sku="book-001", quantity=2)],
            ),
            timeout=5,
        )
        order_id = created.order.order_id

        paid = await shop.SubmitPayment(
            order_pb2.SubmitPaymentRequest(
                request_id=str(uuid.uuid4()),
                order_id=order_id,
                payment=sealed_payment(running.network, created),
            ),
            timeout=10,
        )
        assert paid.order.status in (
            order_pb2.ORDER_STATUS_CAPTURED,
            order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED,
        )

        updates = notification_pb2_grpc.NotificationServiceStub(channel).Subscribe(
            notification_pb2.SubscribeRequest(after_sequence=0)
        )
        seen = []
        async with asyncio.timeout(10):
            async for event in updates:
                seen.append(event.order_update.order.status)
                if seen[-1] == order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED:
                    break
        updates.cancel()
        # The acquirer's credit may overtake the capture response: CAPTURED is then skipped.
        assert seen[:3] == [
            order_pb2.ORDER_STATUS_CREATED,
            order_pb2.ORDER_STATUS_PAYMENT_PENDING,
            order_pb2.ORDER_STATUS_AUTHORIZED,
        ]
        assert seen[3:] in (
            [
                order_pb2.ORDER_STATUS_CAPTURED,
                order_pb2.ORDER_STATUS_SETTLED,
                order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED,
            ],
            [order_pb2.ORDER_STATUS_SETTLED, order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED],
        )


async def test_gateway_errors_reach_the_customer_with_their_reason_over_mtls(
    running: Running,
) -> None:
    pki = Pki(running.network.pki_dir)
    async with secure_channel(running.merchant_address, TlsIdentity.load(pki, "alice")) as channel:
        shop = order_pb2_grpc.OrderServiceStub(channel)
        created = await shop.CreateOrder(
            order_pb2.CreateOrderRequest(
                request_id=str(uuid.uuid4()),
                lines=[order_pb2.CreateOrderLine(sku="book-001", quantity=1)],
            ),
            timeout=5,
        )
        payment = sealed_payment(running.network, created)
        payment.sealed_instruction = payment.sealed_instruction[:-1] + b"\x00"

        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await shop.SubmitPayment(
                order_pb2.SubmitPaymentRequest(
                    request_id=str(uuid.uuid4()), order_id=created.order.order_id, payment=payment
                ),
                timeout=10,
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert errors.error_info(raised.value).reason == "INSTRUCTION_UNREADABLE"


async def test_customers_cannot_call_the_gateway_and_unknown_refunds_are_not_found(
    running: Running,
) -> None:
    pki = Pki(running.network.pki_dir)
    async with secure_channel(running.gateway_address, TlsIdentity.load(pki, "alice")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await authorization_pb2_grpc.GatewayServiceStub(channel).GetPaymentTransaction(
                authorization_pb2.GetPaymentTransactionRequest(transaction_id="x"), timeout=5
            )
        assert errors.error_info(raised.value).reason == "ROLE_NOT_ALLOWED"
    async with secure_channel(running.gateway_address, TlsIdentity.load(pki, "shop")) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await authorization_pb2_grpc.GatewayServiceStub(channel).RefundPayment(
                authorization_pb2.RefundPaymentRequest(request_id="r", transaction_id="x"),
                timeout=5,
            )
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert errors.error_info(raised.value).reason == "TRANSACTION_NOT_FOUND"
