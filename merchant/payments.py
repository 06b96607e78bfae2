"""The storefront: a merchant's orders and their payments through the gateway.

:class:`Storefront` is composed of one part per concern, each its own module:

- :mod:`merchant.ordering` -- create, show and cancel orders (and what every part shares);
- :mod:`merchant.paying` -- the account/card instrument's payment: submit and complete;
- :mod:`merchant.cheques` -- the electronic cheque's payment: check, endorse, deposit;
- :mod:`merchant.coins` -- electronic cash's payment: check the coins offline, deposit them;
- :mod:`merchant.resolver` -- payments whose answer was lost (PAYMENT_PENDING);
- :mod:`merchant.refunds` -- refunds of settled orders, asked by the back office.

Instruments plug in beside :class:`merchant.paying.AccountPayments`: an electronic
cheque or electronic cash acceptance is a module of its own, composed here as
``account`` is, with its own way in (its own RPC or request field): the merchant
cannot tell instruments apart by the sealed payment, which it never opens. The
electronic cheque's is :class:`merchant.cheques.ChequePayments` (SubmitCheque),
electronic cash's :class:`merchant.coins.CoinPayments` (SubmitCoins).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from interbank.v1 import cash_pb2, common_pb2, order_pb2

from merchant.catalog import Catalog
from merchant.cheques import ChequeDesk, ChequePayments
from merchant.coins import CashDesk, CoinPayments
from merchant.ordering import GatewayKeyInfo, OrderBook, Ordering
from merchant.orders import OrderRecord
from merchant.paying import (
    FINAL_CAPTURE_REASONS,
    LOOKED_UP_REFUSALS,
    AccountPayments,
    Captures,
    payment_reference,
)
from merchant.refunds import Refunds
from merchant.resolver import RESOLVE_AFTER_S, PendingPayments
from payment.config import TimeoutsConfig
from payment.storage import Store

if TYPE_CHECKING:
    from interbank.v1.authorization_pb2_grpc import GatewayServiceAsyncStub

__all__ = [
    "FINAL_CAPTURE_REASONS",
    "LOOKED_UP_REFUSALS",
    "GatewayKeyInfo",
    "Storefront",
    "payment_reference",
]


class Storefront:
    """A merchant's orders and their payments through the gateway."""

    def __init__(
        self,
        store: Store,
        trust_domain: str,
        merchant_name: str,
        catalog: Catalog,
        gateway_key: GatewayKeyInfo,
        gateway: Callable[[], GatewayServiceAsyncStub],
        *,
        call_timeout_s: float = TimeoutsConfig.node_call_seconds,
        cheque_desk: ChequeDesk | None = None,
        cash_desk: CashDesk | None = None,
    ) -> None:
        """cheque_desk, cash_desk: what taking cheques, coins needs; None for a storefront
        that takes none."""
        self.catalog = catalog
        self.gateway_key = gateway_key
        book = OrderBook(store, trust_domain, merchant_name, gateway, call_timeout_s)
        captures = Captures(book)
        self.ordering = Ordering(book, catalog, gateway_key)
        """Orders: create, show, cancel."""
        self.pending = PendingPayments(book, captures)
        """Payments whose answer was lost."""
        self.account = AccountPayments(book, gateway_key, captures, self._look_up)
        """The account/card instrument's payments."""
        self.cheques = ChequePayments(book, cheque_desk)
        """The electronic cheque's payments."""
        self.coins = CoinPayments(book, cash_desk)
        """Electronic cash's payments."""
        self.refunds = Refunds(book)
        """Refunds of settled orders."""

    async def _look_up(self, record: OrderRecord, reason: str) -> bool:
        return await self.pending.resolve(record, not_found_reason=reason)

    def create_order(
        self,
        conn: sqlite3.Connection,
        customer_name: str,
        lines: Iterable[order_pb2.CreateOrderLine],
    ) -> order_pb2.CreateOrderResponse:
        """Price, store and announce a new order (a one-transaction step)."""
        return self.ordering.create_order(conn, customer_name, lines)

    async def get_order(self, customer_name: str, order_id: str) -> order_pb2.Order:
        """One of the customer's orders."""
        return await self.ordering.get_order(customer_name, order_id)

    async def cancel_order(self, customer_name: str, order_id: str) -> order_pb2.Order:
        """Cancel an order not yet captured, voiding its hold if it has one."""
        return await self.ordering.cancel_order(customer_name, order_id)

    async def submit_payment(
        self, customer_name: str, order_id: str, payment: common_pb2.SealedPayment
    ) -> order_pb2.Order:
        """Pay an order with a sealed account/card payment (see merchant.paying)."""
        return await self.account.submit_payment(customer_name, order_id, payment)

    async def complete_payment(self, customer_name: str, order_id: str) -> order_pb2.Order:
        """Capture an order's authorized payment (after its challenge was answered)."""
        return await self.account.complete_payment(customer_name, order_id)

    async def submit_cheque(
        self,
        customer_name: str,
        request_id: str,
        order_id: str,
        signed_cheque: bytes,
        signed_certificate: bytes,
    ) -> order_pb2.Order:
        """Pay an order with an electronic cheque: check, endorse, deposit (merchant.cheques)."""
        return await self.cheques.submit_cheque(
            customer_name, request_id, order_id, signed_cheque, signed_certificate
        )

    async def submit_coins(
        self,
        customer_name: str,
        request_id: str,
        order_id: str,
        coins: Sequence[cash_pb2.Coin],
    ) -> order_pb2.Order:
        """Pay an order with electronic coins: check them offline, deposit them
        (merchant.coins)."""
        return await self.coins.submit_coins(customer_name, request_id, order_id, coins)

    async def resolve_pending(
        self, *, not_received_after_s: float, older_than_s: float = RESOLVE_AFTER_S
    ) -> int:
        """Settle payments whose answer was lost; how many orders moved or had their cheque
        or coin deposit answered (see merchant.resolver, merchant.cheques, merchant.coins)."""
        moved = await self.pending.resolve_pending(
            not_received_after_s=not_received_after_s, older_than_s=older_than_s
        )
        moved += await self.cheques.resume_deposits(older_than_s=older_than_s)
        return moved + await self.coins.resume_deposits(older_than_s=older_than_s)

    async def refund_order(
        self, order_id: str, amount: common_pb2.Money | None, request_id: str
    ) -> order_pb2.RefundOrderResponse:
        """Refund (part of) a settled order through the gateway and the acquirer.

        An order paid by cheque or with coins is refused (REFUND_NOT_SUPPORTED): the
        gateway has no payment of it to refund.
        """
        await self.cheques.refuse_refund(order_id)
        await self.coins.refuse_refund(order_id)
        return await self.refunds.refund_order(order_id, amount, request_id)
