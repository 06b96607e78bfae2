"""Step-up challenges: the customer answers the one-time code to its bank."""

from __future__ import annotations

import uuid

import pytest
from interbank.v1 import authorization_pb2 as authz

from payment import errors
from payment.config import Role


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def answer(world, challenge_id, code, *, customer="alice", request_id=None, now=None):
    request = authz.AnswerChallengeRequest(
        request_id=request_id or str(uuid.uuid4()), challenge_id=challenge_id, code=code
    )
    return await world.alfa.challenges.answer(request, world.uri(Role.CUSTOMER, customer), now=now)


async def test_the_correct_code_authorizes_the_hold_and_wipes_the_secret(world):
    response = await world.authorize(amount=60_000)
    (code,) = await world.codes()
    answered = await answer(world, code.challenge_id, code.code, request_id="a1")
    assert answered.hold_status == authz.HOLD_STATUS_AUTHORIZED
    hold = await world.alfa.issuer.get_hold(authz.GetHoldRequest(hold_id=response.hold_id))
    assert hold.status == authz.HOLD_STATUS_AUTHORIZED
    secrets = await world.alfa.store.read(
        lambda conn: conn.execute("SELECT secret, status FROM challenges").fetchall()
    )
    assert secrets == [(None, "passed")]
    # The same request replays the success; the hold can now be captured.
    assert await answer(world, code.challenge_id, code.code, request_id="a1") == answered
    captured = await world.capture(response.hold_id)
    assert captured.hold_status == authz.HOLD_STATUS_CAPTURED


async def test_capture_before_the_challenge_is_answered_is_refused(world):
    response = await world.authorize(amount=60_000)
    with pytest.raises(errors.FailedPrecondition) as caught:
        await world.capture(response.hold_id)
    assert caught.value.reason == "CHALLENGE_NOT_ANSWERED"


async def test_a_wrong_code_counts_an_attempt_and_says_how_many_are_left(world):
    await world.authorize(amount=60_000)
    (code,) = await world.codes()
    with pytest.raises(errors.InvalidArgument) as caught:
        await answer(world, code.challenge_id, wrong(code.code))
    assert caught.value.reason == "CHALLENGE_CODE_WRONG"
    assert caught.value.metadata == {"attempts_left": "2"}
    attempts = await world.alfa.store.read(
        lambda conn: conn.execute("SELECT attempts FROM challenges").fetchone()[0]
    )
    assert attempts == 1
    # The right code still works after a wrong one.
    answered = await answer(world, code.challenge_id, code.code)
    assert answered.hold_status == authz.HOLD_STATUS_AUTHORIZED


async def test_three_wrong_codes_lock_and_release_the_hold(world):
    response = await world.authorize(amount=60_000)
    (code,) = await world.codes()
    for _ in range(2):
        with pytest.raises(errors.InvalidArgument):
            await answer(world, code.challenge_id, wrong(code.code))
    with pytest.raises(errors.FailedPrecondition) as caught:
        await answer(world, code.challenge_id, wrong(code.code))
    assert caught.value.reason == "CHALLENGE_LOCKED"
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 100_000, 0)
    hold = await world.alfa.issuer.get_hold(authz.GetHoldRequest(hold_id=response.hold_id))
    assert hold.status == authz.HOLD_STATUS_VOIDED
    events = await world.events(world.alfa.store, world.uri(Role.CUSTOMER, "alice"))
    assert [e.hold.event for e in events if e.WhichOneof("event") == "hold"] == [
        "placed",
        "declined",
    ]
    # Locked stays locked, even for the right code.
    with pytest.raises(errors.FailedPrecondition) as caught:
        await answer(world, code.challenge_id, code.code)
    assert caught.value.reason == "CHALLENGE_LOCKED"
    secrets = await world.alfa.store.read(
        lambda conn: conn.execute("SELECT secret, status FROM challenges").fetchall()
    )
    assert secrets == [(None, "locked")]
    # Capturing the declined payment says why it was declined.
    with pytest.raises(errors.FailedPrecondition) as caught:
        await world.capture(response.hold_id)
    assert caught.value.reason == "CHALLENGE_LOCKED"
    await world.assert_balanced()


async def test_an_expired_challenge_declines_the_payment(world):
    response = await world.authorize(amount=60_000)
    (code,) = await world.codes()
    with pytest.raises(errors.FailedPrecondition) as caught:
        await answer(world, code.challenge_id, code.code, now=world.later(301))
    assert caught.value.reason == "CHALLENGE_EXPIRED"
    hold = await world.alfa.issuer.get_hold(authz.GetHoldRequest(hold_id=response.hold_id))
    assert hold.status == authz.HOLD_STATUS_VOIDED
    assert await world.balance(world.alfa, "alice-current", "alice") == (100_000, 100_000, 0)
    with pytest.raises(errors.FailedPrecondition) as caught:
        await answer(world, code.challenge_id, code.code)
    assert caught.value.reason == "CHALLENGE_EXPIRED"
    with pytest.raises(errors.FailedPrecondition) as caught:
        await world.capture(response.hold_id)
    assert caught.value.reason == "CHALLENGE_EXPIRED"


async def test_someone_elses_challenge_is_not_found(world):
    await world.authorize(amount=60_000)
    (code,) = await world.codes()
    with pytest.raises(errors.NotFound) as caught:
        await answer(world, code.challenge_id, code.code, customer="carol")
    assert caught.value.reason == "CHALLENGE_NOT_FOUND"
    with pytest.raises(errors.NotFound):
        await answer(world, "no-such-challenge", "123456")


async def test_a_voided_hold_no_longer_accepts_its_code(world):
    response = await world.authorize(amount=60_000)
    (code,) = await world.codes()
    await world.alfa.issuer.void(
        authz.VoidHoldRequest(request_id="v", hold_id=response.hold_id), world.gateway
    )
    with pytest.raises(errors.FailedPrecondition) as caught:
        await answer(world, code.challenge_id, code.code)
    assert caught.value.reason == "CHALLENGE_EXPIRED"
