"""Capture: the customer is debited once and the money settles to the merchant's bank."""

from __future__ import annotations

import uuid

import pytest
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import notification_pb2

from bank.audit import bank_totals, settlement_totals
from payment import errors
from payment.config import Role


async def reserves(world):
    return (await world.settlement_store.read(settlement_totals)).reserves


async def test_capture_debits_the_customer_once_and_credits_the_merchant(world):
    hold_id = (await world.authorize(amount=4_500)).hold_id
    first = await world.capture(hold_id)
    assert first.hold_status == authz.HOLD_STATUS_CAPTURED
    assert first.settlement_state == authz.SETTLEMENT_STATE_SETTLED
    # A second capture (another request id) returns the same transfer, moves nothing.
    again = await world.capture(hold_id)
    assert again.instruction_id == first.instruction_id
    assert await world.balance(world.alfa, "alice-current", "alice") == (95_500, 95_500, 0)
    assert await world.balance(world.beta, "shop-sales", "shop") == (4_500, 4_500, 0)
    assert await reserves(world) == {"ALFAXX01": 100_500, "BETAXX02": 24_500, "GAMMXX03": 30_000}
    alfa = await world.alfa.store.read(bank_totals)
    beta = await world.beta.store.read(bank_totals)
    assert (alfa.reserve_balance, beta.reserve_balance) == (100_500, 24_500)
    assert alfa.suspense_balance == 0
    await world.assert_balanced()


async def test_capture_replays_by_request_id(world):
    hold_id = (await world.authorize(amount=1_000)).hold_id
    request = authz.CaptureHoldRequest(request_id=str(uuid.uuid4()), hold_id=hold_id)
    first = await world.alfa.issuer.capture(request, world.gateway)
    assert await world.alfa.issuer.capture(request, world.gateway) == first
    assert await world.balance(world.alfa, "alice-current", "alice") == (99_000, 99_000, 0)


async def test_capture_notifies_the_customer_and_the_merchant(world):
    hold_id = (await world.authorize(amount=4_500)).hold_id
    captured = await world.capture(hold_id)
    alice = await world.events(world.alfa.store, world.uri(Role.CUSTOMER, "alice"))
    debit = [e.account_entry for e in alice if e.WhichOneof("event") == "account_entry"]
    assert [(d.direction, d.amount.amount_minor, d.balance_after.amount_minor) for d in debit] == [
        (notification_pb2.ACCOUNT_ENTRY_DIRECTION_DEBIT, 4_500, 95_500)
    ]
    assert debit[0].description == "purchase at shop"
    assert debit[0].instruction_id == captured.instruction_id
    shop = await world.events(world.beta.store, world.uri(Role.MERCHANT, "shop"))
    (credit,) = [e.account_entry for e in shop]
    assert credit.direction == notification_pb2.ACCOUNT_ENTRY_DIRECTION_CREDIT
    assert credit.order_id == debit[0].order_id
    assert credit.description == "settlement from ALFAXX01"
    assert credit.balance_after.amount_minor == 4_500


async def test_capture_while_the_settlement_bank_is_unreachable_settles_on_retry(world):
    hold_id = (await world.authorize(amount=3_000)).hold_id
    world.unreachable.add("SETLXX00")
    captured = await world.capture(hold_id)
    assert captured.settlement_state == authz.SETTLEMENT_STATE_PENDING
    assert await world.balance(world.alfa, "alice-current", "alice") == (97_000, 97_000, 0)
    assert (await world.alfa.store.read(bank_totals)).suspense_balance == 3_000
    assert await world.alfa.outgoing.deliver_pending() == 0
    await world.assert_balanced()
    world.unreachable.clear()
    assert await world.alfa.outgoing.deliver_pending() == 1
    assert await world.alfa.outgoing.deliver_pending() == 0
    hold = await world.alfa.issuer.get_hold(authz.GetHoldRequest(hold_id=hold_id))
    assert hold.settlement_state == authz.SETTLEMENT_STATE_SETTLED
    assert await world.balance(world.beta, "shop-sales", "shop") == (3_000, 3_000, 0)
    await world.assert_balanced()


async def test_an_unreachable_acquirer_leaves_the_transfer_pending_until_redelivered(world):
    hold_id = (await world.authorize(amount=3_000)).hold_id
    world.unreachable.add("BETAXX02")
    captured = await world.capture(hold_id)
    assert captured.settlement_state == authz.SETTLEMENT_STATE_PENDING
    await world.assert_balanced()
    world.unreachable.clear()
    assert await world.settlement.forward_pending() == 1
    assert await world.alfa.outgoing.deliver_pending() == 1
    assert await world.balance(world.beta, "shop-sales", "shop") == (3_000, 3_000, 0)
    assert await reserves(world) == {"ALFAXX01": 102_000, "BETAXX02": 23_000, "GAMMXX03": 30_000}
    await world.assert_balanced()


async def test_a_rejected_settlement_reverses_the_customers_debit(world):
    hold_id = (
        await world.authorize(amount=2_000, creditor=("BETAXX02", "no-such-account"))
    ).hold_id
    captured = await world.capture(hold_id)
    assert captured.settlement_state == authz.SETTLEMENT_STATE_REJECTED
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 100_000, 0)
    assert await reserves(world) == {"ALFAXX01": 105_000, "BETAXX02": 20_000, "GAMMXX03": 30_000}
    alice = await world.events(world.alfa.store, world.uri(Role.CUSTOMER, "alice"))
    entries = [e.account_entry for e in alice if e.WhichOneof("event") == "account_entry"]
    assert [e.description for e in entries] == [
        "purchase at shop",
        "reversal: CREDITOR_ACCOUNT_UNKNOWN",
    ]
    assert entries[1].balance_after.amount_minor == 100_000
    await world.assert_balanced()


async def test_a_payment_to_a_merchant_at_the_same_bank_moves_no_reserves(world):
    hold_id = (
        await world.authorize(
            bank=world.beta,
            customer="bob",
            number="4000009876543210",
            bank_code="BETAXX02",
            amount=4_500,
        )
    ).hold_id
    captured = await world.capture(hold_id, bank=world.beta)
    assert captured.settlement_state == authz.SETTLEMENT_STATE_SETTLED
    assert await world.balance(world.beta, "bob-current", "bob") == (15_500, 15_500, 0)
    assert await world.balance(world.beta, "shop-sales", "shop") == (4_500, 4_500, 0)
    assert await reserves(world) == {"ALFAXX01": 105_000, "BETAXX02": 20_000, "GAMMXX03": 30_000}
    assert (await world.beta.store.read(bank_totals)).reserve_balance == 20_000
    await world.assert_balanced()


async def sale(
    world, amount: int
) -> tuple[authz.AuthorizeHoldRequest, authz.AuthorizeHoldResponse]:
    request = world.authorize_request(amount=amount)
    request.capture = True
    return request, await world.alfa.issuer.authorize(request, world.gateway)


async def test_a_sale_holds_captures_and_settles_in_one_call(world):
    request, sold = await sale(world, 4_500)
    assert sold.decision == authz.AUTHORIZATION_DECISION_APPROVED
    assert sold.capture.hold_status == authz.HOLD_STATUS_CAPTURED
    assert sold.capture.settlement_state == authz.SETTLEMENT_STATE_SETTLED
    assert sold.capture.instruction_id
    hold = await world.alfa.issuer.get_hold(authz.GetHoldRequest(hold_id=sold.hold_id))
    assert hold.status == authz.HOLD_STATUS_CAPTURED
    assert await world.balance(world.alfa, "alice-current", "alice") == (95_500, 95_500, 0)
    assert await world.balance(world.beta, "shop-sales", "shop") == (4_500, 4_500, 0)
    # A replay of the same request answers the same sale and moves nothing more.
    assert await world.alfa.issuer.authorize(request, world.gateway) == sold
    # Capturing the sold hold again returns its transfer.
    assert (await world.capture(sold.hold_id)).instruction_id == sold.capture.instruction_id
    assert await world.balance(world.alfa, "alice-current", "alice") == (95_500, 95_500, 0)
    assert await reserves(world) == {"ALFAXX01": 100_500, "BETAXX02": 24_500, "GAMMXX03": 30_000}
    await world.assert_balanced()


async def test_a_challenged_sale_is_only_held(world):
    _, sold = await sale(world, 60_000)  # above challenge_above_minor
    assert sold.decision == authz.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
    assert not sold.HasField("capture")
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 40_000, 60_000)
    await world.assert_balanced()


async def test_a_refused_sale_writes_nothing(world):
    request = world.authorize_request(amount=500_000)  # above alice's balance
    request.capture = True
    with pytest.raises(errors.FailedPrecondition) as caught:
        await world.alfa.issuer.authorize(request, world.gateway)
    assert caught.value.reason == "INSUFFICIENT_FUNDS"
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 100_000, 0)
    assert (await world.alfa.store.read(bank_totals)).suspense_balance == 0
    await world.assert_balanced()


async def test_a_sale_while_the_settlement_bank_is_unreachable_settles_on_replay(world):
    world.unreachable.add("SETLXX00")
    request, sold = await sale(world, 3_000)
    assert sold.capture.settlement_state == authz.SETTLEMENT_STATE_PENDING
    assert (await world.alfa.store.read(bank_totals)).suspense_balance == 3_000
    world.unreachable.clear()
    # The gateway's retry of the same request delivers the pending transfer and says so.
    again = await world.alfa.issuer.authorize(request, world.gateway)
    assert again.capture.instruction_id == sold.capture.instruction_id
    assert again.capture.settlement_state == authz.SETTLEMENT_STATE_SETTLED
    assert await world.balance(world.beta, "shop-sales", "shop") == (3_000, 3_000, 0)
    await world.assert_balanced()
