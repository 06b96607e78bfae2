"""Amounts of money: the one maximum every amount field has, and sums that stay int64.

Money travels as ``int64`` minor units (``interbank.v1.Money``) and is stored in
SQLite integers, which are int64 too. Two rules keep every figure inside that
range, whatever a caller sends:

- an amount a request carries is whole minor units from 1 to
  :data:`MAX_AMOUNT_MINOR`, checked by :func:`require_amount` before anything
  adds it to anything; anything else is refused INVALID_ARGUMENT, FIELD_INVALID
  with metadata ``field`` (its path) and ``limit`` (the maximum);
- a running total that adds amounts up (a ledger account's sums) is added with
  :func:`checked_sum`, which refuses a total outside int64 with
  :class:`AmountOverflow` (FAILED_PRECONDITION, AMOUNT_OVERFLOW) before it is
  written, instead of letting SQLite turn it into a float or fail the request
  with INTERNAL.

Why 10^15 minor units: ten trillion euros in cents is far beyond any single
payment, it is the bound the network file already puts on opening balances
and prices, it is below 2^53 so a JavaScript client holds every amount
exactly, and it leaves room for 9,223 maximal amounts in one int64 total, so
a batch of 256 entries can never overflow one.
"""

from __future__ import annotations

from typing import Final

from payment import errors

__all__ = [
    "AMOUNT_OVERFLOW",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_AMOUNT_MINOR",
    "AmountOverflow",
    "checked_sum",
    "require_amount",
]

MAX_AMOUNT_MINOR: Final = 10**15
"""Largest amount, in minor units, that any amount field of a request may carry."""
INT64_MAX: Final = 2**63 - 1
"""Largest figure a Money, a stored amount or a running total can hold."""
INT64_MIN: Final = -(2**63)
"""Smallest figure a Money, a stored amount or a running total can hold."""
AMOUNT_OVERFLOW: Final = "AMOUNT_OVERFLOW"
"""The reason of :class:`AmountOverflow`."""


class AmountOverflow(errors.FailedPrecondition):
    """A total would leave int64; nothing was added. FAILED_PRECONDITION, AMOUNT_OVERFLOW."""

    def __init__(self, total: str) -> None:
        super().__init__(
            AMOUNT_OVERFLOW,
            f"{total} would pass {INT64_MAX} minor units, the most it can hold;"
            " nothing was changed",
            total=total,
            limit=INT64_MAX,
        )


def require_amount(amount_minor: int, field: str) -> int:
    """amount_minor if it is from 1 to MAX_AMOUNT_MINOR; else FIELD_INVALID naming field."""
    if not 1 <= amount_minor <= MAX_AMOUNT_MINOR:
        raise errors.InvalidArgument(
            "FIELD_INVALID",
            f"{field} must be from 1 to {MAX_AMOUNT_MINOR} minor units",
            field=field,
            limit=MAX_AMOUNT_MINOR,
        )
    return amount_minor


def checked_sum(*terms: int, total: str) -> int:
    """The sum of terms; AmountOverflow naming total if it is outside int64."""
    result = sum(terms)
    if not INT64_MIN <= result <= INT64_MAX:
        raise AmountOverflow(total)
    return result
