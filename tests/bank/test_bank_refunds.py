"""Refunds: the acquirer returns money of a settled payment to the issuer (after pacs.004)."""

from __future__ import annotations

import uuid

import pytest
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import common_pb2, notification_pb2

from bank.audit import settlement_totals
from payment import errors
from payment.config import Role

ALFA, BETA = "ALFAXX01", "BETAXX02"


async def settled_payment(world, amount: int = 6_000) -> tuple[str, str]:
    """A payment alice -> shop, captured and settled; returns (hold id, instruction id)."""
    held = await world.authorize(amount=amount)
    captured = await world.capture(held.hold_id)
    assert captured.settlement_state == authz.SETTLEMENT_STATE_SETTLED
    return held.hold_id, captured.instruction_id


async def refund(world, instruction_id: str, amount: int, request_id: str | None = None):
    request = authz.ReturnPaymentRequest(
        request_id=request_id or str(uuid.uuid4()),
        original_instruction_id=instruction_id,
        original_debtor_agent=ALFA,
        amount=common_pb2.Money(amount_minor=amount, currency_code="EUR"),
        merchant_name="shop",
    )
    return await world.beta.acquirer.return_payment(request, world.gateway)


async def test_a_partial_then_a_full_refund_move_the_money_back_and_no_more(world):
    hold_id, instruction_id = await settled_payment(world)
    reserves_before = (await world.settlement_store.read(settlement_totals)).reserves

    first = await refund(world, instruction_id, 2_000)
    assert first.returned_total.amount_minor == 2_000
    assert await world.balance(world.beta, "shop-sales", "shop") == (4_000, 4_000, 0)
    assert await world.balance(world.alfa, "alice-current", "alice") == (96_000, 96_000, 0)

    second = await refund(world, instruction_id, 4_000)
    assert second.returned_total.amount_minor == 6_000
    assert second.return_id != first.return_id
    assert await world.balance(world.beta, "shop-sales", "shop") == (0, 0, 0)
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 100_000, 0)

    with pytest.raises(errors.FailedPrecondition) as refused:
        await refund(world, instruction_id, 1)
    assert refused.value.reason == "REFUND_EXCEEDS_PAYMENT"

    reserves_after = (await world.settlement_store.read(settlement_totals)).reserves
    assert reserves_after[ALFA] - reserves_before[ALFA] == 6_000
    assert reserves_after[BETA] - reserves_before[BETA] == -6_000
    hold = await world.alfa.issuer.get_hold(authz.GetHoldRequest(hold_id=hold_id))
    assert hold.status == authz.HOLD_STATUS_CAPTURED
    assert hold.refunded_total.amount_minor == 6_000
    await world.assert_balanced()


async def test_a_refund_has_statement_lines_and_notices_on_both_sides(world):
    _, instruction_id = await settled_payment(world)
    returned = await refund(world, instruction_id, 1_500)

    shop = await world.beta.accounts.statement("shop-sales", world.uri(Role.MERCHANT, "shop"))
    assert [(e.description, e.amount.amount_minor) for e in shop.entries][-1] == (
        f"refund of order {shop.entries[-1].order_id}",
        1_500,
    )
    assert shop.entries[-1].direction == notification_pb2.ACCOUNT_ENTRY_DIRECTION_DEBIT
    alice = await world.alfa.accounts.statement("alice-current", world.uri(Role.CUSTOMER, "alice"))
    last = alice.entries[-1]
    assert (last.description, last.amount.amount_minor, last.direction) == (
        f"refund from {BETA}",
        1_500,
        notification_pb2.ACCOUNT_ENTRY_DIRECTION_CREDIT,
    )
    assert last.order_id == shop.entries[-1].order_id

    alice_events = await world.events(world.alfa.store, world.uri(Role.CUSTOMER, "alice"))
    credit = alice_events[-1].account_entry
    assert (
        credit.instruction_id,
        credit.amount.amount_minor,
        credit.balance_after.amount_minor,
    ) == (
        returned.return_id,
        1_500,
        95_500,
    )
    shop_events = await world.events(world.beta.store, world.uri(Role.MERCHANT, "shop"))
    # The debit when the refund was asked for, then the refund once its return settled.
    debit, settled = shop_events[-2].account_entry, shop_events[-1].refund
    assert debit.direction == notification_pb2.ACCOUNT_ENTRY_DIRECTION_DEBIT
    assert debit.instruction_id == returned.return_id
    assert (settled.refund_id, settled.order_id, settled.refunded_total.amount_minor) == (
        returned.return_id,
        debit.order_id,
        1_500,
    )


async def test_a_retried_refund_request_returns_the_first_refund_and_moves_nothing(world):
    _, instruction_id = await settled_payment(world)
    first = await refund(world, instruction_id, 1_000, request_id="refund-1")
    again = await refund(world, instruction_id, 1_000, request_id="refund-1")
    assert again.return_id == first.return_id
    assert again.returned_total.amount_minor == 1_000
    assert await world.balance(world.beta, "shop-sales", "shop") == (5_000, 5_000, 0)
    with pytest.raises(errors.AlreadyExists) as reused:
        await refund(world, instruction_id, 2_000, request_id="refund-1")
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    await world.assert_balanced()


async def test_a_refund_of_an_unknown_or_foreign_payment_is_not_found(world):
    await settled_payment(world)
    with pytest.raises(errors.NotFound) as unknown:
        await refund(world, "no-such-instruction", 100)
    assert unknown.value.reason == "ORIGINAL_TRANSFER_NOT_FOUND"
    assert await world.balance(world.beta, "shop-sales", "shop") == (6_000, 6_000, 0)


async def test_a_refund_above_the_merchants_balance_is_refused_and_writes_nothing(world):
    _, first = await settled_payment(world, amount=3_000)
    _, second = await settled_payment(world, amount=3_000)
    await refund(world, first, 3_000)
    await refund(world, second, 2_000)
    # shop has 1 000 left; the payment still has 1 000 refundable: both limits agree here.
    assert await world.balance(world.beta, "shop-sales", "shop") == (1_000, 1_000, 0)
    rows = await world.rows(world.beta.store, "outgoing_transfers")
    with pytest.raises(errors.FailedPrecondition) as refused:
        await refund(world, second, 1_001)
    assert refused.value.reason == "REFUND_EXCEEDS_PAYMENT"
    assert await world.rows(world.beta.store, "outgoing_transfers") == rows


@pytest.mark.network(settlement={"mode": "net"}, caps={BETA: 1_000})
async def test_a_return_past_the_acquirers_cap_is_rejected_and_the_merchant_made_whole(world):
    _, instruction_id = await settled_payment(world, amount=3_000)
    window = await world.settlement.close_window()
    assert {p.bank_code: p.net_minor for p in window.positions} == {ALFA: -3_000, BETA: 3_000}
    # A new window: beta, capped at 1 000, may return 1 000 but not 500 more.
    await refund(world, instruction_id, 1_000)
    with pytest.raises(errors.FailedPrecondition) as rejected:
        await refund(world, instruction_id, 500)
    assert rejected.value.reason == "RETURN_REJECTED"
    assert rejected.value.metadata["settlement_reason"] == "NET_DEBIT_CAP_EXCEEDED"
    shop = await world.beta.accounts.statement("shop-sales", world.uri(Role.MERCHANT, "shop"))
    assert shop.entries[-1].description == "reversal: NET_DEBIT_CAP_EXCEEDED"
    assert await world.balance(world.beta, "shop-sales", "shop") == (2_000, 2_000, 0)
    assert await world.balance(world.alfa, "alice-current", "alice") == (98_000, 98_000, 0)
    window = await world.settlement.close_window()
    assert {p.bank_code: p.net_minor for p in window.positions} == {ALFA: 1_000, BETA: -1_000}
    # The rejected return does not count against the payment: in the next window the
    # merchant can still refund the 2 000 not refunded yet, within beta's cap.
    assert (await refund(world, instruction_id, 1_000)).returned_total.amount_minor == 2_000
    await world.assert_balanced()
