"""Merchant fixtures: a small network with its PKI, an open merchant store, a fake gateway,
the storefront and the settlement listener over them."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from interbank.v1 import authorization_pb2, common_pb2, notification_pb2, order_pb2

from merchant.app import SCHEMA, load_gateway_key
from merchant.catalog import Catalog
from merchant.payments import Storefront
from merchant.settlement_listener import SettlementListener
from payment import errors
from payment.config import NetworkConfig, parse_network
from payment.pki import init_pki
from payment.storage import Store


def network_document() -> dict[str, Any]:
    """A network with one merchant, shop, whose acquirer is beta."""
    return {
        "trust_domain": "paynet.test",
        "currency": "EUR",
        "pki_dir": "pki",
        "nodes": [
            {
                "name": "settlement",
                "role": "settlement",
                "address": "127.0.0.1:0",
                "bank_code": "SETLXX00",
            },
            {"name": "alfa", "role": "bank", "address": "127.0.0.1:0", "bank_code": "ALFAXX01"},
            {"name": "beta", "role": "bank", "address": "127.0.0.1:0", "bank_code": "BETAXX02"},
            {"name": "gateway", "role": "gateway", "address": "127.0.0.1:0"},
            {"name": "shop", "role": "merchant", "address": "127.0.0.1:0"},
        ],
        "customers": [
            {
                "name": "alice",
                "bank": "alfa",
                "account_id": "alice-current",
                "opening_balance_minor": 250000,
                "account_number": "ALFA00000001",
                "card_number": "4000001234567899",
            },
            {
                "name": "bob",
                "bank": "beta",
                "account_id": "bob-current",
                "opening_balance_minor": 90000,
                "account_number": "BETA00000002",
                "card_number": "4000009876543210",
            },
        ],
        "merchants": [
            {
                "name": "shop",
                "bank": "beta",
                "account_id": "shop-sales",
                "opening_balance_minor": 0,
                "products": [
                    {"sku": "book-001", "name": "The Payments Handbook", "unit_price_minor": 4500},
                    {"sku": "lamp-002", "name": "Desk lamp", "unit_price_minor": 3250},
                ],
            },
        ],
    }


@pytest.fixture
def document() -> dict[str, Any]:
    return network_document()


@pytest.fixture
def network(tmp_path: Path) -> NetworkConfig:
    config = parse_network(network_document(), base_dir=tmp_path)
    init_pki(config, tmp_path / "pki")
    return config


@pytest.fixture
def store_dir(network: NetworkConfig) -> Path:
    return network.node("shop").data_dir


@pytest.fixture
async def store(network: NetworkConfig) -> AsyncIterator[Store]:
    opened = Store(network.node("shop").store_path, SCHEMA)
    await opened.open()
    yield opened
    await opened.close()


def rpc_error(code: grpc.StatusCode, reason: str) -> grpc.aio.AioRpcError:
    """A failed call as a peer's ErrorMapping interceptor sends it."""
    status = errors.to_rpc_status(errors.RemoteError(code, reason, f"{reason} (from the gateway)"))
    trailing = grpc.aio.Metadata((errors.STATUS_DETAILS_KEY, status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=reason)


@dataclass
class FakeGateway:
    """GatewayService stand-in: records requests, answers as told per method."""

    decision: int = authorization_pb2.AUTHORIZATION_DECISION_APPROVED
    sale_settlement: int | None = None
    """When set, an approved AuthorizePayment asking for capture answers a sale
    whose transfer is in this SettlementState; None: a gateway that only holds."""
    failures: dict[str, grpc.aio.AioRpcError] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    transactions: dict[str, authorization_pb2.PaymentTransaction] = field(default_factory=dict)
    """What GetPaymentTransaction answers, by transaction id; others are NOT_FOUND."""
    on_lookup: Callable[[], Awaitable[None]] | None = None
    """Runs as GetPaymentTransaction is answered (a customer acting meanwhile)."""

    def fail(self, method: str, code: grpc.StatusCode, reason: str) -> None:
        """Make later calls of method fail with reason."""
        self.failures[method] = rpc_error(code, reason)

    def _record(self, method: str, request: Any, timeout: float) -> None:
        assert timeout == 5.0
        self.calls.append((method, request))
        if method in self.failures:
            raise self.failures[method]

    async def AuthorizePayment(self, request: Any, timeout: float) -> Any:
        self._record("AuthorizePayment", request, timeout)
        response = authorization_pb2.AuthorizePaymentResponse(
            transaction_id=f"tx-{request.order_id}", decision=self.decision
        )
        if self.decision == authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED:
            response.challenge.challenge_id = "challenge-1"
            response.challenge.issuer_bank_code = "ALFAXX01"
        elif request.capture and self.sale_settlement is not None:
            response.capture.CopyFrom(
                authorization_pb2.CapturePaymentResponse(
                    hold_status=authorization_pb2.HOLD_STATUS_CAPTURED,
                    instruction_id="instr-sale",
                    settlement_state=self.sale_settlement,
                    settlement_reason=(
                        "NET_DEBIT_CAP_EXCEEDED"
                        if self.sale_settlement == authorization_pb2.SETTLEMENT_STATE_REJECTED
                        else ""
                    ),
                )
            )
        return response

    async def CapturePayment(self, request: Any, timeout: float) -> Any:
        self._record("CapturePayment", request, timeout)
        return authorization_pb2.CapturePaymentResponse(
            hold_status=authorization_pb2.HOLD_STATUS_CAPTURED, instruction_id="instr-1"
        )

    async def VoidPayment(self, request: Any, timeout: float) -> Any:
        self._record("VoidPayment", request, timeout)
        return authorization_pb2.VoidPaymentResponse(
            hold_status=authorization_pb2.HOLD_STATUS_VOIDED
        )

    async def GetPaymentTransaction(self, request: Any, timeout: float) -> Any:
        self._record("GetPaymentTransaction", request, timeout)
        if self.on_lookup is not None:
            await self.on_lookup()
        found = self.transactions.get(request.transaction_id)
        if found is None:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "TRANSACTION_NOT_FOUND")
        return authorization_pb2.GetPaymentTransactionResponse(transaction=found)

    def methods(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def storefront(store: Store, network: NetworkConfig, gateway: FakeGateway) -> Storefront:
    merchant = network.merchant("shop")
    return Storefront(
        store,
        network.trust_domain,
        "shop",
        Catalog(merchant.products, network.currency),
        load_gateway_key(network),
        lambda: gateway,
    )


@pytest.fixture
def listener(store: Store, network: NetworkConfig) -> SettlementListener:
    def no_subscription() -> Any:
        raise AssertionError("tests apply events directly")

    return SettlementListener(store, network.trust_domain, "shop-sales", no_subscription)


@dataclass
class Shopper:
    """Places orders and builds opaque sealed payments, as a customer's client would."""

    storefront: Storefront
    store: Store

    async def order(self, customer: str = "alice", **quantities: int) -> order_pb2.Order:
        lines = [
            order_pb2.CreateOrderLine(sku=sku.replace("_", "-"), quantity=quantity)
            for sku, quantity in (quantities or {"book_001": 2}).items()
        ]
        response = await self.store.transaction(
            lambda conn: self.storefront.create_order(conn, customer, lines)
        )
        return response.order

    def sealed(self) -> common_pb2.SealedPayment:
        # The merchant never opens it: random bytes stand for an HPKE ciphertext, sealed
        # to the gateway key the storefront hands out.
        return common_pb2.SealedPayment(
            sealed_instruction=os.urandom(160),
            dual_signature=os.urandom(64),
            gateway_key_id=self.storefront.gateway_key.key_id,
        )


@pytest.fixture
def shopper(storefront: Storefront, store: Store) -> Shopper:
    return Shopper(storefront, store)


def credit_notice(
    order: order_pb2.Order, *, sequence: int = 1, event_id: str | None = None
) -> notification_pb2.SubscribeResponse:
    """The acquirer's notice that the order's money reached the merchant's account."""
    return notification_pb2.SubscribeResponse(
        sequence=sequence,
        event_id=event_id or str(uuid.uuid4()),
        account_entry=notification_pb2.AccountEntryNotice(
            account=common_pb2.AccountRef(bank_code="BETAXX02", account_id="shop-sales"),
            direction=notification_pb2.ACCOUNT_ENTRY_DIRECTION_CREDIT,
            amount=order.total,
            order_id=order.order_id,
            description="settlement",
        ),
    )


@pytest.fixture
def notice() -> Any:
    return credit_notice
