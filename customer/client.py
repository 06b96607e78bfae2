"""The customer's client: browse, order, seal, sign, pay, answer challenges,
follow order updates, check balances; pay by electronic cheque (cheque
books from its bank, cheques written offline, stop-payment orders); and pay
with electronic cash (coins withdrawn blind from its bank, kept in a
:class:`customer.wallet.CoinWallet`, spent on an order's contract).

It talks to the merchant's storefront and to its own bank over TLS with the
customer's client certificate. The payment instruction is sealed to the
gateway and signed with the customer's enrolled Ed25519 key; the merchant
only ever sees the sealed bytes. One-time codes are read from the device inbox
(the issuer's notification stream) and answered straight to the issuer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography.hazmat.primitives.asymmetric import ed25519
from interbank.v1 import (
    account_pb2,
    account_pb2_grpc,
    authorization_pb2,
    authorization_pb2_grpc,
    cash_pb2,
    cash_pb2_grpc,
    cheque_pb2,
    cheque_pb2_grpc,
    common_pb2,
    notification_pb2,
    notification_pb2_grpc,
    order_pb2,
    order_pb2_grpc,
)

from customer.cheques import ChequeBook, ChequeWallet, check_book, write_cheque
from customer.coins import (
    KeySet,
    PendingWithdrawal,
    WalletCoin,
    blind_withdrawal,
    check_key_set,
    choose_denominations,
    finish_withdrawal,
    sign_coins,
)
from customer.wallet import CoinWallet
from payment import envelope
from payment.cheque_trust import ChequeKeys
from payment.clock import now
from payment.config import CustomerConfig, NetworkConfig
from payment.errors import PaynetError, from_rpc_error, outcome_unknown
from payment.notifications import follow
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

__all__ = ["Customer", "Instrument", "PlacedOrder"]

OrderStatus = order_pb2.OrderStatus


@dataclass(frozen=True)
class PlacedOrder:
    """An order as created, with the gateway key to seal its payment to."""

    order: order_pb2.Order
    """The priced order."""
    gateway_public_key: bytes
    """The gateway's X25519 public key (raw)."""
    gateway_key_id: str
    """Its id, echoed in the sealed payment."""


@dataclass(frozen=True, repr=False)
class Instrument:
    """What the customer pays with. Secret: repr hides the number."""

    kind: common_pb2.InstrumentKind.ValueType
    """Card or bank account."""
    bank_code: str
    """The issuing bank's code."""
    number: str
    """PAN or account number."""

    def __repr__(self) -> str:
        return f"Instrument({common_pb2.InstrumentKind.Name(self.kind)}, {self.bank_code}, ****)"


class Customer:
    """One customer's view of the network; use as an async context manager."""

    def __init__(
        self,
        network: NetworkConfig,
        name: str,
        *,
        cheque_wallet: Path | None = None,
        wallet: Path | None = None,
    ) -> None:
        """The customer called name in network. Its cheque books are kept in memory,
        and also in the file cheque_wallet when given (see :class:`ChequeWallet`);
        its coins likewise, in the file wallet when given (see :class:`CoinWallet`)."""
        self.network = network
        self.config: CustomerConfig = network.customer(name)
        pki = Pki(network.pki_dir)
        self._tls = TlsIdentity.load(pki, name)
        self._signing_key = envelope.load_ed25519_private(pki.signing_key(name).read_bytes())
        self._bank = network.node(self.config.bank)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._inbox: list[notification_pb2.SubscribeResponse] = []
        self._inbox_task: asyncio.Task[None] | None = None
        self._inbox_changed = asyncio.Condition()
        self.cheques = ChequeWallet(cheque_wallet)
        """The customer's cheque books and the next unwritten serial of each."""
        self.wallet = CoinWallet(wallet)
        """The customer's coins and its withdrawals waiting for an answer."""

    async def __aenter__(self) -> Customer:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop following the inbox and close channels."""
        if self._inbox_task is not None:
            self._inbox_task.cancel()
            await asyncio.gather(self._inbox_task, return_exceptions=True)
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    def instrument(self, kind: str = "card") -> Instrument:
        """The customer's card or bank-account instrument."""
        bank_code = self._bank.bank_code or ""
        if kind == "card":
            return Instrument(common_pb2.INSTRUMENT_KIND_CARD, bank_code, self.config.card_number)
        return Instrument(
            common_pb2.INSTRUMENT_KIND_BANK_ACCOUNT, bank_code, self.config.account_number
        )

    # -- channels ---------------------------------------------------------------------------

    def channel(self, node_name: str) -> grpc.aio.Channel:
        """The customer's long-lived mTLS channel to a node."""
        if node_name not in self._channels:
            node = self.network.node(node_name)
            self._channels[node_name] = secure_channel(node.address, self._tls)
        return self._channels[node_name]

    def _store(self, merchant: str) -> order_pb2_grpc.OrderServiceStub:
        return order_pb2_grpc.OrderServiceStub(self.channel(merchant))

    async def _call(self, rpc: object, request: object) -> object:
        try:
            timeout = self.network.timeouts.client_call_seconds
            return await rpc(request, timeout=timeout)  # type: ignore[operator]
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    # -- storefront -------------------------------------------------------------------------

    async def list_products(self, merchant: str) -> Sequence[order_pb2.Product]:
        """The merchant's catalog."""
        reply = await self._call(
            self._store(merchant).ListProducts, order_pb2.ListProductsRequest()
        )
        assert isinstance(reply, order_pb2.ListProductsResponse)
        return list(reply.products)

    async def create_order(self, merchant: str, lines: Sequence[tuple[str, int]]) -> PlacedOrder:
        """Order SKUs and quantities; verifies the merchant's order digest."""
        request = order_pb2.CreateOrderRequest(
            request_id=str(uuid.uuid4()),
            lines=[order_pb2.CreateOrderLine(sku=sku, quantity=qty) for sku, qty in lines],
        )
        reply = await self._call(self._store(merchant).CreateOrder, request)
        assert isinstance(reply, order_pb2.CreateOrderResponse)
        order = reply.order
        expected = envelope.order_digest(
            order.order_id,
            order.merchant_name,
            order.customer_name,
            order.total.currency_code,
            order.total.amount_minor,
            [
                envelope.OrderLineText(line.sku, line.quantity, line.unit_price.amount_minor)
                for line in order.lines
            ],
        )
        if expected != order.order_digest:
            raise ValueError("the merchant's order digest does not match the order; do not pay")
        return PlacedOrder(order, reply.gateway_public_key, reply.gateway_key_id)

    def seal_payment(
        self,
        placed: PlacedOrder,
        instrument: Instrument,
        *,
        amount_minor: int | None = None,
        currency_code: str | None = None,
        signing_key: ed25519.Ed25519PrivateKey | None = None,
        created_at: dt.datetime | None = None,
    ) -> common_pb2.SealedPayment:
        """Build the payment instruction, seal it to the gateway and dual-sign it.

        amount, currency, signing key and creation time default to the order's,
        the customer's own and now; overriding them builds the wrong payments
        that contract tests use to check that every node refuses them.
        """
        order = placed.order
        instruction = common_pb2.PaymentInstruction(
            instrument=common_pb2.PaymentInstrument(
                kind=instrument.kind, bank_code=instrument.bank_code, number=instrument.number
            ),
            amount=common_pb2.Money(
                amount_minor=order.total.amount_minor if amount_minor is None else amount_minor,
                currency_code=currency_code or order.total.currency_code,
            ),
            order_digest=order.order_digest,
            order_id=order.order_id,
            merchant_name=order.merchant_name,
            customer_name=self.config.name,
            nonce=os.urandom(16),
        )
        instruction.created_at.FromDatetime(created_at or now())
        instruction_bytes = instruction.SerializeToString()
        gateway_key = envelope.load_x25519_public(placed.gateway_public_key)
        return common_pb2.SealedPayment(
            sealed_instruction=envelope.seal_instruction(
                instruction_bytes, gateway_key, order.order_digest
            ),
            dual_signature=envelope.sign_dual(
                signing_key or self._signing_key, order.order_digest, instruction_bytes
            ),
            gateway_key_id=placed.gateway_key_id,
        )

    async def submit_payment(
        self, placed: PlacedOrder, payment: common_pb2.SealedPayment, request_id: str | None = None
    ) -> order_pb2.Order:
        """Hand the sealed payment to the merchant; the order after authorization."""
        request = order_pb2.SubmitPaymentRequest(
            request_id=request_id or str(uuid.uuid4()),
            order_id=placed.order.order_id,
            payment=payment,
        )
        reply = await self._call(self._store(placed.order.merchant_name).SubmitPayment, request)
        assert isinstance(reply, order_pb2.SubmitPaymentResponse)
        return reply.order

    async def complete_payment(self, merchant: str, order_id: str) -> order_pb2.Order:
        """Ask the merchant to capture after a challenge was answered."""
        request = order_pb2.CompletePaymentRequest(request_id=str(uuid.uuid4()), order_id=order_id)
        reply = await self._call(self._store(merchant).CompletePayment, request)
        assert isinstance(reply, order_pb2.CompletePaymentResponse)
        return reply.order

    async def get_order(self, merchant: str, order_id: str) -> order_pb2.Order:
        """The merchant's current view of an order."""
        reply = await self._call(
            self._store(merchant).GetOrder, order_pb2.GetOrderRequest(order_id=order_id)
        )
        assert isinstance(reply, order_pb2.GetOrderResponse)
        return reply.order

    async def wait_for_order(
        self,
        merchant: str,
        order_id: str,
        status: order_pb2.OrderStatus.ValueType,
        timeout: float = 30.0,
        *,
        or_else: Collection[order_pb2.OrderStatus.ValueType] = (),
    ) -> order_pb2.Order:
        """Follow the merchant's order updates until the order reaches status (or one
        of or_else, such as FAILED); the order as it was then."""
        stub = notification_pb2_grpc.NotificationServiceStub(self.channel(merchant))
        wanted = {status, *or_else}

        async def watch() -> order_pb2.Order:
            async with contextlib.aclosing(follow(stub)) as events:
                async for event in events:
                    if event.WhichOneof("event") != "order_update":
                        continue
                    order = event.order_update.order
                    if order.order_id == order_id and order.status in wanted:
                        return order
            raise AssertionError("unreachable: follow() never ends")

        return await asyncio.wait_for(watch(), timeout)

    # -- bank -------------------------------------------------------------------------------

    def _start_inbox(self) -> None:
        if self._inbox_task is not None:
            return
        stub = notification_pb2_grpc.NotificationServiceStub(self.channel(self._bank.name))

        async def pump() -> None:
            async with contextlib.aclosing(follow(stub)) as events:
                async for event in events:
                    async with self._inbox_changed:
                        self._inbox.append(event)
                        self._inbox_changed.notify_all()

        self._inbox_task = asyncio.create_task(pump())

    async def read_one_time_code(self, challenge_id: str, timeout: float = 30.0) -> str:
        """The code for a challenge, from the device inbox at the issuer."""
        self._start_inbox()

        async def wait() -> str:
            async with self._inbox_changed:
                while True:
                    for event in self._inbox:
                        if (
                            event.WhichOneof("event") == "one_time_code"
                            and event.one_time_code.challenge_id == challenge_id
                        ):
                            return event.one_time_code.code
                    await self._inbox_changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def answer_challenge(
        self, challenge_id: str, code: str
    ) -> authorization_pb2.AnswerChallengeResponse:
        """Send the one-time code straight to the issuer."""
        stub = authorization_pb2_grpc.ChallengeServiceStub(self.channel(self._bank.name))
        request = authorization_pb2.AnswerChallengeRequest(
            request_id=str(uuid.uuid4()), challenge_id=challenge_id, code=code
        )
        reply = await self._call(stub.AnswerChallenge, request)
        assert isinstance(reply, authorization_pb2.AnswerChallengeResponse)
        return reply

    async def balance(self, account_id: str | None = None) -> account_pb2.GetBalanceResponse:
        """The balance of the customer's account (or another, which the bank refuses)."""
        stub = account_pb2_grpc.AccountServiceStub(self.channel(self._bank.name))
        request = account_pb2.GetBalanceRequest(account_id=account_id or self.config.account_id)
        reply = await self._call(stub.GetBalance, request)
        assert isinstance(reply, account_pb2.GetBalanceResponse)
        return reply

    async def statement(self) -> account_pb2.ListStatementResponse:
        """The account's statement since opening."""
        stub = account_pb2_grpc.AccountServiceStub(self.channel(self._bank.name))
        request = account_pb2.ListStatementRequest(account_id=self.config.account_id)
        reply = await self._call(stub.ListStatement, request)
        assert isinstance(reply, account_pb2.ListStatementResponse)
        return reply

    # -- cheques ----------------------------------------------------------------------------

    def _cheque_desk(self) -> cheque_pb2_grpc.ChequeServiceStub:
        return cheque_pb2_grpc.ChequeServiceStub(self.channel(self._bank.name))

    async def issue_cheque_book(self, size: int, request_id: str | None = None) -> ChequeBook:
        """A cheque book of size serials on the customer's account, from its bank.

        The book's certificate is checked (:func:`customer.cheques.check_book`:
        signed by the bank, binding the customer's own key) and the book kept in
        :attr:`cheques`. The same request_id again returns the same book.
        """
        request = cheque_pb2.IssueChequeBookRequest(
            request_id=request_id or str(uuid.uuid4()),
            account_id=self.config.account_id,
            book_size=size,
        )
        reply = await self._call(self._cheque_desk().IssueChequeBook, request)
        assert isinstance(reply, cheque_pb2.IssueChequeBookResponse)
        book = ChequeBook.from_proto(reply.book)
        check_book(book, self._signing_key.public_key(), ChequeKeys(self.network))
        self.cheques.add(book)
        return book

    def write_cheque(
        self,
        order: order_pb2.Order,
        book: ChequeBook,
        serial: int | None = None,
        date: dt.date | None = None,
        memo: str = "",
    ) -> bytes:
        """A cheque paying order, signed offline with the customer's key: its signed bytes.

        serial defaults to the book's next unwritten one in :attr:`cheques`
        (ValueError when the book is used up or not there), date to today (UTC);
        both are written as given otherwise.
        """
        if serial is None:
            serial = self.cheques.take_serial(book)
        else:
            self.cheques.mark_written(book, serial)
        return write_cheque(self._signing_key, order, book, serial, date or now().date(), memo)

    async def pay_by_cheque(
        self,
        merchant: str,
        order: order_pb2.Order | str,
        signed_cheque: bytes,
        signed_certificate: bytes,
        request_id: str | None = None,
    ) -> order_pb2.Order:
        """Hand a cheque for an order (or order id) to the merchant (SubmitCheque).

        The order as the merchant answers: PAYMENT_PENDING while the cheque clears,
        or already SETTLED or FAILED for a cheque drawn on the merchant's own bank.
        """
        request = order_pb2.SubmitChequeRequest(
            request_id=request_id or str(uuid.uuid4()),
            order_id=order if isinstance(order, str) else order.order_id,
            signed_cheque=signed_cheque,
            signed_certificate=signed_certificate,
        )
        reply = await self._call(self._store(merchant).SubmitCheque, request)
        assert isinstance(reply, order_pb2.SubmitChequeResponse)
        return reply.order

    async def stop_cheque(
        self, book: ChequeBook, serial: int, request_id: str | None = None
    ) -> cheque_pb2.StopChequeResponse:
        """Order the bank not to pay the cheque of book with serial (StopCheque)."""
        request = cheque_pb2.StopChequeRequest(
            request_id=request_id or str(uuid.uuid4()),
            account_reference=book.account_reference,
            serial=serial,
        )
        reply = await self._call(self._cheque_desk().StopCheque, request)
        assert isinstance(reply, cheque_pb2.StopChequeResponse)
        return reply

    async def close_cheque_account(
        self, book: ChequeBook, request_id: str | None = None
    ) -> cheque_pb2.CloseChequeAccountResponse:
        """Close the cheque account of book: no new books, unpaid cheques are returned."""
        request = cheque_pb2.CloseChequeAccountRequest(
            request_id=request_id or str(uuid.uuid4()),
            account_reference=book.account_reference,
        )
        reply = await self._call(self._cheque_desk().CloseChequeAccount, request)
        assert isinstance(reply, cheque_pb2.CloseChequeAccountResponse)
        return reply

    # -- electronic cash --------------------------------------------------------------------

    def _cash_desk(self) -> cash_pb2_grpc.CashServiceStub:
        return cash_pb2_grpc.CashServiceStub(self.channel(self._bank.name))

    async def denominations(self) -> KeySet:
        """The customer's bank's key set, checked (:func:`customer.coins.check_key_set`:
        signed by a key the bank publishes, the parsed keys exactly what it signed)."""
        reply = await self._call(
            self._cash_desk().GetDenominations, cash_pb2.GetDenominationsRequest()
        )
        assert isinstance(reply, cash_pb2.GetDenominationsResponse)
        return check_key_set(reply, self._bank.bank_code or "", ChequeKeys(self.network))

    async def prepare_withdrawal(
        self, amount_minor: int, request_id: str | None = None
    ) -> PendingWithdrawal:
        """Blinded coins adding up to amount_minor (largest denominations first), kept in
        :attr:`wallet` before anything is sent; :meth:`withdraw_coins` sends them."""
        return self._prepare(amount_minor, request_id, await self.denominations())

    def _prepare(
        self, amount_minor: int, request_id: str | None, key_set: KeySet
    ) -> PendingWithdrawal:
        keys = choose_denominations(amount_minor, self.network.currency, key_set, now())
        pending = blind_withdrawal(keys, key_set.bank_code, self.config.account_id, request_id)
        self.wallet.begin_withdrawal(pending)
        return pending

    async def withdraw_coins(
        self, amount_minor: int | None = None, request_id: str | None = None
    ) -> list[WalletCoin]:
        """Withdraw coins worth amount_minor exactly from the customer's account; the
        coins, kept in :attr:`wallet` before they are returned.

        A request_id that names a withdrawal still waiting in the wallet (its answer
        was lost, or the client stopped) sends that withdrawal again as it was: the
        bank answers the same blind signatures and debits once. One already answered
        returns its coins. A refusal (PaynetError) of a withdrawal never sent before,
        or one that leaves nothing debited whatever came before (INSUFFICIENT_FUNDS),
        forgets it; any other failure keeps it for a retry.
        """
        if request_id is not None and (done := self.wallet.withdrawn(request_id)):
            return done
        waiting = {p.request_id: p for p in self.wallet.pending()}
        pending = waiting.get(request_id or "")
        fresh = pending is None
        key_set = await self.denominations()
        if pending is None:
            if amount_minor is None:
                raise ValueError("no withdrawal is waiting under that request_id: give an amount")
            pending = self._prepare(amount_minor, request_id, key_set)
        elif amount_minor is not None and amount_minor != pending.amount_minor:
            raise ValueError(
                f"withdrawal {pending.request_id!r} asks for {pending.amount_minor}, "
                f"not {amount_minor}"
            )
        try:
            reply = await self._call(self._cash_desk().Withdraw, pending.request())
        except PaynetError as exc:
            definitive = exc.reason in _NOTHING_DEBITED or (fresh and not outcome_unknown(exc))
            if definitive:
                self.wallet.drop_withdrawal(pending.request_id)
            raise
        assert isinstance(reply, cash_pb2.WithdrawResponse)
        # Unblinding verifies each signature with the published key: a bank that signed
        # with another key (to tag the customer's coins) is caught here, and the
        # withdrawal stays in the wallet as evidence of what was paid for.
        coins = finish_withdrawal(pending, reply, key_set)
        self.wallet.complete_withdrawal(pending.request_id, coins)
        return coins

    async def submit_coins(
        self,
        merchant: str,
        order_id: str,
        coins: Sequence[cash_pb2.Coin],
        request_id: str | None = None,
    ) -> order_pb2.Order:
        """Hand signed coins for an order to the merchant (SubmitCoins), as they are:
        the wallet is neither asked nor told (:meth:`pay_with_coins` is the wallet's way).
        The order as the merchant answers it."""
        request = order_pb2.SubmitCoinsRequest(
            request_id=request_id or str(uuid.uuid4()), order_id=order_id, coins=coins
        )
        reply = await self._call(self._store(merchant).SubmitCoins, request)
        assert isinstance(reply, order_pb2.SubmitCoinsResponse)
        return reply.order

    async def pay_with_coins(
        self,
        merchant: str,
        order: order_pb2.Order,
        request_id: str | None = None,
        coins: Sequence[WalletCoin] | None = None,
    ) -> order_pb2.Order:
        """Pay order with coins of :attr:`wallet`: the given ones, else those already shown
        for this order (a retry), else an exact set of unspent ones (ValueError when the
        wallet has none: withdraw the order's total first). The coins are marked spent
        for this order in the wallet before they are sent, each signs the order's
        contract, and the merchant gets them (SubmitCoins). A retry sends the same
        request (request_id and signatures); a refusal is raised (PaynetError) and the
        coins stay spent: they were shown, and are shown to no one else."""
        total = order.total
        if coins is None:
            coins = self.wallet.spent_for(order.order_id) or self.wallet.select(
                total.amount_minor, total.currency_code, now()
            )
        if not coins:
            raise ValueError(
                f"the wallet has no unspent coins adding up to {total.amount_minor} "
                f"{total.currency_code} exactly: withdraw that amount first"
            )
        if sum(c.value_minor for c in coins) != total.amount_minor:
            raise ValueError("the coins do not add up to the order's total")
        shown = [c.spent.request_id for c in coins if c.spent is not None]
        request_id = request_id or (shown[0] if shown else str(uuid.uuid4()))
        marked = self.wallet.mark_spent(coins, order.order_id, merchant, request_id)
        return await self.submit_coins(
            merchant, order.order_id, sign_coins(marked, order), request_id
        )


_NOTHING_DEBITED = frozenset({"INSUFFICIENT_FUNDS", "ACCOUNT_NOT_HELD_BY_CALLER"})
"""Withdraw refusals the bank decides after looking up the request_id: whatever an
earlier attempt did, this one left nothing to finish."""
