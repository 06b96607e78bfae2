"""Running totals never leave int64: a sum that would is refused, never stored or INTERNAL."""

from __future__ import annotations

import sqlite3

import pytest
from interbank.v1 import settlement_pb2 as pb
from test_bank_settlement import submit_request

from bank import ledger, windows
from bank.audit import settlement_totals
from bank.schema import SETTLEMENT_SCHEMA
from payment.clock import now
from payment.money import INT64_MAX, AmountOverflow

START = {"ALFAXX01": 105_000, "BETAXX02": 20_000, "GAMMXX03": 30_000}


def account_sums(conn: sqlite3.Connection, account_id: str) -> tuple[int, ...]:
    found = ledger.account(conn, account_id)
    assert found is not None
    return (found.debits_posted, found.credits_posted, found.debits_pending, found.credits_pending)


@pytest.fixture
def books() -> sqlite3.Connection:
    """A settlement ledger with two accounts, one of them near the end of int64."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(SETTLEMENT_SCHEMA)
    for account_id in ("a", "b"):
        ledger.create_account(conn, account_id, "reserve", "EUR", now=now())
    ledger.transfer(conn, "a", "b", 1_000, "EUR", now=now())
    # Money went back and forth: b has been credited (and debited) almost as much as
    # an int64 holds, a a quarter of that; every balance is as it was.
    for account_id, churn in (("b", INT64_MAX - 1_600), ("a", 2**61)):
        conn.execute(
            "UPDATE accounts SET credits_posted = credits_posted + ?,"
            " debits_posted = debits_posted + ? WHERE account_id = ?",
            (churn, churn, account_id),
        )
    return conn


@pytest.mark.parametrize("pending", [False, True])
def test_a_transfer_past_an_accounts_int64_total_is_refused_and_writes_nothing(books, pending):
    before = account_sums(books, "b")
    (transfers,) = books.execute("SELECT COUNT(*) FROM transfers").fetchone()
    with pytest.raises(AmountOverflow) as caught:
        ledger.transfer(books, "a", "b", 601, "EUR", now=now(), pending=pending)
    assert (caught.value.reason, caught.value.metadata["total"]) == ("AMOUNT_OVERFLOW", "b credits")
    assert account_sums(books, "b") == before
    assert books.execute("SELECT COUNT(*) FROM transfers").fetchone() == (transfers,)


def test_a_pending_transfer_counts_against_the_total_it_will_post_into(books):
    hold = ledger.transfer(books, "a", "b", 400, "EUR", now=now(), pending=True)
    with pytest.raises(AmountOverflow):
        ledger.transfer(books, "a", "b", 201, "EUR", now=now())
    ledger.post_pending(books, hold, now=now())  # posting the earmark always fits
    assert account_sums(books, "b")[1] == INT64_MAX - 200


def test_the_ledger_totals_add_up_past_int64_without_failing(books):
    totals = ledger.ledger_totals(books)
    assert totals.credits_posted == totals.debits_posted > INT64_MAX


def test_netting_a_window_whose_gross_flow_passes_int64_gives_exact_positions():
    conn = sqlite3.connect(":memory:")
    conn.executescript(SETTLEMENT_SCHEMA)
    window_id = windows.open_window(conn, now())
    amounts = [("A", "B", 2**62)] * 3 + [("B", "A", 2**62)] * 2 + [("A", "B", 7)]
    conn.executemany(
        "INSERT INTO settlement_transfers (debtor_agent, instruction_id, kind, request_hash,"
        " creditor_agent, amount, message, status, window_id, created_at)"
        " VALUES (?, ?, 'transfer', x'', ?, ?, x'', 'ACCEPTED', ?, '')",
        [(d, str(i), c, amount, window_id) for i, (d, c, amount) in enumerate(amounts)],
    )
    assert windows.net_positions(conn, window_id) == {"A": -(2**62) - 7, "B": 2**62 + 7}


async def test_a_credit_past_the_holders_int64_total_is_rejected_and_the_reserves_stay(world):
    # The shop's account has seen almost as much money in and out as an int64 holds.
    churn = INT64_MAX - 1_000
    await world.beta.store.transaction(
        lambda conn: conn.execute(
            "UPDATE accounts SET credits_posted = credits_posted + ?,"
            " debits_posted = debits_posted + ? WHERE account_id = 'shop-sales'",
            (churn, churn),
        )
    )
    response = await world.settlement.submit(submit_request(amount=3_000), "ALFAXX01")
    assert (response.status, response.reason_code) == (
        pb.TRANSFER_STATUS_REJECTED,
        "AMOUNT_OVERFLOW",
    )
    settled = await world.settlement_store.read(settlement_totals)
    assert settled.reserves == START
    assert settled.debits_pending == 0
    assert await world.balance(world.beta, "shop-sales", "shop") == (0, 0, 0)
    await world.assert_balanced()
