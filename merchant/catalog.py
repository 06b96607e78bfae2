"""The merchant's catalog and how it prices an order.

Prices come from the network file; an order line carries the unit price at
the time the order was created, so later catalog changes never reprice it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from interbank.v1 import common_pb2, order_pb2

from payment import errors
from payment.config import ProductConfig

__all__ = ["MAX_QUANTITY", "Catalog", "PricedOrder"]

MAX_QUANTITY = 1000
"""Most units of one product in one order."""

_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class PricedOrder:
    """An order's priced lines and total."""

    lines: tuple[order_pb2.OrderLine, ...]
    """One line per product, in the order asked."""
    total_minor: int
    """Sum of the line totals, in minor units."""
    currency_code: str
    """The currency of every price."""


class Catalog:
    """The products a merchant sells, by SKU."""

    def __init__(self, products: Sequence[ProductConfig], currency_code: str) -> None:
        self._products = {product.sku: product for product in products}
        self._currency = currency_code

    def products(self) -> list[order_pb2.Product]:
        """Every product on sale, in catalog order."""
        return [
            order_pb2.Product(sku=p.sku, name=p.name, unit_price=self._money(p.unit_price_minor))
            for p in self._products.values()
        ]

    def price(self, wanted: Iterable[order_pb2.CreateOrderLine]) -> PricedOrder:
        """Price the wanted lines.

        Raises InvalidArgument with reason EMPTY_ORDER, DUPLICATE_SKU,
        UNKNOWN_SKU or QUANTITY_INVALID.
        """
        lines: list[order_pb2.OrderLine] = []
        seen: set[str] = set()
        total = 0
        for index, line in enumerate(wanted):
            if line.sku in seen:
                raise errors.InvalidArgument(
                    "DUPLICATE_SKU",
                    f"sku {line.sku!r} appears more than once; "
                    "order it once with the total quantity",
                    sku=line.sku,
                    line=index,
                )
            seen.add(line.sku)
            product = self._products.get(line.sku)
            if product is None:
                raise errors.InvalidArgument(
                    "UNKNOWN_SKU",
                    f"sku {line.sku!r} is not in the catalog",
                    sku=line.sku,
                    line=index,
                )
            if not 1 <= line.quantity <= MAX_QUANTITY:
                raise errors.InvalidArgument(
                    "QUANTITY_INVALID",
                    f"quantity of {line.sku!r} must be 1 to {MAX_QUANTITY}, got {line.quantity}",
                    sku=line.sku,
                    line=index,
                )
            line_total = product.unit_price_minor * line.quantity
            total += line_total
            lines.append(
                order_pb2.OrderLine(
                    sku=line.sku,
                    quantity=line.quantity,
                    unit_price=self._money(product.unit_price_minor),
                    line_total=self._money(line_total),
                )
            )
        if not lines:
            raise errors.InvalidArgument("EMPTY_ORDER", "an order needs at least one line")
        if total > _INT64_MAX:
            # Money travels as int64 minor units; a larger total cannot be paid.
            raise errors.InvalidArgument("QUANTITY_INVALID", "the order total is too large")
        return PricedOrder(lines=tuple(lines), total_minor=total, currency_code=self._currency)

    def _money(self, amount_minor: int) -> common_pb2.Money:
        return common_pb2.Money(amount_minor=amount_minor, currency_code=self._currency)
