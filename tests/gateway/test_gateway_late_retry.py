"""A retry is answered from the record: a payment the issuer completed is never refused
for its age, and an authorization a crash interrupted is resolved by asking the issuer.

The gateway is "killed" by cancelling its authorization while the issuer holds the
answer: nothing after that point is written, as after a kill -9. Its clock (the one
it was given) is then moved ahead, as a node whose clock is ahead would see it.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc
import pytest
from interbank.v1 import authorization_pb2

from gateway import authorization
from gateway.authorization import PaymentGateway
from gateway.store import TransactionState
from payment import clock, errors, ids
from payment.config import LimitsConfig
from tests.gateway.conftest import GatewayClock

WINDOW_S = LimitsConfig().instruction_window_seconds  # the test network keeps the default


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(authorization, "RETRY_BASE_DELAY_S", 0.0)


def gateway_clock_ahead(gateway_clock: GatewayClock, seconds: float) -> None:
    """The gateway's clock runs seconds ahead of everyone else's."""
    gateway_clock.ahead_s = seconds


async def killed_while_the_issuer_answers(gateway: PaymentGateway, issuer, request) -> str:
    """Authorize until the issuer has the request, then stop the gateway dead; the tx id."""
    issuer.gate = asyncio.Event()
    asked = len(issuer.calls)
    attempt = asyncio.ensure_future(gateway.authorize(request, "shop"))
    while len(issuer.calls) == asked:
        await asyncio.sleep(0.001)
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    issuer.gate.set()  # the issuer did answer; nobody was left to hear it
    await asyncio.sleep(0)
    issuer.gate = None
    return ids.transaction_id("shop", request.request_id)


def restarted(store, network, gateway_key, issuer, gateway_clock) -> PaymentGateway:
    """A new gateway process over the same store, on the same clock."""
    return PaymentGateway(
        store, network, gateway_key, issuer.lookup, issuer.lookup, clock=gateway_clock
    )


async def test_a_sale_retried_after_the_window_by_a_gateway_whose_clock_is_ahead_is_answered(
    payment_gateway, issuer, customer, store, network, gateway_key, gateway_clock
) -> None:
    # The finding's node: its clock 290 s ahead, so the instruction is nearly out of window.
    gateway_clock_ahead(gateway_clock, WINDOW_S - 10)
    request = customer.request()
    request.capture = True
    tx_id = await killed_while_the_issuer_answers(payment_gateway, issuer, request)
    record = await payment_gateway.transaction(tx_id, "shop")
    assert record.state is TransactionState.AUTHORIZING  # the sale's answer was never recorded

    # The merchant's retry comes 15 s later: past the window by the gateway's clock.
    gateway_clock_ahead(gateway_clock, WINDOW_S + 5)
    again = await restarted(store, network, gateway_key, issuer, gateway_clock).authorize(
        request, "shop"
    )

    assert again.transaction_id == tx_id
    assert again.decision == authorization_pb2.AUTHORIZATION_DECISION_APPROVED
    assert again.capture.instruction_id == "instr-sale"
    record = await payment_gateway.transaction(tx_id, "shop")
    assert (record.state, record.hold_status, record.failure_reason) == (
        TransactionState.HELD,
        authorization_pb2.HOLD_STATUS_CAPTURED,
        "",
    )
    keys = {call[1].request_id for call in issuer.calls if call[0] == "AuthorizeHolds"}
    assert keys == {f"authorize:{tx_id}"}  # the issuer replays its answer: one hold


async def test_a_challenged_authorization_retried_after_the_window_gets_its_challenge(
    payment_gateway, issuer, customer, store, network, gateway_key, gateway_clock
) -> None:
    issuer.decision = authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
    request = customer.request(created_at=clock.now() - dt.timedelta(seconds=WINDOW_S - 5))
    request.capture = True
    tx_id = await killed_while_the_issuer_answers(payment_gateway, issuer, request)

    gateway_clock_ahead(gateway_clock, 60)  # a minute later: the instruction is 355 s old
    again = await restarted(store, network, gateway_key, issuer, gateway_clock).authorize(
        request, "shop"
    )

    assert again.decision == authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
    assert again.challenge.challenge_id == "challenge-1"
    record = await payment_gateway.transaction(tx_id, "shop")
    assert (record.state, record.hold_status) == (
        TransactionState.HELD,
        authorization_pb2.HOLD_STATUS_CHALLENGE_PENDING,
    )


async def test_a_recorded_request_id_reused_for_another_payment_is_refused_and_changes_nothing(
    payment_gateway, issuer, customer
) -> None:
    first = customer.request()
    await killed_while_the_issuer_answers(payment_gateway, issuer, first)
    other = customer.request()
    other.request_id = first.request_id
    with pytest.raises(errors.PaynetError) as raised:
        await payment_gateway.authorize(other, "shop")
    assert (raised.value.code, raised.value.reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "IDEMPOTENCY_KEY_REUSED",
    )
    record = await payment_gateway.transaction(ids.transaction_id("shop", first.request_id), "shop")
    assert (record.order_id, record.state) == (first.order_id, TransactionState.AUTHORIZING)
    assert len(issuer.calls) == 1  # the other payment never reached the issuer


@pytest.mark.parametrize(
    ("found", "instruction_id"),
    [
        pytest.param(authorization_pb2.HOLD_STATUS_CAPTURED, "instr-1", id="sold"),
        pytest.param(authorization_pb2.HOLD_STATUS_AUTHORIZED, "", id="authorized"),
        pytest.param(authorization_pb2.HOLD_STATUS_CHALLENGE_PENDING, "", id="challenged"),
        pytest.param(authorization_pb2.HOLD_STATUS_EXPIRED, "", id="expired"),
    ],
)
async def test_an_authorization_a_crash_interrupted_is_recorded_as_the_issuer_has_its_hold(
    payment_gateway,
    issuer,
    customer,
    store,
    network,
    gateway_key,
    gateway_clock,
    found,
    instruction_id,
) -> None:
    request = customer.request()
    request.capture = True
    tx_id = await killed_while_the_issuer_answers(payment_gateway, issuer, request)
    issuer.found_hold = found

    # On start, the restarted gateway finishes what the crash interrupted, without guessing.
    gateway = restarted(store, network, gateway_key, issuer, gateway_clock)
    assert await gateway.resume_pending_calls() == 1

    record = await gateway.transaction(tx_id, "shop")
    assert (record.state, record.hold_status, record.hold_id, record.instruction_id) == (
        TransactionState.HELD,
        found,
        "hold-late",
        instruction_id,
    )
    assert record.failure_reason == ""
    assert "VoidHold" not in [call[0] for call in issuer.calls]  # the merchant decides
    assert await gateway.resume_pending_calls() == 0


async def test_an_interrupted_authorization_with_no_hold_fails_only_once_no_attempt_can_land(
    payment_gateway, issuer, customer, store, network, gateway_key, gateway_clock
) -> None:
    tx_id = await killed_while_the_issuer_answers(payment_gateway, issuer, customer.request())
    gateway = restarted(store, network, gateway_key, issuer, gateway_clock)

    # Just after the crash, an attempt may still be reaching the issuer: nothing is decided.
    assert await gateway.resume_pending_calls() == 0
    record = await gateway.transaction(tx_id, "shop")
    assert record.state is TransactionState.AUTHORIZING

    gateway_clock_ahead(gateway_clock, authorization.NO_HOLD_AFTER_S + 1)
    assert await gateway.resume_pending_calls() == 1
    record = await gateway.transaction(tx_id, "shop")
    assert (record.state, record.failure_reason) == (TransactionState.FAILED, "HOLD_NOT_FOUND")


async def test_a_sale_the_issuer_captured_while_its_answer_was_lost_is_not_recorded_as_failed(
    payment_gateway, issuer, customer
) -> None:
    issuer.unknown_outcomes = authorization.AUTHORIZE_ATTEMPTS
    issuer.found_hold = authorization_pb2.HOLD_STATUS_CAPTURED
    request = customer.request()
    request.capture = True
    with pytest.raises(errors.PaynetError) as raised:
        await payment_gateway.authorize(request, "shop")
    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED  # unknown to the merchant

    record = await payment_gateway.transaction(
        ids.transaction_id("shop", request.request_id), "shop"
    )
    # The money moved: a failure here would let the merchant reopen a paid order.
    assert (record.state, record.hold_status, record.failure_reason) == (
        TransactionState.HELD,
        authorization_pb2.HOLD_STATUS_CAPTURED,
        "",
    )


async def test_an_authorization_whose_hold_cannot_be_looked_up_stays_unknown_not_failed(
    payment_gateway, issuer, customer
) -> None:
    issuer.unknown_outcomes = authorization.AUTHORIZE_ATTEMPTS

    async def unreachable(request, timeout):
        issuer.calls.append(("GetHold", request, None))
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details="down"
        )

    issuer.GetHold = unreachable
    request = customer.request()
    with pytest.raises(errors.PaynetError):
        await payment_gateway.authorize(request, "shop")
    record = await payment_gateway.transaction(
        ids.transaction_id("shop", request.request_id), "shop"
    )
    assert (record.state, record.failure_reason) == (TransactionState.AUTHORIZING, "")


async def test_an_open_hold_that_cannot_be_voided_after_an_unknown_outcome_is_recorded_as_found(
    payment_gateway, issuer, customer
) -> None:
    issuer.unknown_outcomes = authorization.AUTHORIZE_ATTEMPTS
    issuer.found_hold = authorization_pb2.HOLD_STATUS_AUTHORIZED
    issuer.failure = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details="down"
    )  # the void does not go through
    request = customer.request()
    with pytest.raises(errors.PaynetError):
        await payment_gateway.authorize(request, "shop")
    assert [call[0] for call in issuer.calls][-2:] == ["GetHold", "VoidHold"]
    record = await payment_gateway.transaction(
        ids.transaction_id("shop", request.request_id), "shop"
    )
    # Not failed: the merchant, which heard no answer, finds the hold and captures or voids it.
    assert (record.state, record.hold_status, record.failure_reason) == (
        TransactionState.HELD,
        authorization_pb2.HOLD_STATUS_AUTHORIZED,
        "",
    )
