"""A test's client of the running network: calls, observations and preconditions over mTLS.

Every call presents the certificate of a named participant on a real socket; a
failed call becomes a :class:`Refusal` (status code and ErrorInfo reason, read
with :func:`payment.errors.from_rpc_error`) so outcomes can be compared. The
observations are what a participant can see for itself: balances and statements
(AccountService), orders (OrderService), holds (IssuerService.GetHold), gateway
records, transfer statuses, settlement windows and reserves (AuditService).

A batch RPC (a request of ``entries``, each with its own request_id: AuthorizeHolds,
SubmitCreditTransfers, SubmitChequePresentments, ...) is called with one entry: the
entry is what a case sends, and its result is the outcome, as if the entry had its own
RPC (:func:`entry_type`).

Cheque books, stop-payment orders and closed cheque accounts are shown by no RPC that
does not itself act on them: they are read from the bank's own store, read-only
(:meth:`Net.bank_rows`).

Nothing here prints or logs a secret: instrument numbers, one-time codes and
keys stay inside request messages and are never put in an assertion message.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import grpc
import interbank.v1
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from interbank.v1 import (
    account_pb2,
    audit_pb2,
    authorization_pb2,
    common_pb2,
    notification_pb2,
    order_pb2,
    settlement_pb2,
)

from customer.client import Customer, PlacedOrder
from customer.shop import purchase
from payment import envelope
from payment.batching import from_entry_error
from payment.clock import now, timestamp
from payment.errors import from_rpc_error
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel
from tests.support.cheques import Book, endorse, issue_book, write

from .conftest import RunningNetwork

__all__ = [
    "ALFA",
    "ALICE",
    "BETA",
    "GATEWAY",
    "SETTLEMENT",
    "SHOP",
    "Capture",
    "Hold",
    "Net",
    "Outcome",
    "Refusal",
    "contract_methods",
    "entry_type",
    "money",
    "new_request_id",
    "request_type",
    "with_request_id",
]

# The participants: alice pays with her card issued by alfa; the shop banks at beta.
ALICE = "alice"
SHOP = "shop"
GATEWAY = "gateway"
ALFA = "alfa"
BETA = "beta"
SETTLEMENT = "settlement"
CALL_TIMEOUT_S = 20.0
RESTING_TIMEOUT_S = 15.0
STREAM_FIRST_S = 5.0
"""How long a subscription may take to deliver its first stored event."""
STREAM_IDLE_S = 0.5
"""A subscription that delivers nothing for this long has delivered every stored event."""
OS = order_pb2.OrderStatus
_TRANSIENT = frozenset(
    {
        OS.ORDER_STATUS_PAYMENT_PENDING,
        OS.ORDER_STATUS_AUTHORIZED,
        OS.ORDER_STATUS_CAPTURED,
        OS.ORDER_STATUS_SETTLED,
    }
)
"""Order statuses the merchant moves on from by itself (settlement notices, delivery)."""


@dataclass(frozen=True)
class Refusal:
    """A failed call, as a caller branches on it: status code and ErrorInfo reason."""

    code: grpc.StatusCode
    reason: str


Outcome = Message | Refusal
"""What a call returned: its response message, or its refusal."""


def new_request_id() -> str:
    """A fresh idempotency key."""
    return str(uuid.uuid4())


def _pb2_modules() -> Iterator[ModuleType]:
    """Every generated message module (interbank/v1/*_pb2.py)."""
    for info in pkgutil.iter_modules(interbank.v1.__path__):
        if info.name.endswith("_pb2"):
            yield importlib.import_module(f"interbank.v1.{info.name}")


@cache
def contract_methods() -> dict[str, MethodDescriptor]:
    """Every RPC of the generated contracts by full method name (/package.Service/Method)."""
    methods: dict[str, MethodDescriptor] = {}
    for module in _pb2_modules():
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                methods[f"/{service.full_name}/{method.name}"] = method
    return methods


def entry_type(method: str) -> Descriptor | None:
    """The entry message of a batch RPC: its request has no request_id but a repeated
    ``entries`` field whose message has one. None for any other RPC."""
    request = contract_methods()[method].input_type
    entries = request.fields_by_name.get("entries")
    if "request_id" in request.fields_by_name or entries is None or entries.message_type is None:
        return None
    return entries.message_type if "request_id" in entries.message_type.fields_by_name else None


def request_type(method: str) -> Descriptor:
    """What a case sends to method: its request, or for a batch RPC one entry."""
    return entry_type(method) or contract_methods()[method].input_type


def money(amount_minor: int) -> common_pb2.Money:
    """An amount of the network's currency (EUR)."""
    return common_pb2.Money(amount_minor=amount_minor, currency_code="EUR")


@dataclass(frozen=True)
class Hold:
    """A hold placed at alfa for alice by a direct AuthorizeHold."""

    hold_id: str
    transaction_id: str
    order_id: str
    amount_minor: int
    challenge_id: str


@dataclass(frozen=True)
class Capture:
    """A captured hold and the credit transfer it settled."""

    hold: Hold
    instruction_id: str


class Net:
    """One test's mTLS view of the running network; use as an async context manager.

    Channels are made per test (grpc.aio channels belong to one event loop) and
    closed with it.
    """

    def __init__(self, running: RunningNetwork) -> None:
        self.running = running
        self.network = running.network
        self._pki = Pki(self.network.pki_dir)
        self._channels: dict[tuple[str, str], grpc.aio.Channel] = {}
        self._extra: list[grpc.aio.Channel] = []
        self._customers: dict[str, Customer] = {}

    async def __aenter__(self) -> Net:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for customer in self._customers.values():
            await customer.close()
        for channel in [*self._channels.values(), *self._extra]:
            await channel.close()

    def code(self, bank: str) -> str:
        """A bank node's bank code."""
        return self.network.node(bank).bank_code or ""

    # -- calls ------------------------------------------------------------------------------

    def channel(self, caller: str, node: str) -> grpc.aio.Channel:
        """The shared mTLS channel presenting caller's certificate to node."""
        key = (caller, node)
        if key not in self._channels:
            self._channels[key] = self.fresh_channel(caller, node)
        return self._channels[key]

    def fresh_channel(self, caller: str, node: str) -> grpc.aio.Channel:
        """A new mTLS channel (its own connection), closed with this Net."""
        identity = TlsIdentity.load(self._pki, caller)
        channel = secure_channel(self.network.node(node).address, identity)
        self._extra.append(channel)
        return channel

    async def call(
        self,
        caller: str,
        node: str,
        method: str,
        request: Message,
        *,
        channel: grpc.aio.Channel | None = None,
    ) -> Outcome:
        """Call a full method name as caller; the response, or the refusal.

        For a batch RPC, request is one entry: it is sent as the only entry, and its
        result (report or entry error) is the outcome.
        """
        described = contract_methods()[method]
        batched = entry_type(method) is not None
        if batched:
            batch: Any = GetMessageClass(described.input_type)()
            batch.entries.add().CopyFrom(request)
            request = batch
        response_class = GetMessageClass(described.output_type)
        rpc = (channel or self.channel(caller, node)).unary_unary(
            method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        try:
            response: Any = await rpc(request, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            error = from_rpc_error(exc)
            return Refusal(error.code, error.reason)
        if not batched:
            return response  # type: ignore[no-any-return]
        (result,) = response.results
        if result.WhichOneof("outcome") == "error":
            entry_error = from_entry_error(result.error)
            return Refusal(entry_error.code, entry_error.reason)
        return result.report  # type: ignore[no-any-return]

    async def ok(self, caller: str, node: str, method: str, request: Message) -> Any:
        """Call and require success (for preconditions); the response."""
        outcome = await self.call(caller, node, method, request)
        if isinstance(outcome, Refusal):
            raise AssertionError(f"precondition {method} refused: {outcome}")
        return outcome

    # -- observations -----------------------------------------------------------------------

    async def balance(self, holder: str) -> tuple[int, int, int]:
        """(booked, available, held) of a holder's account, asked by the holder of its bank."""
        bank, account_id = self._account_of(holder)
        reply = await self.ok(
            holder,
            bank,
            "/interbank.v1.AccountService/GetBalance",
            account_pb2.GetBalanceRequest(account_id=account_id),
        )
        return (reply.booked.amount_minor, reply.available.amount_minor, reply.held.amount_minor)

    async def statement(self, holder: str, order_ids: Sequence[str]) -> list[tuple[str, int, int]]:
        """(description, direction, amount) of the holder's statement lines for these orders."""
        bank, account_id = self._account_of(holder)
        reply = await self.ok(
            holder,
            bank,
            "/interbank.v1.AccountService/ListStatement",
            account_pb2.ListStatementRequest(account_id=account_id),
        )
        wanted = set(order_ids)
        return [
            (e.description, int(e.direction), e.amount.amount_minor)
            for e in reply.entries
            if e.order_id in wanted
        ]

    async def collected(self, holder: str) -> tuple[int, int, int]:
        """(booked, available, uncollected) of a holder's account once no cheque it
        deposited is in clearing (or after RESTING_TIMEOUT_S, as it is then)."""
        bank, account_id = self._account_of(holder)
        request = account_pb2.GetBalanceRequest(account_id=account_id)
        deadline = asyncio.get_running_loop().time() + RESTING_TIMEOUT_S
        while True:
            reply = await self.ok(holder, bank, "/interbank.v1.AccountService/GetBalance", request)
            uncollected = reply.uncollected.amount_minor
            if not uncollected or asyncio.get_running_loop().time() > deadline:
                return (reply.booked.amount_minor, reply.available.amount_minor, uncollected)
            await asyncio.sleep(0.05)

    def bank_rows(self, bank: str, query: str, *args: object) -> list[tuple[Any, ...]]:
        """Rows of the bank's own store, read-only: what no RPC shows without acting on it."""
        path = self.network.node(bank).store_path.resolve()
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            return [tuple(row) for row in conn.execute(query, args)]
        finally:
            conn.close()

    async def order(self, order_id: str, customer: str = ALICE) -> tuple[str, int]:
        """(status name, refunded minor units) of an order, once it has come to rest."""
        request = order_pb2.GetOrderRequest(order_id=order_id)
        deadline = asyncio.get_running_loop().time() + RESTING_TIMEOUT_S
        while True:
            reply = await self.ok(customer, SHOP, "/interbank.v1.OrderService/GetOrder", request)
            status = reply.order.status
            if status not in _TRANSIENT or asyncio.get_running_loop().time() > deadline:
                return OS.Name(status), reply.order.refunded_total.amount_minor
            await asyncio.sleep(0.05)

    async def hold(
        self, *, hold_id: str = "", transaction_id: str = ""
    ) -> tuple[str, str, int] | None:
        """(status, settlement state, refunded) of an alfa hold, as the gateway sees it."""
        outcome = await self.call(
            GATEWAY,
            ALFA,
            "/interbank.v1.IssuerService/GetHold",
            authorization_pb2.GetHoldRequest(hold_id=hold_id, transaction_id=transaction_id),
        )
        if outcome == Refusal(grpc.StatusCode.NOT_FOUND, "HOLD_NOT_FOUND"):
            return None
        if isinstance(outcome, Refusal):
            raise AssertionError(f"GetHold refused: {outcome}")
        assert isinstance(outcome, authorization_pb2.GetHoldResponse)
        return (
            authorization_pb2.HoldStatus.Name(outcome.status),
            authorization_pb2.SettlementState.Name(outcome.settlement_state),
            outcome.refunded_total.amount_minor,
        )

    async def gateway_record(self, transaction_id: str) -> tuple[str, int, str]:
        """(hold status, refunded, instruction id) of the shop's transaction at the gateway."""
        reply = await self.ok(
            SHOP,
            GATEWAY,
            "/interbank.v1.GatewayService/GetPaymentTransaction",
            authorization_pb2.GetPaymentTransactionRequest(transaction_id=transaction_id),
        )
        record = reply.transaction
        return (
            authorization_pb2.HoldStatus.Name(record.hold_status),
            record.refunded_total.amount_minor,
            record.instruction_id,
        )

    async def transfer_status(self, bank: str, message_id: str) -> str | None:
        """A transfer's or return's status at the settlement bank, asked by bank; None if none."""
        outcome = await self.call(
            bank,
            SETTLEMENT,
            "/interbank.v1.SettlementService/GetTransferStatus",
            settlement_pb2.GetTransferStatusRequest(instruction_id=message_id),
        )
        if outcome == Refusal(grpc.StatusCode.NOT_FOUND, "TRANSACTION_NOT_FOUND"):
            return None
        if isinstance(outcome, Refusal):
            raise AssertionError(f"GetTransferStatus refused: {outcome}")
        assert isinstance(outcome, settlement_pb2.GetTransferStatusResponse)
        return settlement_pb2.TransferStatus.Name(outcome.status)

    async def window(self, window_id: str = "") -> settlement_pb2.SettlementWindow:
        """A settlement window (the open one when window_id is empty)."""
        reply = await self.ok(
            SETTLEMENT,
            SETTLEMENT,
            "/interbank.v1.SettlementService/GetSettlementWindow",
            settlement_pb2.GetSettlementWindowRequest(window_id=window_id),
        )
        window: settlement_pb2.SettlementWindow = reply.window
        return window

    async def reserves(self) -> dict[str, int]:
        """Every member bank's reserve at the settlement bank, from its books."""
        reply = await self.ok(
            SETTLEMENT,
            SETTLEMENT,
            "/interbank.v1.AuditService/GetBooks",
            audit_pb2.GetBooksRequest(),
        )
        return {r.bank_code: r.reserve_minor for r in reply.settlement.reserves}

    async def orders_created(self, customer: str = ALICE) -> set[str]:
        """Ids of every order the shop announced as CREATED to customer (its update stream)."""
        created: set[str] = set()
        for event in await self._events(customer, SHOP):
            if event.WhichOneof("event") == "order_update":
                order = event.order_update.order
                if order.status == OS.ORDER_STATUS_CREATED:
                    created.add(order.order_id)
        return created

    async def _events(self, subscriber: str, node: str) -> list[notification_pb2.SubscribeResponse]:
        """Every event of subscriber's stream at node, read until the stream goes idle."""
        rpc = self.channel(subscriber, node).unary_stream(
            "/interbank.v1.NotificationService/Subscribe",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=notification_pb2.SubscribeResponse.FromString,
        )
        call = rpc(notification_pb2.SubscribeRequest(after_sequence=0))
        events: list[notification_pb2.SubscribeResponse] = []
        try:
            while True:
                wait = STREAM_IDLE_S if events else STREAM_FIRST_S
                try:
                    event = await asyncio.wait_for(call.read(), wait)
                except TimeoutError:
                    return events
                if event is grpc.aio.EOF:
                    return events
                events.append(event)
        finally:
            call.cancel()

    def _account_of(self, holder: str) -> tuple[str, str]:
        """(bank node, account id) of a customer or merchant."""
        accounts = {c.name: (c.bank, c.account_id) for c in self.network.customers}
        accounts.update({m.name: (m.bank, m.account_id) for m in self.network.merchants})
        return accounts[holder]

    # -- preconditions: storefront ----------------------------------------------------------

    def customer(self, name: str = ALICE) -> Customer:
        """The customer's client (its own certificate and channels), closed with this Net."""
        if name not in self._customers:
            self._customers[name] = Customer(self.network, name)
        return self._customers[name]

    async def place_order(self, lines: Sequence[tuple[str, int]]) -> PlacedOrder:
        """A new order of alice's at the shop (CREATED)."""
        return await self.customer().create_order(SHOP, lines)

    def seal(self, placed: PlacedOrder) -> common_pb2.SealedPayment:
        """alice's card payment for an order, sealed to the gateway and dual-signed."""
        alice = self.customer()
        return alice.seal_payment(placed, alice.instrument("card"))

    async def delivered_order(self, lines: Sequence[tuple[str, int]]) -> order_pb2.Order:
        """An order alice bought, paid, settled and delivered (DELIVERY_CONFIRMED)."""
        result = await purchase(self.customer(), SHOP, lines, say=_quiet)
        return result.order

    async def challenged_order(self) -> order_pb2.Order:
        """An order alice submitted that the issuer challenged (CHALLENGE_REQUIRED, hold placed)."""
        placed = await self.place_order([("bike-003", 1)])
        order = await self.customer().submit_payment(placed, self.seal(placed))
        assert OS.Name(order.status) == "ORDER_STATUS_CHALLENGE_REQUIRED"
        return order

    async def answered_order(self) -> order_pb2.Order:
        """A challenged order whose challenge alice answered from her device inbox."""
        order = await self.challenged_order()
        await self.answer(order.challenge.challenge_id)
        return order

    async def answer(self, challenge_id: str) -> None:
        """Answer a challenge with the code from alice's device inbox."""
        alice = self.customer()
        await alice.answer_challenge(challenge_id, await alice.read_one_time_code(challenge_id))

    async def one_time_code(self, challenge_id: str) -> str:
        """The code of a challenge, from alice's device inbox. Secret: never print it."""
        return await self.customer().read_one_time_code(challenge_id)

    # -- preconditions: gateway, as the shop ------------------------------------------------

    async def gateway_authorize_request(
        self, lines: Sequence[tuple[str, int]], request_id: str
    ) -> authorization_pb2.AuthorizePaymentRequest:
        """An AuthorizePayment for a new order of alice's, as the shop would send it."""
        placed = await self.place_order(lines)
        return authorization_pb2.AuthorizePaymentRequest(
            request_id=request_id,
            order_id=placed.order.order_id,
            amount=placed.order.total,
            order_digest=placed.order.order_digest,
            payment=self.seal(placed),
        )

    async def gateway_authorized(self, lines: Sequence[tuple[str, int]]) -> str:
        """A new order authorized at the gateway by the shop; its transaction id."""
        request = await self.gateway_authorize_request(lines, new_request_id())
        reply = await self.ok(
            SHOP, GATEWAY, "/interbank.v1.GatewayService/AuthorizePayment", request
        )
        assert reply.decision == authorization_pb2.AUTHORIZATION_DECISION_APPROVED
        return str(reply.transaction_id)

    async def gateway_captured(self, lines: Sequence[tuple[str, int]]) -> str:
        """A new order authorized and captured at the gateway by the shop; its transaction id."""
        transaction_id = await self.gateway_authorized(lines)
        reply = await self.ok(
            SHOP,
            GATEWAY,
            "/interbank.v1.GatewayService/CapturePayment",
            authorization_pb2.CapturePaymentRequest(
                request_id=new_request_id(), transaction_id=transaction_id
            ),
        )
        assert reply.settlement_state == authorization_pb2.SETTLEMENT_STATE_SETTLED
        return transaction_id

    # -- preconditions: issuer, as the gateway ----------------------------------------------

    def hold_request(
        self, amount_minor: int, request_id: str
    ) -> authorization_pb2.AuthorizeHoldRequest:
        """An AuthorizeHold for a new payment of alice's to the shop, signed with her key."""
        signing_key = envelope.load_ed25519_private(self._pki.signing_key(ALICE).read_bytes())
        alice = self.customer()
        card = alice.instrument("card")
        digest = os.urandom(32)
        instruction = common_pb2.PaymentInstruction(
            instrument=common_pb2.PaymentInstrument(
                kind=card.kind, bank_code=card.bank_code, number=card.number
            ),
            amount=money(amount_minor),
            order_digest=digest,
            order_id=str(uuid.uuid4()),
            merchant_name=SHOP,
            customer_name=ALICE,
            nonce=os.urandom(16),
            created_at=timestamp(now()),
        )
        blob = instruction.SerializeToString()
        return authorization_pb2.AuthorizeHoldRequest(
            request_id=request_id,
            transaction_id=str(uuid.uuid4()),
            instruction=blob,
            dual_signature=envelope.sign_dual(signing_key, digest, blob),
            merchant_name=SHOP,
            creditor_account=common_pb2.AccountRef(
                bank_code=self.code(BETA), account_id=self.network.merchant(SHOP).account_id
            ),
        )

    async def placed_hold(self, amount_minor: int) -> Hold:
        """A hold on alice's account at alfa for the shop (challenged above 500.00 EUR)."""
        request = self.hold_request(amount_minor, new_request_id())
        reply = await self.ok(GATEWAY, ALFA, "/interbank.v1.IssuerService/AuthorizeHold", request)
        order_id = common_pb2.PaymentInstruction.FromString(request.instruction).order_id
        return Hold(
            reply.hold_id,
            request.transaction_id,
            order_id,
            amount_minor,
            reply.challenge.challenge_id,
        )

    async def captured_hold(self, amount_minor: int) -> Capture:
        """A hold captured at alfa: alice debited, the shop credited at beta through settlement."""
        hold = await self.placed_hold(amount_minor)
        reply = await self.ok(
            GATEWAY,
            ALFA,
            "/interbank.v1.IssuerService/CaptureHold",
            authorization_pb2.CaptureHoldRequest(request_id=new_request_id(), hold_id=hold.hold_id),
        )
        assert reply.settlement_state == authorization_pb2.SETTLEMENT_STATE_SETTLED
        return Capture(hold, reply.instruction_id)

    # -- preconditions: cheques --------------------------------------------------------------

    async def cheque_book(self, customer: str = ALICE, size: int = 5) -> Book:
        """A new cheque book of the customer's, issued by its bank."""
        return await issue_book(self.network, customer, size)

    def cheque(self, book: Book, serial: int, amount_minor: int, reference: str) -> bytes:
        """A cheque to the shop on the book, signed by its holder."""
        return write(
            self.network, book, serial, payee=SHOP, amount_minor=amount_minor, order_id=reference
        )

    def endorsed(self, signed_cheque: bytes) -> bytes:
        """The shop's endorsement of a cheque to its bank (beta)."""
        return endorse(self.network, signed_cheque, SHOP, self.code(BETA))

    # -- interbank messages -----------------------------------------------------------------

    def credit_transfer(self, amount_minor: int) -> settlement_pb2.CreditTransfer:
        """A new credit transfer from alice at alfa to the shop at beta, for no shop order."""
        alice, shop = self.network.customer(ALICE), self.network.merchant(SHOP)
        instruction_id = str(uuid.uuid4())
        return settlement_pb2.CreditTransfer(
            instruction_id=instruction_id,
            end_to_end_id=str(uuid.uuid4()),
            amount=money(amount_minor),
            debtor_agent=self.code(ALFA),
            debtor_account=common_pb2.AccountRef(
                bank_code=self.code(ALFA), account_id=alice.account_id
            ),
            debtor_name=ALICE,
            creditor_agent=self.code(BETA),
            creditor_account=common_pb2.AccountRef(
                bank_code=self.code(BETA), account_id=shop.account_id
            ),
            creditor_name=SHOP,
            remittance_information=f"idempotency test {instruction_id}",
            created_at=timestamp(now()),
        )

    def payment_return(self, capture: Capture, amount_minor: int) -> settlement_pb2.PaymentReturn:
        """A new return from beta to alfa of (part of) a captured hold's transfer."""
        return settlement_pb2.PaymentReturn(
            return_id=str(uuid.uuid4()),
            original_instruction_id=capture.instruction_id,
            original_end_to_end_id=capture.hold.order_id,
            amount=money(amount_minor),
            returning_agent=self.code(BETA),
            receiving_agent=self.code(ALFA),
            reason_code="CUST",
        )


def _quiet(*_args: str) -> None:
    """A step printer that prints nothing."""


def with_request_id(request: Message, request_id: str) -> Any:
    """A copy of request with another request_id (empty for "missing")."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.request_id = request_id  # type: ignore[attr-defined]
    return copy
