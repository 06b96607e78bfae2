"""A small network for the bank tests: three banks and the settlement bank.

``world`` wires their domain objects in memory: each node runs over a real
SQLite store in tmp_path and the calls between nodes (bank -> settlement ->
bank) are direct function calls, with a switch to make a peer unreachable.
``served`` serves the same nodes for real, on mTLS sockets with their
interceptors and app wiring.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import common_pb2, notification_pb2
from interbank.v1 import settlement_pb2 as pb

from bank.accounts import Accounts
from bank.acquirer import Acquirer
from bank.audit import bank_totals, settlement_totals
from bank.challenges import Challenges
from bank.clearing import Clearing
from bank.issuer import Issuer
from bank.ledger import ledger_totals
from bank.messages import fields
from bank.opening import open_bank_books, open_settlement_books
from bank.outgoing import OutgoingTransfers
from bank.schema import BANK_SCHEMA, SETTLEMENT_SCHEMA
from bank.settlement import Settlement
from ops.devnet import free_ports
from ops.nodes import load_app
from payment.clock import now, timestamp
from payment.config import NetworkConfig, Role, parse_network
from payment.envelope import load_ed25519_private, order_digest, sign_dual
from payment.identity import spiffe_id
from payment.pki import Pki, init_pki
from payment.server import create_server
from payment.storage import Store
from payment.tls import NodeIdentity, TlsIdentity, secure_channel

ALFA, BETA, GAMMA, SETTLEMENT = "ALFAXX01", "BETAXX02", "GAMMXX03", "SETLXX00"
ALICE_CARD, ALICE_ACCOUNT = "4000001234567899", "ALFA00000001"
BOB_CARD = "4000009876543210"
CAROL_CARD = "4000005555555555"
DAVE_CARD = "4000007777777777"


def raw_network(tmp_path: Path) -> dict[str, Any]:
    """The network file of the tests, as parsed TOML."""
    return {
        "trust_domain": "paynet.test",
        "currency": "EUR",
        "pki_dir": str(tmp_path / "pki"),
        "nodes": [
            {
                "name": "settlement",
                "role": "settlement",
                "address": "127.0.0.1:0",
                "data_dir": "data/settlement",
                "bank_code": SETTLEMENT,
            },
            {
                "name": "alfa",
                "role": "bank",
                "address": "127.0.0.1:0",
                "data_dir": "data/alfa",
                "bank_code": ALFA,
            },
            {
                "name": "beta",
                "role": "bank",
                "address": "127.0.0.1:0",
                "data_dir": "data/beta",
                "bank_code": BETA,
            },
            {
                "name": "gamma",
                "role": "bank",
                "address": "127.0.0.1:0",
                "data_dir": "data/gamma",
                "bank_code": GAMMA,
            },
            {"name": "gateway", "role": "gateway", "address": "127.0.0.1:0"},
            {"name": "shop", "role": "merchant", "address": "127.0.0.1:0"},
        ],
        "risk": {
            "challenge_above_minor": 50_000,
            "velocity_max_payments": 3,
            "velocity_window_seconds": 600,
            "challenge_ttl_seconds": 300,
            "challenge_max_attempts": 3,
            "hold_ttl_seconds": 3600,
        },
        "customers": [
            {
                "name": "alice",
                "bank": "alfa",
                "account_id": "alice-current",
                "opening_balance_minor": 100_000,
                "account_number": ALICE_ACCOUNT,
                "card_number": ALICE_CARD,
            },
            {
                "name": "carol",
                "bank": "alfa",
                "account_id": "carol-current",
                "opening_balance_minor": 5_000,
                "account_number": "ALFA00000003",
                "card_number": CAROL_CARD,
            },
            {
                "name": "bob",
                "bank": "beta",
                "account_id": "bob-current",
                "opening_balance_minor": 20_000,
                "account_number": "BETA00000002",
                "card_number": BOB_CARD,
            },
            {
                "name": "dave",
                "bank": "gamma",
                "account_id": "dave-current",
                "opening_balance_minor": 30_000,
                "account_number": "GAMM00000004",
                "card_number": DAVE_CARD,
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
        ],
    }


def authorize_request(
    pki: Pki,
    *,
    customer: str = "alice",
    amount: int = 1_000,
    number: str = ALICE_CARD,
    kind: common_pb2.InstrumentKind.ValueType = common_pb2.INSTRUMENT_KIND_CARD,
    bank_code: str = ALFA,
    signer: str | None = None,
    currency: str = "EUR",
    creditor: tuple[str, str] = (BETA, "shop-sales"),
) -> authz.AuthorizeHoldRequest:
    """A gateway's AuthorizeHold for a purchase at shop, dual-signed by signer."""
    order_id = f"order-{uuid.uuid4()}"
    digest = order_digest(order_id, "shop", customer, currency, amount, ())
    instruction = common_pb2.PaymentInstruction(
        instrument=common_pb2.PaymentInstrument(kind=kind, bank_code=bank_code, number=number),
        amount=common_pb2.Money(amount_minor=amount, currency_code=currency),
        order_digest=digest,
        order_id=order_id,
        merchant_name="shop",
        customer_name=customer,
        nonce=uuid.uuid4().bytes,
        created_at=timestamp(now()),
    ).SerializeToString()
    key = load_ed25519_private(pki.signing_key(signer or customer).read_bytes())
    return authz.AuthorizeHoldRequest(
        request_id=str(uuid.uuid4()),
        transaction_id=str(uuid.uuid4()),
        instruction=instruction,
        dual_signature=sign_dual(key, digest, instruction),
        merchant_name="shop",
        creditor_account=common_pb2.AccountRef(bank_code=creditor[0], account_id=creditor[1]),
    )


@dataclass
class BankNode:
    """One commercial bank's domain objects over its store."""

    code: str
    store: Store
    issuer: Issuer
    challenges: Challenges
    clearing: Clearing
    accounts: Accounts
    outgoing: OutgoingTransfers
    acquirer: Acquirer


@dataclass
class World:
    """Two banks and the settlement bank, wired by direct calls."""

    network: NetworkConfig
    pki: Pki
    banks: dict[str, BankNode]
    settlement_store: Store
    settlement: Settlement
    unreachable: set[str] = field(default_factory=set)

    @property
    def alfa(self) -> BankNode:
        return self.banks[ALFA]

    @property
    def beta(self) -> BankNode:
        return self.banks[BETA]

    @property
    def gamma(self) -> BankNode:
        return self.banks[GAMMA]

    @staticmethod
    def later(seconds: float) -> dt.datetime:
        """A moment seconds from now."""
        return now() + dt.timedelta(seconds=seconds)

    def uri(self, role: Role, name: str) -> str:
        return spiffe_id(self.network.trust_domain, role, name)

    @property
    def gateway(self) -> str:
        return self.uri(Role.GATEWAY, "gateway")

    def authorize_request(self, **kwargs: Any) -> authz.AuthorizeHoldRequest:
        """A gateway's AuthorizeHold for a purchase at shop (see authorize_request)."""
        return authorize_request(self.pki, **kwargs)

    async def authorize(
        self, bank: BankNode | None = None, **kwargs: Any
    ) -> authz.AuthorizeHoldResponse:
        """Authorize a purchase at alfa (or bank) as the gateway."""
        request = self.authorize_request(**kwargs)
        return await (bank or self.alfa).issuer.authorize(request, self.gateway)

    async def capture(
        self, hold_id: str, bank: BankNode | None = None
    ) -> authz.CaptureHoldResponse:
        """Capture a hold as the gateway."""
        request = authz.CaptureHoldRequest(request_id=str(uuid.uuid4()), hold_id=hold_id)
        return await (bank or self.alfa).issuer.capture(request, self.gateway)

    async def balance(self, bank: BankNode, account_id: str, holder: str) -> tuple[int, int, int]:
        """(booked, available, held) of an account, asked as its holder."""
        role = Role.MERCHANT if holder == "shop" else Role.CUSTOMER
        response = await bank.accounts.balance(account_id, self.uri(role, holder))
        return (
            response.booked.amount_minor,
            response.available.amount_minor,
            response.held.amount_minor,
        )

    async def events(
        self, store: Store, recipient: str
    ) -> list[notification_pb2.SubscribeResponse]:
        """Every event queued in a store's outbox for recipient, in order."""
        rows = await store.read(
            lambda conn: conn.execute(
                "SELECT event FROM outbox WHERE recipient = ? ORDER BY sequence", (recipient,)
            ).fetchall()
        )
        return [notification_pb2.SubscribeResponse.FromString(row[0]) for row in rows]

    async def codes(self, customer: str = "alice") -> list[notification_pb2.OneTimeCode]:
        """The one-time codes in a customer's device inbox at alfa."""
        events = await self.events(self.alfa.store, self.uri(Role.CUSTOMER, customer))
        return [e.one_time_code for e in events if e.WhichOneof("event") == "one_time_code"]

    async def assert_balanced(self) -> None:
        """Every ledger balances and the money of the network is what was opened with."""
        holders = 0
        for bank in self.banks.values():
            totals = await bank.store.read(bank_totals)
            assert totals.balanced, totals
            holders += totals.holder_balance + totals.suspense_balance
        settled = await self.settlement_store.read(settlement_totals)
        assert settled.balanced, settled
        assert settled.central_issued == self.network.total_opening_money()
        assert holders == self.network.total_opening_money()

    async def rows(self, store: Store, table: str) -> int:
        """How many rows a table of a store has."""
        return int(
            (await store.read(lambda c: c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()))[0]  # noqa: S608
        )


async def _open_bank(network: NetworkConfig, name: str, submit: Any) -> BankNode:
    node = network.node(name)
    store = Store(node.store_path, BANK_SCHEMA)
    await store.open()
    await store.transaction(lambda conn: open_bank_books(conn, network, node, now=now()))
    outgoing = OutgoingTransfers(store, submit)
    assert node.bank_code is not None
    return BankNode(
        code=node.bank_code,
        store=store,
        issuer=Issuer(store, network, node, outgoing),
        challenges=Challenges(store, network.risk),
        clearing=Clearing(store, network, node),
        accounts=Accounts(store, node.bank_code),
        outgoing=outgoing,
        acquirer=Acquirer(store, network, node, outgoing),
    )


def _answer(report: Any) -> tuple[str, str]:
    return pb.TransferStatus.Name(report.status).removeprefix(
        "TRANSFER_STATUS_"
    ), report.reason_code


@pytest.fixture
async def world(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[World]:
    """The wired network, opened; its stores are closed afterwards.

    A test marked ``@pytest.mark.network(settlement={...})`` gets those keys
    merged into the network file (for example net settlement mode);
    ``caps={bank_code: minor}`` sets banks' own net debit caps.
    """
    document = raw_network(tmp_path)
    marker = request.node.get_closest_marker("network")
    if marker is not None:
        overrides = dict(marker.kwargs)
        caps = overrides.pop("caps", {})
        document.update(overrides)
        for node in document["nodes"]:
            if node.get("bank_code") in caps and node["role"] == "bank":
                node["net_debit_cap_minor"] = caps[node["bank_code"]]
    network = parse_network(document, base_dir=tmp_path)
    pki = init_pki(network, tmp_path / "pki")
    holder: dict[str, World] = {}

    async def submit(bank_code: str, message: Any) -> Any:
        if SETTLEMENT in holder["w"].unreachable:
            return None
        settlement = holder["w"].settlement
        if isinstance(message, pb.CreditTransfer):
            request = pb.SubmitCreditTransferRequest(
                request_id=message.instruction_id, transfer=message
            )
            return _answer(await settlement.submit(request, bank_code))
        returned = pb.SubmitPaymentReturnRequest(
            request_id=message.return_id, payment_return=message
        )
        return _answer(await settlement.submit_return(returned, bank_code))

    async def deliver(bank_code: str, message: Any) -> Any:
        if bank_code in holder["w"].unreachable:
            return None
        clearing = holder["w"].banks[bank_code].clearing
        request_id = fields(message).delivery_request_id  # as the settlement node does
        if isinstance(message, pb.CreditTransfer):
            request = pb.ReceiveCreditTransferRequest(request_id=request_id, transfer=message)
            return _answer(await clearing.receive(request))
        returned = pb.ReceivePaymentReturnRequest(request_id=request_id, payment_return=message)
        return _answer(await clearing.receive_return(returned))

    banks = {}
    for name, code in (("alfa", ALFA), ("beta", BETA), ("gamma", GAMMA)):
        banks[code] = await _open_bank(
            network, name, lambda request, code=code: submit(code, request)
        )
    settlement_node = network.the(Role.SETTLEMENT)
    settlement_store = Store(settlement_node.store_path, SETTLEMENT_SCHEMA)
    await settlement_store.open()
    await settlement_store.transaction(lambda conn: open_settlement_books(conn, network, now=now()))
    holder["w"] = World(
        network, pki, banks, settlement_store, Settlement(settlement_store, network, deliver)
    )
    yield holder["w"]
    # Whatever a test did, every ledger still balances: debits equal credits.
    for store in (*(bank.store for bank in banks.values()), settlement_store):
        totals = await store.read(ledger_totals)
        assert totals.debits_posted == totals.credits_posted, store.path
        assert totals.debits_pending == totals.credits_pending, store.path
    for bank in banks.values():
        await bank.store.close()
    await settlement_store.close()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """The settlement bank and every bank served on mTLS sockets.

    Yields the network, its PKI and ``channel(as_name, to_node)``: an mTLS
    channel to a node presenting participant as_name's certificate.
    """
    raw = raw_network(tmp_path)
    for node, port in zip(raw["nodes"], free_ports(len(raw["nodes"])), strict=True):
        node["address"] = f"127.0.0.1:{port}"
    network = parse_network(raw, base_dir=tmp_path)
    pki = init_pki(network, tmp_path / "pki")
    running = []
    for node in (network.the(Role.SETTLEMENT), *network.nodes_with_role(Role.BANK)):
        tls = NodeIdentity.load(pki, node.name)
        app = load_app(network, node, tls)
        server, _, _ = await create_server(network, app, tls, node.address)
        await app.start()
        await server.start()
        running.append((server, app))
    channels: dict[str, grpc.aio.Channel] = {}

    def channel(as_name: str, to_node: str) -> grpc.aio.Channel:
        key = f"{as_name}->{to_node}"
        if key not in channels:
            channels[key] = secure_channel(
                network.node(to_node).address, TlsIdentity.load(pki, as_name)
            )
        return channels[key]

    yield {"network": network, "pki": pki, "channel": channel}
    for ch in channels.values():
        await ch.close()
    for server, app in reversed(running):
        await server.stop(None)
        await app.close()


@pytest.fixture
def signed_authorization() -> Any:
    """Builds a dual-signed AuthorizeHoldRequest with a PKI's customer keys."""
    return authorize_request
