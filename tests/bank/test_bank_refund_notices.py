"""The acquirer tells the merchant of every refund of its payments once the return settles."""

from __future__ import annotations

import uuid

import pytest
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import common_pb2, notification_pb2

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
    """ReturnPayment at beta, as the gateway asks it."""
    request = authz.ReturnPaymentRequest(
        request_id=request_id or str(uuid.uuid4()),
        original_instruction_id=instruction_id,
        original_debtor_agent=ALFA,
        amount=common_pb2.Money(amount_minor=amount, currency_code="EUR"),
        merchant_name="shop",
    )
    return await world.beta.acquirer.return_payment(request, world.gateway)


async def refund_notices(world) -> list[notification_pb2.RefundNotice]:
    events = await world.events(world.beta.store, world.uri(Role.MERCHANT, "shop"))
    return [e.refund for e in events if e.WhichOneof("event") == "refund"]


async def test_each_settled_refund_sends_the_merchant_its_running_total(world):
    _, instruction_id = await settled_payment(world, amount=6_000)
    first = await refund(world, instruction_id, 2_000)
    second = await refund(world, instruction_id, 4_000)
    with pytest.raises(errors.FailedPrecondition):
        await refund(world, instruction_id, 1)

    notices = await refund_notices(world)
    assert [
        (n.refund_id, n.amount.amount_minor, n.refunded_total.amount_minor) for n in notices
    ] == [
        (first.return_id, 2_000, 2_000),
        (second.return_id, 4_000, 6_000),
    ]
    assert all(n.original_instruction_id == instruction_id for n in notices)
    assert {(n.account.bank_code, n.account.account_id) for n in notices} == {(BETA, "shop-sales")}
    assert {n.refunded_total.currency_code for n in notices} == {"EUR"}


async def test_a_retried_refund_sends_no_second_notice(world):
    _, instruction_id = await settled_payment(world)
    first = await refund(world, instruction_id, 1_000, request_id="refund-1")
    await refund(world, instruction_id, 1_000, request_id="refund-1")
    assert [n.refund_id for n in await refund_notices(world)] == [first.return_id]


@pytest.mark.network(settlement={"mode": "net"}, caps={BETA: 1_000})
async def test_a_rejected_return_sends_no_refund_notice_only_the_reversal(world):
    _, instruction_id = await settled_payment(world, amount=3_000)
    window = await world.settlement.close_window()
    assert {p.bank_code: p.net_minor for p in window.positions} == {ALFA: -3_000, BETA: 3_000}
    accepted = await refund(world, instruction_id, 1_000)
    with pytest.raises(errors.FailedPrecondition) as rejected:
        await refund(world, instruction_id, 500)
    assert rejected.value.reason == "RETURN_REJECTED"

    notices = await refund_notices(world)
    assert [(n.refund_id, n.refunded_total.amount_minor) for n in notices] == [
        (accepted.return_id, 1_000)
    ]
    events = await world.events(world.beta.store, world.uri(Role.MERCHANT, "shop"))
    reversal = events[-1].account_entry
    assert reversal.direction == notification_pb2.ACCOUNT_ENTRY_DIRECTION_CREDIT
    assert reversal.description == "reversal: NET_DEBIT_CAP_EXCEEDED"
