"""Orders at the storefront: price and store one, show it, cancel it.

:class:`OrderBook` is what every part of the storefront shares (the store, who
the merchant is, its gateway and the deadline of a call to it) with the order
moves they all make; :class:`Ordering` creates, reads and cancels orders.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from interbank.v1 import authorization_pb2, common_pb2, order_pb2

from merchant import orders
from merchant.catalog import Catalog
from merchant.orders import OrderRecord
from payment import errors
from payment.clock import now, timestamp
from payment.envelope import OrderLineText, order_digest
from payment.errors import relayed
from payment.logs import get_logger
from payment.storage import Store

if TYPE_CHECKING:
    from interbank.v1.authorization_pb2_grpc import GatewayServiceAsyncStub

__all__ = [
    "CAPTURED_OR_LATER",
    "FINAL_FAILURES",
    "HELD",
    "GatewayKeyInfo",
    "OrderBook",
    "Ordering",
    "require_unpaid",
]

_log = get_logger("paynet.merchant")

CAPTURED_OR_LATER = frozenset(
    {
        orders.CAPTURED,
        orders.SETTLED,
        orders.DELIVERY_CONFIRMED,
        orders.PARTIALLY_REFUNDED,
        orders.REFUNDED,
        orders.REVERSED,
    }
)
"""Order states whose payment was captured (the money moved, or moved back)."""
HELD = frozenset({orders.CHALLENGE_REQUIRED, orders.AUTHORIZED})
"""Order states whose payment holds money at the issuer, not yet captured."""
FINAL_FAILURES = frozenset({orders.FAILED, orders.CANCELED, orders.REVERSED})
"""Order states that can never be paid."""


@dataclass(frozen=True)
class GatewayKeyInfo:
    """The gateway's payment-encryption public key, as handed to customers."""

    public_key: bytes
    """The raw 32-byte X25519 public key."""
    key_id: str
    """payment.pki.key_id of the key."""


@dataclass(frozen=True)
class OrderBook:
    """The merchant's store of orders and its gateway, shared by every part of the storefront."""

    store: Store
    """The merchant's store."""
    trust_domain: str
    """The network's trust domain (order events name their recipients by it)."""
    merchant_name: str
    """This merchant."""
    gateway: Callable[[], GatewayServiceAsyncStub]
    """The gateway's GatewayService, over the merchant's shared channel."""
    call_timeout_s: float
    """Deadline of every call to the gateway (``[timeouts] node_call_seconds``)."""

    @staticmethod
    def load(conn: sqlite3.Connection, order_id: str) -> OrderRecord:
        """An order; NotFound(ORDER_NOT_FOUND) if there is none."""
        record = orders.load_order(conn, order_id)
        if record is None:
            raise errors.NotFound("ORDER_NOT_FOUND", f"no order {order_id!r}", order_id=order_id)
        return record

    def move(
        self,
        conn: sqlite3.Connection,
        order_id: str,
        target: orders.OrderStatus,
        *,
        failure_reason: str | None = None,
        transaction_id: str | None = None,
        challenge: order_pb2.ChallengeRef | None = None,
    ) -> OrderRecord:
        """Move an order to target (see merchant.orders.transition)."""
        return orders.transition(
            conn,
            self.trust_domain,
            self.load(conn, order_id),
            target,
            failure_reason=failure_reason,
            transaction_id=transaction_id,
            challenge=challenge,
        )

    def fail_held(self, conn: sqlite3.Connection, order_id: str, reason: str) -> None:
        """FAILED with the reason, if the order still holds money uncaptured."""
        current = self.load(conn, order_id)
        if current.order.status in HELD:
            orders.transition(
                conn, self.trust_domain, current, orders.FAILED, failure_reason=reason
            )


class Ordering:
    """Creates, shows and cancels a customer's orders."""

    def __init__(self, book: OrderBook, catalog: Catalog, gateway_key: GatewayKeyInfo) -> None:
        self._book = book
        self._catalog = catalog
        self._gateway_key = gateway_key

    def create_order(
        self,
        conn: sqlite3.Connection,
        customer_name: str,
        lines: Iterable[order_pb2.CreateOrderLine],
    ) -> order_pb2.CreateOrderResponse:
        """Price, store and announce a new order (a one-transaction step)."""
        priced = self._catalog.price(lines)
        order_id = str(uuid.uuid4())
        merchant_name = self._book.merchant_name
        digest = order_digest(
            order_id,
            merchant_name,
            customer_name,
            priced.currency_code,
            priced.total_minor,
            [
                OrderLineText(line.sku, line.quantity, line.unit_price.amount_minor)
                for line in priced.lines
            ],
        )
        created = timestamp(now())
        order = order_pb2.Order(
            order_id=order_id,
            merchant_name=merchant_name,
            customer_name=customer_name,
            lines=priced.lines,
            total=common_pb2.Money(
                amount_minor=priced.total_minor, currency_code=priced.currency_code
            ),
            status=orders.CREATED,
            order_digest=digest,
            created_at=created,
            updated_at=created,
        )
        orders.insert_order(conn, self._book.trust_domain, order)
        return order_pb2.CreateOrderResponse(
            order=order,
            gateway_public_key=self._gateway_key.public_key,
            gateway_key_id=self._gateway_key.key_id,
        )

    async def get_order(self, customer_name: str, order_id: str) -> order_pb2.Order:
        """One of the customer's orders."""
        record = await self._book.store.read(
            lambda conn: orders.customer_order(conn, order_id, customer_name)
        )
        return record.order

    async def cancel_order(self, customer_name: str, order_id: str) -> order_pb2.Order:
        """Cancel an order not yet captured, voiding its hold if it has one."""
        book = self._book

        def begin(conn: sqlite3.Connection) -> OrderRecord:
            record = orders.customer_order(conn, order_id, customer_name)
            if record.order.status == orders.CREATED:
                return orders.transition(conn, book.trust_domain, record, orders.CANCELED)
            _require_cancelable(record)
            return record

        record = await book.store.transaction(begin)
        if record.order.status == orders.CANCELED:
            return record.order
        await relayed(
            book.gateway().VoidPayment(
                authorization_pb2.VoidPaymentRequest(
                    request_id=f"void:{order_id}", transaction_id=record.transaction_id
                ),
                timeout=book.call_timeout_s,
            )
        )

        def finish(conn: sqlite3.Connection) -> OrderRecord:
            current = book.load(conn, order_id)
            _require_cancelable(current)
            return orders.transition(conn, book.trust_domain, current, orders.CANCELED)

        canceled = await book.store.transaction(finish)
        _log.info("order.canceled", order_id=order_id, transaction_id=record.transaction_id)
        return canceled.order


def require_unpaid(record: OrderRecord) -> None:
    """FAILED_PRECONDITION, ORDER_NOT_PAYABLE, unless the order is CREATED: a payment by
    another instrument is taken only for an order with none under way, never paid, and
    neither canceled nor failed."""
    status = record.order.status
    if status == orders.CREATED:
        return
    order_id = record.order.order_id
    hint = "create a new order" if status in FINAL_FAILURES else "it already has a payment"
    raise errors.FailedPrecondition(
        "ORDER_NOT_PAYABLE",
        f"order {order_id!r} is {orders.status_name(status)}; {hint}",
        order_id=order_id,
    )


def _require_cancelable(record: OrderRecord) -> None:
    if record.order.status not in HELD:
        raise errors.FailedPrecondition(
            "ORDER_NOT_CANCELABLE",
            f"order {record.order.order_id!r} is "
            f"{orders.status_name(record.order.status)} and can no longer be canceled",
            order_id=record.order.order_id,
        )
