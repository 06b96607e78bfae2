"""Authorizing, voiding and expiring holds at the issuer."""

from __future__ import annotations

import uuid

import pytest
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import common_pb2

from payment import errors
from payment.config import Role


async def test_authorize_places_a_hold_that_lowers_available_funds(world):
    response = await world.authorize(amount=2_500)
    assert response.decision == authz.AUTHORIZATION_DECISION_APPROVED
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 97_500, 2_500)
    hold = await world.alfa.issuer.get_hold(authz.GetHoldRequest(hold_id=response.hold_id))
    assert hold.status == authz.HOLD_STATUS_AUTHORIZED
    assert hold.amount.amount_minor == 2_500
    events = await world.events(world.alfa.store, world.uri(Role.CUSTOMER, "alice"))
    assert [e.hold.event for e in events] == ["placed"]
    await world.assert_balanced()


async def test_a_hold_can_be_found_by_the_gateways_transaction_id(world):
    request = world.authorize_request()
    response = await world.alfa.issuer.authorize(request, world.gateway)
    hold = await world.alfa.issuer.get_hold(
        authz.GetHoldRequest(transaction_id=request.transaction_id)
    )
    assert hold.hold_id == response.hold_id


async def test_insufficient_funds_is_refused_and_writes_nothing(world):
    tables = ("holds", "transfers", "outbox", "idempotency", "challenges")
    before = [await world.rows(world.alfa.store, t) for t in tables]
    with pytest.raises(errors.FailedPrecondition) as caught:
        await world.authorize(customer="carol", number="4000005555555555", amount=5_001)
    assert caught.value.reason == "INSUFFICIENT_FUNDS"
    assert [await world.rows(world.alfa.store, t) for t in tables] == before
    assert await world.balance(world.alfa, "carol-current", "carol") == (5_000, 5_000, 0)


async def test_funds_on_hold_cannot_be_spent_twice(world):
    await world.authorize(customer="carol", number="4000005555555555", amount=3_000)
    with pytest.raises(errors.FailedPrecondition) as caught:
        await world.authorize(customer="carol", number="4000005555555555", amount=3_000)
    assert caught.value.reason == "INSUFFICIENT_FUNDS"


async def test_a_signature_by_another_key_is_refused(world):
    with pytest.raises(errors.InvalidArgument) as caught:
        await world.authorize(signer="carol")
    assert caught.value.reason == "DUAL_SIGNATURE_INVALID"
    assert await world.rows(world.alfa.store, "holds") == 0


async def test_a_tampered_instruction_fails_the_signature(world):
    request = world.authorize_request()
    instruction = common_pb2.PaymentInstruction.FromString(request.instruction)
    instruction.amount.amount_minor = 1
    request.instruction = instruction.SerializeToString()
    with pytest.raises(errors.InvalidArgument) as caught:
        await world.alfa.issuer.authorize(request, world.gateway)
    assert caught.value.reason == "DUAL_SIGNATURE_INVALID"


@pytest.mark.parametrize(
    ("changes", "error", "reason"),
    [
        ({"bank_code": "BETAXX02"}, errors.InvalidArgument, "UNKNOWN_BANK_CODE"),
        (
            {"kind": common_pb2.INSTRUMENT_KIND_ELECTRONIC_CASH},
            errors.InvalidArgument,
            "INSTRUMENT_KIND_UNSUPPORTED",
        ),
        ({"number": "4000000000000000"}, errors.NotFound, "INSTRUMENT_NOT_FOUND"),
        (
            {"customer": "carol", "signer": "carol"},
            errors.PermissionDenied,
            "INSTRUMENT_HOLDER_MISMATCH",
        ),
        ({"currency": "USD"}, errors.InvalidArgument, "CURRENCY_MISMATCH"),
        ({"amount": 0}, errors.InvalidArgument, "FIELD_INVALID"),
    ],
)
async def test_an_instruction_the_issuer_cannot_honour_is_refused_with_a_reason(
    world, changes, error, reason
):
    with pytest.raises(error) as caught:
        await world.authorize(**changes)
    assert caught.value.reason == reason
    assert await world.rows(world.alfa.store, "holds") == 0


async def test_bytes_that_are_no_instruction_are_malformed(world):
    request = world.authorize_request()
    request.instruction = b"\xff\xff\xff"
    with pytest.raises(errors.InvalidArgument) as caught:
        await world.alfa.issuer.authorize(request, world.gateway)
    assert caught.value.reason == "INSTRUCTION_MALFORMED"


async def test_the_same_request_id_replays_the_authorization(world):
    request = world.authorize_request(amount=1_000)
    first = await world.alfa.issuer.authorize(request, world.gateway)
    again = await world.alfa.issuer.authorize(request, world.gateway)
    assert again == first
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 99_000, 1_000)


async def test_an_amount_above_the_threshold_requires_a_challenge_with_a_code_in_the_inbox(world):
    response = await world.authorize(amount=50_001)
    assert response.decision == authz.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
    assert response.challenge.issuer_bank_code == "ALFAXX01"
    codes = await world.codes()
    assert [c.challenge_id for c in codes] == [response.challenge.challenge_id]
    assert len(codes[0].code) == 6 and codes[0].code.isdigit()
    assert codes[0].amount.amount_minor == 50_001 and codes[0].merchant_name == "shop"
    hold = await world.alfa.issuer.get_hold(authz.GetHoldRequest(hold_id=response.hold_id))
    assert hold.status == authz.HOLD_STATUS_CHALLENGE_PENDING
    # The funds are held while the customer decides.
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 49_999, 50_001)


async def test_an_amount_at_the_threshold_is_approved(world):
    response = await world.authorize(amount=50_000)
    assert response.decision == authz.AUTHORIZATION_DECISION_APPROVED


async def test_the_velocity_rule_challenges_payments_beyond_the_limit(world):
    decisions = [(await world.authorize(amount=100)).decision for _ in range(4)]
    assert decisions == [authz.AUTHORIZATION_DECISION_APPROVED] * 3 + [
        authz.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
    ]
    assert len(await world.codes()) == 1


async def test_void_releases_the_hold_and_voiding_again_is_idempotent(world):
    hold_id = (await world.authorize(amount=4_000)).hold_id
    for _ in range(2):
        response = await world.alfa.issuer.void(
            authz.VoidHoldRequest(request_id=str(uuid.uuid4()), hold_id=hold_id), world.gateway
        )
        assert response.hold_status == authz.HOLD_STATUS_VOIDED
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 100_000, 0)
    events = await world.events(world.alfa.store, world.uri(Role.CUSTOMER, "alice"))
    assert [e.hold.event for e in events] == ["placed", "voided"]
    with pytest.raises(errors.FailedPrecondition) as caught:
        await world.capture(hold_id)
    assert caught.value.reason == "HOLD_NOT_CAPTURABLE"
    await world.assert_balanced()


async def test_a_captured_hold_cannot_be_voided(world):
    hold_id = (await world.authorize(amount=1_000)).hold_id
    await world.capture(hold_id)
    with pytest.raises(errors.FailedPrecondition) as caught:
        await world.alfa.issuer.void(
            authz.VoidHoldRequest(request_id="v1", hold_id=hold_id), world.gateway
        )
    assert caught.value.reason == "HOLD_NOT_VOIDABLE"


async def test_an_unknown_hold_is_not_found(world):
    with pytest.raises(errors.NotFound) as caught:
        await world.capture("no-such-hold")
    assert caught.value.reason == "HOLD_NOT_FOUND"
    with pytest.raises(errors.NotFound):
        await world.alfa.issuer.get_hold(authz.GetHoldRequest(transaction_id="nope"))


async def test_hold_expiry_releases_the_funds_exactly_once(world):
    hold_id = (await world.authorize(amount=7_000)).hold_id
    assert await world.alfa.issuer.sweep(world.later(60)) == 0
    assert await world.alfa.issuer.sweep(world.later(3_601)) == 1
    assert await world.alfa.issuer.sweep(world.later(7_200)) == 0
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 100_000, 0)
    hold = await world.alfa.issuer.get_hold(authz.GetHoldRequest(hold_id=hold_id))
    assert hold.status == authz.HOLD_STATUS_EXPIRED
    events = await world.events(world.alfa.store, world.uri(Role.CUSTOMER, "alice"))
    assert [e.hold.event for e in events] == ["placed", "expired"]
    with pytest.raises(errors.FailedPrecondition) as caught:
        await world.capture(hold_id)
    assert caught.value.reason == "HOLD_EXPIRED"
    await world.assert_balanced()


async def test_hold_expiry_ends_a_pending_challenge_and_wipes_its_secret(world):
    response = await world.authorize(amount=60_000)
    assert await world.alfa.issuer.sweep(world.later(301)) == 0
    assert await world.alfa.issuer.sweep(world.later(3_601)) == 1
    secrets = await world.alfa.store.read(
        lambda conn: conn.execute("SELECT secret, status FROM challenges").fetchall()
    )
    assert secrets == [(None, "expired")]
    hold = await world.alfa.issuer.get_hold(authz.GetHoldRequest(hold_id=response.hold_id))
    assert hold.status == authz.HOLD_STATUS_EXPIRED
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 100_000, 0)
    with pytest.raises(errors.FailedPrecondition) as caught:
        await world.capture(response.hold_id)
    assert caught.value.reason == "HOLD_EXPIRED"
