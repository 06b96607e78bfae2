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
- H: alice's order (CREATED) that the world's cheques name, deposited by the shop
  at its bank directly, so no cheque can pay it;
- J: alice's order (CREATED) left for the boundary case that pays it by cheque;
- K: alice's order (CREATED) whose contract the world's coins X signed, deposited by the
  shop at its bank directly, so the coins a generated request can name cannot pay it;
- M: alice's order (CREATED) left for the boundary case that pays it with coins;
- cheque books: alice's at alfa, bob's at beta, carol's at alfa (her cheque account
  closed); three cheques to the shop, each deposited at beta: P (alice's, cleared
  through the settlement bank and PAID), S (alice's, stopped, RETURNED
  PAYMENT_STOPPED) and U (bob's, drawn on beta itself, PAID at deposit). Every
  cheque a generated request can name has been deposited, so none of them can
  move money again; boundary cases write fresh ones from the spare serials;
- electronic cash (:mod:`tests.hostile.cash`): the banks' key sets, a withdrawal of
  carol's, and three coin deposits of the shop's at beta, all decided: X (alice's coins
  for K, taken by alfa through the settlement bank), Z (X's coins again: COIN_DOUBLE_SPENT)
  and Y (bob's coins, taken by beta itself). Every coin a generated request can name is
  spent; boundary cases withdraw fresh ones;
- a settled settlement window (closed by command) and the next one open.

Ids are then read from the stores. Nothing in a World is secret: hypothesis
prints it when a case fails.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf.message import Message
from interbank.v1 import (
    cheque_pb2,
    cheque_pb2_grpc,
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
from tests.support.cheques import Book, deposit, endorse, issue_book, wait_decided, write

from .cash import WorldCash, build_cash
from .network import RunningNetwork, Stores

__all__ = ["ChequeBook", "World", "WorldCheque", "build_world"]

CHEQUE_BOOK_SIZE = 40
"""Serials in alice's and bob's world books: three for the world's cheques, the rest spare."""


@dataclass(frozen=True)
class ChequeBook:
    """A cheque book issued in the world (its certificate is public: it travels with cheques)."""

    customer: str
    """The drawer."""
    bank_code: str
    """The drawee bank."""
    account_reference: bytes
    """The cheque account's opaque reference."""
    first_serial: int
    """First serial."""
    last_serial: int
    """Last serial."""
    signed_certificate: bytes
    """The bank's signed account certificate."""

    def book(self) -> Book:
        """As tests.support.cheques takes it."""
        return Book(
            self.customer,
            self.bank_code,
            self.account_reference,
            self.first_serial,
            self.last_serial,
            self.signed_certificate,
        )


@dataclass(frozen=True)
class WorldCheque:
    """A cheque to the shop that the shop deposited at beta in the world, decided."""

    serial: int
    """Its serial."""
    amount_minor: int
    """Its amount."""
    order_reference: str
    """The order it names (H)."""
    signed_cheque: bytes
    """As the drawer signed it."""
    signed_certificate: bytes
    """Its book's certificate."""
    signed_endorsement: bytes
    """The shop's endorsement to beta."""
    request_id: str
    """The shop's DepositCheque request_id."""
    deposit_id: str
    """beta's deposit id, also the presentment id."""
    state: int
    """Where the deposit stands (ChequeState): PAID or RETURNED."""
    return_reason: str
    """Why it was returned (empty when PAID)."""
    presentment: bytes
    """The ChequePresentment beta made of it, serialized as beta keeps it."""

    def deposit_request(self, request_id: str | None = None) -> cheque_pb2.DepositChequeRequest:
        """The deposit again, under its own request_id unless another is given."""
        return cheque_pb2.DepositChequeRequest(
            request_id=self.request_id if request_id is None else request_id,
            signed_cheque=self.signed_cheque,
            signed_certificate=self.signed_certificate,
            signed_endorsement=self.signed_endorsement,
        )

    def presented(self, **fields: object) -> cheque_pb2.ChequePresentment:
        """beta's presentment of it, with fields changed."""
        presentment = cheque_pb2.ChequePresentment.FromString(self.presentment)
        for name, value in fields.items():
            if isinstance(value, Message):
                getattr(presentment, name).CopyFrom(value)
            else:
                setattr(presentment, name, value)
        return presentment


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
    carol_account: str
    """carol's account at alfa (her cheque account is closed)."""
    settlement_code: str
    """The settlement bank's code: a bank code that is no member's."""
    orders: dict[str, str]
    """Order ids by letter (A, B, C, D, E, G, H, J, K, M)."""
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
    h_total: int
    """Order H's total."""
    j_total: int
    """Order J's total."""
    m_total: int
    """Order M's total."""
    m_digest: bytes
    """Order M's digest."""
    alice_book: ChequeBook
    """alice's cheque book at alfa: P, S, the stop target, then spare serials."""
    bob_book: ChequeBook
    """bob's cheque book at beta: U, then spare serials."""
    carol_book: ChequeBook
    """carol's cheque book at alfa, on a closed cheque account."""
    paid_cheque: WorldCheque
    """P: alice's cheque, PAID through the settlement bank."""
    stopped_cheque: WorldCheque
    """S: alice's cheque, stopped, RETURNED PAYMENT_STOPPED."""
    on_us_cheque: WorldCheque
    """U: bob's cheque on beta, PAID at deposit."""
    stop_target: int
    """A serial of alice's book that no cheque was written on: stopping it succeeds."""
    cash: WorldCash
    """The key sets, W, and the coin deposits X, Z and Y."""

    @property
    def cheques(self) -> tuple[WorldCheque, ...]:
        """Every cheque of the world: all deposited, none can move money again."""
        return (self.paid_cheque, self.stopped_cheque, self.on_us_cheque)

    @property
    def spare_serials(self) -> dict[str, range]:
        """Serials no world cheque uses, by drawer, for boundary cases to write on."""
        a, b = self.alice_book, self.bob_book
        return {
            "alice": range(self.stop_target + 1, a.last_serial + 1),
            "bob": range(self.on_us_cheque.serial + 1, b.last_serial + 1),
        }


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
        placed_h = await alice.create_order("shop", [("book-001", 1)])
        placed_j = await alice.create_order("shop", [("lamp-002", 1)])
        placed_k = await alice.create_order("shop", [("book-001", 1)])
        placed_m = await alice.create_order("shop", [("lamp-002", 1)])

    books, cheques, stop_target = await _cheques(running, placed_h.order)
    beta_store = sqlite3.connect(f"{_store(running, 'beta').resolve().as_uri()}?mode=ro", uri=True)
    try:
        cash = await build_cash(network, placed_k.order, beta_store)
    finally:
        beta_store.close()
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
        "H": placed_h.order.order_id,
        "J": placed_j.order.order_id,
        "K": placed_k.order.order_id,
        "M": placed_m.order.order_id,
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
        carol_account=network.customer("carol").account_id,
        settlement_code=settlement.bank_code or "",
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
        h_total=placed_h.order.total.amount_minor,
        j_total=placed_j.order.total.amount_minor,
        m_total=placed_m.order.total.amount_minor,
        m_digest=placed_m.order.order_digest,
        alice_book=books["alice"],
        bob_book=books["bob"],
        carol_book=books["carol"],
        paid_cheque=_kept(running, cheques["P"]),
        stopped_cheque=_kept(running, cheques["S"]),
        on_us_cheque=_kept(running, cheques["U"]),
        stop_target=stop_target,
        cash=cash,
    )


async def _cheques(
    running: RunningNetwork, order_h: order_pb2.Order
) -> tuple[dict[str, ChequeBook], dict[str, WorldCheque], int]:
    """The world's cheque books and cheques (module docstring), each deposit decided."""
    network = running.network
    beta = network.node("beta").bank_code or ""
    books = {
        name: _kept_book(await issue_book(network, name, size))
        for name, size in (("alice", CHEQUE_BOOK_SIZE), ("bob", CHEQUE_BOOK_SIZE), ("carol", 1))
    }
    await _cheque_call(
        running,
        "carol",
        "CloseChequeAccount",
        cheque_pb2.CloseChequeAccountRequest(
            request_id=str(uuid.uuid4()), account_reference=books["carol"].account_reference
        ),
    )
    alice, bob = books["alice"], books["bob"]
    total, order_id = order_h.total.amount_minor, order_h.order_id
    written = {
        "P": (alice, alice.first_serial, total),
        "S": (alice, alice.first_serial + 1, total + 1),
        "U": (bob, bob.first_serial, 1200),
    }
    await _cheque_call(
        running,
        "alice",
        "StopCheque",
        cheque_pb2.StopChequeRequest(
            request_id=str(uuid.uuid4()),
            account_reference=alice.account_reference,
            serial=written["S"][1],
        ),
    )
    cheques = {}
    for name, (book, serial, amount) in written.items():
        signed = write(
            network, book.book(), serial, payee="shop", amount_minor=amount, order_id=order_id
        )
        endorsement = endorse(network, signed, "shop", beta)
        request_id = str(uuid.uuid4())
        first = await deposit(
            network, "shop", signed, book.book(), request_id=request_id, endorsement=endorsement
        )
        decided = await wait_decided(network, "shop", signed, book.book(), request_id, endorsement)
        assert decided.deposit_id == first.deposit.deposit_id
        cheques[name] = WorldCheque(
            serial=serial,
            amount_minor=amount,
            order_reference=order_id,
            signed_cheque=signed,
            signed_certificate=book.signed_certificate,
            signed_endorsement=endorsement,
            request_id=request_id,
            deposit_id=decided.deposit_id,
            state=decided.state,
            return_reason=decided.return_reason,
            presentment=b"",
        )
    states = {name: (c.state, c.return_reason) for name, c in cheques.items()}
    paid, returned = cheque_pb2.CHEQUE_STATE_PAID, cheque_pb2.CHEQUE_STATE_RETURNED
    assert states == {
        "P": (paid, ""),
        "S": (returned, "PAYMENT_STOPPED"),
        "U": (paid, ""),
    }, states
    return books, cheques, alice.first_serial + 2


async def _cheque_call(
    running: RunningNetwork, customer: str, method: str, request: object
) -> None:
    """A ChequeService call at the customer's bank, as the customer."""
    network = running.network
    bank = network.customer(customer).bank
    identity = TlsIdentity.load(Pki(network.pki_dir), customer)
    async with secure_channel(network.node(bank).address, identity) as channel:
        await getattr(cheque_pb2_grpc.ChequeServiceStub(channel), method)(request, timeout=10)


def _kept_book(book: Book) -> ChequeBook:
    return ChequeBook(
        book.customer,
        book.bank_code,
        book.account_reference,
        book.first_serial,
        book.last_serial,
        book.signed_certificate,
    )


def _kept(running: RunningNetwork, written: WorldCheque) -> WorldCheque:
    """The cheque with the presentment beta made of it, read from beta's store."""
    conn = sqlite3.connect(f"{_store(running, 'beta').resolve().as_uri()}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT presentment FROM cheque_deposits WHERE deposit_id = ?", (written.deposit_id,)
        ).fetchone()
    finally:
        conn.close()
    assert row is not None, f"beta keeps no deposit {written.deposit_id}"
    return replace(written, presentment=bytes(row[0]))


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
