"""Gross and net settlement among three banks, net debit caps, and the audit's checks.

Payments go through the real issuer, settlement bank and acquirer code over
real stores (calls between nodes are direct, see conftest). Every test ends
with the network's books checked by the same function ``paynet audit`` uses.
"""

from __future__ import annotations

import datetime as dt

import pytest
from interbank.v1 import audit_pb2
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import settlement_pb2 as pb

from bank import windows
from bank.audit import member_books, settlement_books, settlement_totals
from ops.audit import check_books
from payment import clock, errors
from payment.clock import now
from payment.config import Role

ALFA, BETA, GAMMA = "ALFAXX01", "BETAXX02", "GAMMXX03"
BOB_CARD, DAVE_CARD = "4000009876543210", "4000007777777777"

NET = {"settlement": {"mode": "net", "net_debit_cap_minor": 200_000}}

# (payer, payer's card, payer's bank, payee account, payee bank, amount): every direction.
PAYMENTS = [
    ("alice", "4000001234567899", ALFA, "bob-current", BETA, 7_000),
    ("alice", "4000001234567899", ALFA, "dave-current", GAMMA, 3_000),
    ("bob", BOB_CARD, BETA, "alice-current", ALFA, 2_500),
    ("bob", BOB_CARD, BETA, "dave-current", GAMMA, 4_000),
    ("dave", DAVE_CARD, GAMMA, "alice-current", ALFA, 6_000),
    ("dave", DAVE_CARD, GAMMA, "bob-current", BETA, 1_000),
]


def expected_net() -> dict[str, int]:
    """Each bank's multilateral net position, computed independently of the code under test."""
    net = {ALFA: 0, BETA: 0, GAMMA: 0}
    for _, _, payer_bank, _, payee_bank, amount in PAYMENTS:
        net[payer_bank] -= amount
        net[payee_bank] += amount
    return net


async def pay_in_every_direction(world) -> None:
    for customer, card, bank, account, payee_bank, amount in PAYMENTS:
        node = world.banks[bank]
        held = await world.authorize(
            node,
            customer=customer,
            number=card,
            bank_code=bank,
            amount=amount,
            creditor=(payee_bank, account),
        )
        captured = await world.capture(held.hold_id, node)
        assert captured.settlement_state == authz.SETTLEMENT_STATE_SETTLED, captured


async def reserves(world) -> dict[str, int]:
    return (await world.settlement_store.read(settlement_totals)).reserves


async def audit(world):
    """The audit's verdict on the world's books, as `paynet audit` computes it."""
    books = [
        audit_pb2.GetBooksResponse(
            bank_code="SETLXX00", settlement=await world.settlement_store.read(settlement_books)
        )
    ]
    for code, bank in world.banks.items():
        member = await bank.store.read(lambda conn: member_books(conn, now()))
        books.append(audit_pb2.GetBooksResponse(bank_code=code, member=member))
    return check_books(world.network, books)


async def test_gross_settlement_moves_reserves_per_transfer_by_the_net_in_the_end(world):
    before = await reserves(world)
    await pay_in_every_direction(world)
    after = await reserves(world)
    assert {code: after[code] - before[code] for code in before} == expected_net()
    with pytest.raises(errors.FailedPrecondition) as refused:
        await world.settlement.close_window()
    assert refused.value.reason == "SETTLEMENT_MODE_GROSS"
    report = await audit(world)
    assert report.ok, report.to_json()
    await world.assert_balanced()


@pytest.mark.network(**NET)
async def test_a_net_window_moves_each_reserve_by_exactly_its_net_position(world):
    before = await reserves(world)
    await pay_in_every_direction(world)
    # Nothing moves between reserves while the window is open...
    assert await reserves(world) == before
    running = await world.settlement.get_window("")
    assert running.transfer_count == len(PAYMENTS)
    # ...yet the books agree: each bank's mirror = reserve + unsettled net position.
    assert (await audit(world)).ok

    window = await world.settlement.close_window()

    net = expected_net()
    assert {p.bank_code: p.net_minor for p in window.positions} == net
    assert sum(net.values()) == 0
    assert window.transfer_count == len(PAYMENTS)
    after = await reserves(world)
    assert {code: after[code] - before[code] for code in before} == net
    report = await audit(world)
    assert report.ok, report.to_json()
    await world.assert_balanced()
    # Exactly one ledger entry per net debtor and net creditor, not one per transfer.
    entries = await world.settlement_store.read(
        lambda conn: conn.execute(
            "SELECT COUNT(*) FROM transfers WHERE order_id = ?", (window.window_id,)
        ).fetchone()[0]
    )
    assert entries == sum(1 for amount in net.values() if amount)
    closed = await world.settlement.get_window(window.window_id)
    assert closed.status == window.status
    fresh = await world.settlement.get_window("")
    assert fresh.window_id != window.window_id and fresh.transfer_count == 0


@pytest.mark.network(settlement={"mode": "net", "net_debit_cap_minor": 10_000})
async def test_a_transfer_past_the_net_debit_cap_is_rejected_and_the_debit_reversed(world):
    first = await world.authorize(amount=8_000)
    assert (await world.capture(first.hold_id)).settlement_state == (authz.SETTLEMENT_STATE_SETTLED)
    second = await world.authorize(amount=5_000)
    refused = await world.capture(second.hold_id)
    assert refused.settlement_state == authz.SETTLEMENT_STATE_REJECTED
    assert refused.settlement_reason == "NET_DEBIT_CAP_EXCEEDED"
    # The customer got the 5 000 back: only the first payment left the account.
    assert await world.balance(world.alfa, "alice-current", "alice") == (92_000, 92_000, 0)
    statement = await world.alfa.accounts.statement(
        "alice-current", world.uri(Role.CUSTOMER, "alice")
    )
    assert [e.description for e in statement.entries][-1] == "reversal: NET_DEBIT_CAP_EXCEEDED"
    # A payment back to alfa's customer makes room under the cap again.
    back = await world.authorize(
        world.beta,
        customer="bob",
        number=BOB_CARD,
        bank_code=BETA,
        amount=4_000,
        creditor=(ALFA, "alice-current"),
    )
    assert (await world.capture(back.hold_id, world.beta)).settlement_state == (
        authz.SETTLEMENT_STATE_SETTLED
    )
    third = await world.authorize(amount=5_000)
    assert (await world.capture(third.hold_id)).settlement_state == (authz.SETTLEMENT_STATE_SETTLED)
    window = await world.settlement.close_window()
    assert {p.bank_code: p.net_minor for p in window.positions} == {ALFA: -9_000, BETA: 9_000}
    assert (await audit(world)).ok
    await world.assert_balanced()


@pytest.mark.network(settlement={"mode": "net", "net_debit_cap_minor": 10**9})
async def test_the_cap_is_bounded_by_the_banks_reserve(world):
    # dave's bank gamma holds 30 000 in reserve: a larger net debit could never settle.
    held = await world.authorize(
        world.gamma,
        customer="dave",
        number=DAVE_CARD,
        bank_code=GAMMA,
        amount=30_000,
        creditor=(BETA, "bob-current"),
    )
    assert (await world.capture(held.hold_id, world.gamma)).settlement_state == (
        authz.SETTLEMENT_STATE_SETTLED
    )
    await world.settlement.close_window()
    assert (await reserves(world))[GAMMA] == 0
    await world.assert_balanced()


async def test_an_audit_of_books_that_do_not_add_up_fails_the_right_checks(world):
    await pay_in_every_direction(world)
    # Money created out of thin air at beta: a holder credited from nowhere.
    await world.beta.store.transaction(
        lambda conn: conn.execute(
            "UPDATE accounts SET credits_posted = credits_posted + 1 WHERE account_id = ?",
            ("bob-current",),
        )
    )
    report = await audit(world)
    failed = {c.name for c in report.checks if not c.ok}
    assert failed == {"ledgers_balanced", "holders_backed", "total_money"}
    # Put it back so the fixture's own ledger check passes.
    await world.beta.store.transaction(
        lambda conn: conn.execute(
            "UPDATE accounts SET credits_posted = credits_posted - 1 WHERE account_id = ?",
            ("bob-current",),
        )
    )
    assert (await audit(world)).ok


@pytest.mark.network(settlement={"mode": "net", "window_seconds": 1})
async def test_a_window_with_transfers_closes_by_time_and_an_empty_one_stays_open(world):
    assert await world.settlement.close_if_due() is False  # empty: nothing to settle
    held = await world.authorize(amount=2_000)
    await world.capture(held.hold_id)
    opened = await world.settlement.get_window("")
    assert await world.settlement.close_if_due() is False  # not yet a second old
    a_second_on = clock.now() + dt.timedelta(seconds=1.1)
    assert await world.settlement.close_if_due(now=a_second_on) is True
    closed = await world.settlement.get_window(opened.window_id)
    assert closed.status == pb.SETTLEMENT_WINDOW_STATUS_SETTLED
    assert {p.bank_code: p.net_minor for p in closed.positions} == {ALFA: -2_000, BETA: 2_000}
    await world.assert_balanced()


@pytest.mark.network(**NET)
async def test_a_window_left_closed_by_a_crash_is_settled_on_restart(world):
    held = await world.authorize(amount=1_500)
    await world.capture(held.hold_id)
    before = await reserves(world)
    # A crash between closing (netting) and settling: the window is CLOSED, reserves untouched.
    closed_id = await world.settlement_store.transaction(
        lambda conn: windows.close_open_window(conn, now())
    )
    assert await reserves(world) == before
    assert await world.settlement.settle_closed_windows() == 1
    window = await world.settlement.get_window(closed_id)
    assert window.status == pb.SETTLEMENT_WINDOW_STATUS_SETTLED
    after = await reserves(world)
    assert (after[ALFA] - before[ALFA], after[BETA] - before[BETA]) == (-1_500, 1_500)
    assert await world.settlement.settle_closed_windows() == 0
