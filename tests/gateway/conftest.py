"""Gateway fixtures: a small network with its PKI, an open gateway store, a fake issuer,
and a customer-side helper that seals payments the way a customer's client does."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from interbank.v1 import authorization_pb2, common_pb2

from gateway.app import load_gateway_key
from gateway.authorization import PaymentGateway
from gateway.checks import GatewayKey
from gateway.store import SCHEMA
from payment import envelope, errors
from payment.batching import entry_error
from payment.clock import now, timestamp
from payment.config import NetworkConfig, NodeConfig, parse_network
from payment.pki import Pki, init_pki
from payment.pki import key_id as pki_key_id
from payment.storage import Store

CARD_NUMBER = "4000001234567899"


def network_document() -> dict[str, Any]:
    """A network with two banks, a gateway and two merchants."""
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
            {"name": "kiosk", "role": "merchant", "address": "127.0.0.1:0"},
        ],
        "customers": [
            {
                "name": "alice",
                "bank": "alfa",
                "account_id": "alice-current",
                "opening_balance_minor": 250000,
                "account_number": "ALFA00000001",
                "card_number": CARD_NUMBER,
            },
        ],
        "merchants": [
            {
                "name": "shop",
                "bank": "beta",
                "account_id": "shop-sales",
                "opening_balance_minor": 0,
                "products": [{"sku": "book-001", "name": "Book", "unit_price_minor": 4500}],
            },
            {
                "name": "kiosk",
                "bank": "alfa",
                "account_id": "kiosk-sales",
                "opening_balance_minor": 0,
                "products": [{"sku": "gum-001", "name": "Gum", "unit_price_minor": 150}],
            },
        ],
    }


@pytest.fixture
def network(tmp_path: Path) -> NetworkConfig:
    config = parse_network(network_document(), base_dir=tmp_path)
    init_pki(config, tmp_path / "pki")
    return config


@pytest.fixture
def gateway_key(network: NetworkConfig) -> GatewayKey:
    return load_gateway_key(network, network.node("gateway"))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store(tmp_path / "gateway" / "gateway.sqlite3", SCHEMA)
    await opened.open()
    yield opened
    await opened.close()


def rpc_error(code: grpc.StatusCode, reason: str) -> grpc.aio.AioRpcError:
    """A failed call as a peer's ErrorMapping interceptor sends it."""
    status = errors.to_rpc_status(errors.RemoteError(code, reason, f"{reason} (from the issuer)"))
    trailing = grpc.aio.Metadata((errors.STATUS_DETAILS_KEY, status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=f"{reason}")


@dataclass
class FakeIssuer:
    """IssuerService stand-in: records requests, answers as told."""

    decision: int = authorization_pb2.AUTHORIZATION_DECISION_APPROVED
    failure: grpc.aio.AioRpcError | None = None
    unknown_outcomes: int = 0
    """AuthorizeHolds calls that time out (outcome unknown) before one answers."""
    refusals: dict[str, grpc.aio.AioRpcError] = field(default_factory=dict)
    """Per order id: the error its authorization entry is answered with."""
    gate: asyncio.Event | None = None
    """When set, AuthorizeHolds answers only once the event is set."""
    batches: list[int] = field(default_factory=list)
    """The number of entries of each AuthorizeHolds call."""
    found_hold: int | None = None
    """The HoldStatus GetHold reports for a transaction, or None: HOLD_NOT_FOUND."""
    calls: list[tuple[str, Any, NodeConfig | None]] = field(default_factory=list)
    routed_to: list[str] = field(default_factory=list)

    async def AuthorizeHolds(self, request: Any, timeout: float) -> Any:
        """Each entry answered as the issuer would alone; an unknown outcome is the whole call's."""
        assert timeout == 5.0
        self.batches.append(len(request.entries))
        self.calls.extend(("AuthorizeHolds", entry, None) for entry in request.entries)
        if self.unknown_outcomes > 0:
            self.unknown_outcomes -= 1
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                details="Deadline Exceeded",
            )
        if self.gate is not None:
            await self.gate.wait()
        return authorization_pb2.AuthorizeHoldsResponse(
            results=[self._authorize(entry) for entry in request.entries]
        )

    def _authorize(self, request: Any) -> authorization_pb2.AuthorizeHoldResult:
        order_id = common_pb2.PaymentInstruction.FromString(request.instruction).order_id
        refusal = self.refusals.get(order_id, self.failure)
        if refusal is not None:
            return authorization_pb2.AuthorizeHoldResult(
                error=entry_error(errors.from_rpc_error(refusal))
            )
        response = authorization_pb2.AuthorizeHoldResponse(
            hold_id=f"hold-{uuid.uuid4()}", decision=self.decision
        )
        if self.decision == authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED:
            response.challenge.challenge_id = "challenge-1"
            response.challenge.issuer_bank_code = "ALFAXX01"
        elif request.capture:
            response.capture.CopyFrom(
                authorization_pb2.CaptureHoldResponse(
                    hold_status=authorization_pb2.HOLD_STATUS_CAPTURED,
                    instruction_id="instr-sale",
                    settlement_state=authorization_pb2.SETTLEMENT_STATE_SETTLED,
                )
            )
        return authorization_pb2.AuthorizeHoldResult(report=response)

    async def CaptureHold(self, request: Any, timeout: float) -> Any:
        assert timeout == 5.0
        self.calls.append(("CaptureHold", request, None))
        if self.failure is not None:
            raise self.failure
        return authorization_pb2.CaptureHoldResponse(
            hold_status=authorization_pb2.HOLD_STATUS_CAPTURED,
            instruction_id="instr-1",
            settlement_state=authorization_pb2.SETTLEMENT_STATE_SETTLED,
        )

    async def VoidHold(self, request: Any, timeout: float) -> Any:
        assert timeout == 5.0
        self.calls.append(("VoidHold", request, None))
        if self.failure is not None:
            raise self.failure
        return authorization_pb2.VoidHoldResponse(hold_status=authorization_pb2.HOLD_STATUS_VOIDED)

    async def ReturnPayment(self, request: Any, timeout: float) -> Any:
        """AcquirerService.ReturnPayment: returns what was asked."""
        self.calls.append(("ReturnPayment", request, None))
        if self.failure is not None:
            raise self.failure
        return authorization_pb2.ReturnPaymentResponse(
            return_id="return-1", returned_total=request.amount
        )

    async def GetHold(self, request: Any, timeout: float) -> Any:
        assert timeout == 5.0
        self.calls.append(("GetHold", request, None))
        if self.found_hold is None:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "HOLD_NOT_FOUND")
        return authorization_pb2.GetHoldResponse(hold_id="hold-late", status=self.found_hold)

    def fail_with(self, code: grpc.StatusCode, reason: str) -> None:
        """Make every later call fail as the issuer would, with reason."""
        self.failure = rpc_error(code, reason)

    def refuse(self, order_id: str, code: grpc.StatusCode, reason: str) -> None:
        """Answer the authorization of order_id alone with this error."""
        self.refusals[order_id] = rpc_error(code, reason)

    def lookup(self, bank: NodeConfig) -> FakeIssuer:
        self.routed_to.append(bank.name)
        return self


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer()


@dataclass
class GatewayClock:
    """The gateway's clock: everyone else's, moved ahead_s seconds ahead."""

    ahead_s: float = 0.0

    def __call__(self) -> dt.datetime:
        return now() + dt.timedelta(seconds=self.ahead_s)


@pytest.fixture
def gateway_clock() -> GatewayClock:
    return GatewayClock()


@pytest.fixture
def payment_gateway(
    store: Store,
    network: NetworkConfig,
    gateway_key: GatewayKey,
    issuer: FakeIssuer,
    gateway_clock: GatewayClock,
) -> PaymentGateway:
    return PaymentGateway(
        store, network, gateway_key, issuer.lookup, issuer.lookup, clock=gateway_clock
    )


@dataclass
class Customer:
    """Seals and signs payments as alice's client would, with knobs to get them wrong."""

    network: NetworkConfig
    card_number: str = CARD_NUMBER

    def order_digest(self, order_id: str, merchant: str = "shop", total: int = 9000) -> bytes:
        return envelope.order_digest(
            order_id, merchant, "alice", "EUR", total, [envelope.OrderLineText("book-001", 2, 4500)]
        )

    def request(
        self,
        *,
        order_id: str | None = None,
        merchant: str = "shop",
        total: int = 9000,
        currency: str = "EUR",
        instruction_amount: int | None = None,
        instruction_currency: str | None = None,
        instruction_order_id: str | None = None,
        instruction_digest: bytes | None = None,
        sealed_for_digest: bytes | None = None,
        kind: int = common_pb2.INSTRUMENT_KIND_CARD,
        bank_code: str = "ALFAXX01",
        key_id: str | None = None,
        tamper: bool = False,
        created_at: dt.datetime | None = None,
        timeless: bool = False,
        nonce: bytes | None = None,
    ) -> authorization_pb2.AuthorizePaymentRequest:
        """The merchant's AuthorizePaymentRequest for a payment sealed by alice."""
        order_id = order_id or str(uuid.uuid4())
        digest = self.order_digest(order_id, merchant, total)
        instruction = common_pb2.PaymentInstruction(
            instrument=common_pb2.PaymentInstrument(
                kind=kind, bank_code=bank_code, number=CARD_NUMBER
            ),
            amount=common_pb2.Money(
                amount_minor=total if instruction_amount is None else instruction_amount,
                currency_code=instruction_currency or currency,
            ),
            order_digest=instruction_digest or digest,
            order_id=instruction_order_id or order_id,
            merchant_name=merchant,
            customer_name="alice",
            nonce=os.urandom(16) if nonce is None else nonce,
            created_at=None if timeless else timestamp(created_at or now()),
        ).SerializeToString()
        pki = Pki(self.network.pki_dir)
        public = envelope.load_x25519_public(pki.hpke_public_key("gateway").read_text().strip())
        sealed = envelope.seal_instruction(instruction, public, sealed_for_digest or digest)
        if tamper:
            sealed = sealed[:-1] + bytes([sealed[-1] ^ 0x01])
        signing = envelope.load_ed25519_private(pki.signing_key("alice").read_bytes())
        return authorization_pb2.AuthorizePaymentRequest(
            request_id=f"authorize:{order_id}",
            order_id=order_id,
            amount=common_pb2.Money(amount_minor=total, currency_code=currency),
            order_digest=digest,
            payment=common_pb2.SealedPayment(
                sealed_instruction=sealed,
                dual_signature=envelope.sign_dual(signing, digest, instruction),
                gateway_key_id=key_id if key_id is not None else pki_key_id(public),
            ),
        )


@pytest.fixture
def customer(network: NetworkConfig) -> Customer:
    return Customer(network)
