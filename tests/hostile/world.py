"""The state the hostile requests aim at: real orders, holds, challenges and transfers.

:func:`build_world` drives the running network through real flows so that a
generated request can name something that exists and reach the checks past
the lookups:

- A: alice's challenged purchase, answered and delivered (captured, settled);
- B: alice's order whose payment the issuer refused (CREATED, a failed transaction);
- C: alice's canceled order;
- D: alice's order waiting for its challenge (CHALLENGE_REQUIRED, hold pending);
- E: alice's order whose challenge locked (FAILED, hold voided);
- G: bob's order (CREATED), someone else's for alice;
- a settled settlement window (closed by command) and the next one open.

Ids are then read from the stores. Nothing in a World is secret: hypothesis
prints it when a case fails.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519
from interbank.v1 import (
    order_pb2,
    order_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
)

from customer.client import Customer, PlacedOrder
from customer.shop import purchase
from payment.config import Role
from payment.errors import PaynetError
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

from .network import RunningNetwork, Stores

__all__ = ["World", "build_world"]


@dataclass(frozen=True)
class World:
    """Names of real things in the running network."""

    currency: str
    """The network's currency."""
    alfa_code: str
    """alice's bank (issuer)."""
    beta_code: str
    """bob's and the shop's bank (acquirer)."""
    shop_account: str
    """The shop's account at beta."""
    alice_account: str
    """alice's account at alfa."""
    bob_account: str
    """bob's account at beta."""
    orders: dict[str, str]
    """Order ids by letter (A, B, C, D, E, G)."""
    total_a: int
    """Order A's total, the most any refund or return of it may be."""
    transactions: dict[str, str]
    """Gateway transaction ids of orders A, B, D and E."""
    holds: dict[str, str]
    """alfa's hold ids of orders A, D and E."""
    challenges: dict[str, str]
    """Challenge ids: A (passed), D (pending), E (locked)."""
    instruction_a: str
    """The credit transfer of order A's capture (alfa -> beta, accepted)."""
    settled_window: str
    """A settled settlement window."""
    gateway_key_id: str
    """The gateway's HPKE key id."""
    gateway_public_key: bytes
    """The gateway's X25519 public key (raw)."""
    b_digest: bytes
    """Order B's digest."""
    b_total: int
    """Order B's total."""
    d_wrong_code: str
    """A well-formed code that is not D's one-time code (the code itself is never kept)."""


async def build_world(running: RunningNetwork) -> World:
    """Drive the flows listed in the module docstring; the ids they left behind."""
    network = running.network
    pki = Pki(network.pki_dir)
    async with Customer(network, "alice") as alice, Customer(network, "bob") as bob:
        a = await purchase(alice, "shop", [("bike-003", 1)], say=lambda *_: None)
        assert a.challenged, "order A was meant to be challenged"

        placed_b = await alice.create_order("shop", [("book-001", 1)])
        stranger = ed25519.Ed25519PrivateKey.generate()
        try:
            await alice.submit_payment(
                placed_b,
                alice.seal_payment(placed_b, alice.instrument(), signing_key=stranger),
            )
        except PaynetError as exc:
            assert exc.reason == "DUAL_SIGNATURE_INVALID", exc.reason
        else:
            raise AssertionError("a payment signed with a stranger's key was accepted")

        placed_c = await alice.create_order("shop", [("lamp-002", 2)])
        shop = order_pb2_grpc.OrderServiceStub(alice.channel("shop"))
        await shop.CancelOrder(
            order_pb2.CancelOrderRequest(
                request_id=str(uuid.uuid4()), order_id=placed_c.order.order_id
            ),
            timeout=10,
        )

        placed_d = await _challenged(alice)
        order_d = (await alice.get_order("shop", placed_d.order.order_id)).challenge
        d_code = await alice.read_one_time_code(order_d.challenge_id)
        d_wrong_code = f"{(int(d_code) + 1) % 10**6:06d}"
        del d_code
        placed_e = await _challenged(alice)
        order_e = (await alice.get_order("shop", placed_e.order.order_id)).challenge
        code = await alice.read_one_time_code(order_e.challenge_id)
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(network.risk.challenge_max_attempts):
            try:
                await alice.answer_challenge(order_e.challenge_id, wrong)
            except PaynetError as exc:
                assert exc.reason in ("CHALLENGE_CODE_WRONG", "CHALLENGE_LOCKED"), exc.reason
        try:
            await alice.complete_payment("shop", placed_e.order.order_id)
        except PaynetError as exc:
            assert exc.reason == "CHALLENGE_LOCKED", exc.reason

        placed_g = await bob.create_order("shop", [("lamp-002", 1)])

    settlement = network.the(Role.SETTLEMENT)
    async with secure_channel(settlement.address, TlsIdentity.load(pki, settlement.name)) as ch:
        closed = await settlement_pb2_grpc.SettlementServiceStub(ch).CloseSettlementWindow(
            settlement_pb2.CloseSettlementWindowRequest(request_id=str(uuid.uuid4())), timeout=10
        )
    await _quiet(Stores(network))

    orders = {
        "A": a.order.order_id,
        "B": placed_b.order.order_id,
        "C": placed_c.order.order_id,
        "D": placed_d.order.order_id,
        "E": placed_e.order.order_id,
        "G": placed_g.order.order_id,
    }
    gateway_db = _store(running, "gateway")
    alfa_db = _store(running, "alfa")
    transactions = {
        letter: _one(
            gateway_db,
            "SELECT transaction_id FROM payment_transaction WHERE order_id = ?",
            orders[letter],
        )
        for letter in "ABDE"
    }
    holds = {
        letter: _one(alfa_db, "SELECT hold_id FROM holds WHERE order_id = ?", orders[letter])
        for letter in "ADE"
    }
    challenges = {
        letter: _one(alfa_db, "SELECT challenge_id FROM holds WHERE order_id = ?", orders[letter])
        for letter in "ADE"
    }
    alice_config = network.customer("alice")  # its account id; never its instruments
    return World(
        currency=network.currency,
        alfa_code=network.node("alfa").bank_code or "",
        beta_code=network.node("beta").bank_code or "",
        shop_account=network.merchant("shop").account_id,
        alice_account=alice_config.account_id,
        bob_account=network.customer("bob").account_id,
        orders=orders,
        total_a=a.order.total.amount_minor,
        transactions=transactions,
        holds=holds,
        challenges=challenges,
        instruction_a=_one(
            alfa_db, "SELECT instruction_id FROM holds WHERE order_id = ?", orders["A"]
        ),
        settled_window=closed.window.window_id,
        gateway_key_id=placed_b.gateway_key_id,
        gateway_public_key=placed_b.gateway_public_key,
        b_digest=placed_b.order.order_digest,
        b_total=placed_b.order.total.amount_minor,
        d_wrong_code=d_wrong_code,
    )


async def _challenged(alice: Customer) -> PlacedOrder:
    """An order above the challenge threshold, submitted and waiting for its code."""
    placed = await alice.create_order("shop", [("bike-003", 1)])
    order = await alice.submit_payment(placed, alice.seal_payment(placed, alice.instrument()))
    assert order.status == order_pb2.ORDER_STATUS_CHALLENGE_REQUIRED, order.status
    return placed


async def _quiet(stores: Stores, *, still_s: float = 1.0, timeout_s: float = 30.0) -> None:
    """Wait until no store has changed for still_s (background work has settled)."""
    deadline = time.monotonic() + timeout_s
    last = stores.snapshot()
    since = time.monotonic()
    try:
        while time.monotonic() - since < still_s:
            if time.monotonic() > deadline:
                raise TimeoutError("the network's stores kept changing after the setup flows")
            await asyncio.sleep(0.1)
            now = stores.snapshot()
            if now != last:
                last, since = now, time.monotonic()
    finally:
        stores.close()


def _store(running: RunningNetwork, name: str) -> Path:
    return running.network.node(name).store_path


def _one(path: Path, query: str, *args: object) -> str:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        row = conn.execute(query, args).fetchone()
    finally:
        conn.close()
    assert row is not None and row[0], f"no row for {query} {args}"
    return str(row[0])
