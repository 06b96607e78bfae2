"""Online banking: balances and statements, for the account holder only."""

from __future__ import annotations

import pytest
from interbank.v1 import notification_pb2

from payment import errors
from payment.config import Role

CREDIT = notification_pb2.ACCOUNT_ENTRY_DIRECTION_CREDIT
DEBIT = notification_pb2.ACCOUNT_ENTRY_DIRECTION_DEBIT


async def test_a_statement_has_opening_and_closing_balances_and_the_entries_between(world):
    alice = world.uri(Role.CUSTOMER, "alice")
    first = (await world.authorize(amount=1_000)).hold_id
    await world.capture(first)
    middle = world.later(0)
    second = (await world.authorize(amount=2_500)).hold_id
    await world.capture(second)
    held = (await world.authorize(amount=700)).hold_id  # pending: not on the statement
    assert held

    whole = await world.alfa.accounts.statement("alice-current", alice)
    assert (whole.opening_balance.amount_minor, whole.closing_balance.amount_minor) == (0, 96_500)
    assert [
        (e.direction, e.amount.amount_minor, e.balance_after.amount_minor) for e in whole.entries
    ] == [
        (CREDIT, 100_000, 100_000),
        (DEBIT, 1_000, 99_000),
        (DEBIT, 2_500, 96_500),
    ]
    assert whole.entries[0].description == "opening balance"
    assert whole.entries[2].description == "purchase at shop"
    assert whole.entries[2].order_id

    later_part = await world.alfa.accounts.statement("alice-current", alice, from_time=middle)
    assert later_part.opening_balance.amount_minor == 99_000
    assert later_part.closing_balance.amount_minor == 96_500
    assert [e.amount.amount_minor for e in later_part.entries] == [2_500]

    earlier_part = await world.alfa.accounts.statement("alice-current", alice, to_time=middle)
    assert earlier_part.closing_balance.amount_minor == 99_000
    assert len(earlier_part.entries) == 2

    balance = await world.alfa.accounts.balance("alice-current", alice)
    assert (balance.booked.amount_minor, balance.available.amount_minor) == (96_500, 95_800)
    assert balance.held.amount_minor == 700


async def test_a_period_that_ends_before_it_starts_is_invalid(world):
    alice = world.uri(Role.CUSTOMER, "alice")
    with pytest.raises(errors.InvalidArgument) as caught:
        await world.alfa.accounts.statement(
            "alice-current", alice, from_time=world.later(60), to_time=world.later(0)
        )
    assert caught.value.reason == "PERIOD_INVALID"


async def test_the_merchants_statement_shows_the_settlement_credit(world):
    await world.capture((await world.authorize(amount=4_500)).hold_id)
    statement = await world.beta.accounts.statement("shop-sales", world.uri(Role.MERCHANT, "shop"))
    assert [(e.direction, e.description) for e in statement.entries] == [
        (CREDIT, "settlement from ALFAXX01")
    ]
    assert statement.closing_balance.amount_minor == 4_500


@pytest.mark.parametrize(
    ("account_id", "caller"),
    [
        ("alice-current", ("customer", "carol")),
        ("alice-current", ("merchant", "shop")),
        ("no-such-account", ("customer", "alice")),
        ("@reserve", ("customer", "alice")),
    ],
)
async def test_an_account_not_held_by_the_caller_is_denied_the_same_way_as_an_unknown_one(
    world, account_id, caller
):
    uri = world.uri(Role(caller[0]), caller[1])
    with pytest.raises(errors.PermissionDenied) as caught:
        await world.alfa.accounts.balance(account_id, uri)
    assert caught.value.reason == "ACCOUNT_NOT_HELD_BY_CALLER"
    with pytest.raises(errors.PermissionDenied):
        await world.alfa.accounts.statement(account_id, uri)
