"""An authorization whose outcome is unknown is retried with the same key, then resolved."""

from __future__ import annotations

import grpc
import pytest
from interbank.v1 import authorization_pb2

from gateway import authorization
from gateway.store import TransactionState
from payment import errors


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(authorization, "RETRY_BASE_DELAY_S", 0.0)


def names(issuer) -> list[str]:
    return [call[0] for call in issuer.calls]


async def test_a_timed_out_authorization_is_retried_with_the_same_key_and_holds_once(
    payment_gateway, issuer, customer
) -> None:
    issuer.unknown_outcomes = 1
    response = await payment_gateway.authorize(customer.request(), "shop")
    assert response.decision == authorization_pb2.AUTHORIZATION_DECISION_APPROVED
    assert names(issuer) == ["AuthorizeHolds", "AuthorizeHolds"]
    first, second = issuer.calls[0][1], issuer.calls[1][1]
    assert first == second  # same request_id and content: the issuer replays, never re-holds
    record = await payment_gateway.transaction(response.transaction_id, "shop")
    assert record.state is TransactionState.HELD


async def test_a_hold_found_after_the_retries_run_out_is_voided_not_guessed(
    payment_gateway, issuer, customer
) -> None:
    issuer.unknown_outcomes = authorization.AUTHORIZE_ATTEMPTS
    issuer.found_hold = authorization_pb2.HOLD_STATUS_AUTHORIZED
    request = customer.request()
    with pytest.raises(errors.PaynetError) as raised:
        await payment_gateway.authorize(request, "shop")
    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert raised.value.reason == "PEER_TIMEOUT"
    assert names(issuer) == ["AuthorizeHolds"] * 3 + ["GetHold", "VoidHold"]
    get_hold = issuer.calls[3][1]
    assert get_hold.transaction_id == issuer.calls[0][1].transaction_id
    assert issuer.calls[4][1].hold_id == "hold-late"
    record = await payment_gateway.transaction(get_hold.transaction_id, "shop")
    assert (record.state, record.failure_reason) == (TransactionState.FAILED, "PEER_TIMEOUT")


async def test_no_hold_found_after_the_retries_means_nothing_to_release(
    payment_gateway, issuer, customer
) -> None:
    issuer.unknown_outcomes = authorization.AUTHORIZE_ATTEMPTS
    with pytest.raises(errors.PaynetError):
        await payment_gateway.authorize(customer.request(), "shop")
    assert names(issuer) == ["AuthorizeHolds"] * 3 + ["GetHold"]


async def test_a_retried_merchant_request_reuses_its_transaction(
    payment_gateway, issuer, customer
) -> None:
    request = customer.request()
    first = await payment_gateway.authorize(request, "shop")
    again = await payment_gateway.authorize(request, "shop")
    assert again.transaction_id == first.transaction_id
    keys = {call[1].request_id for call in issuer.calls if call[0] == "AuthorizeHolds"}
    assert keys == {f"authorize:{first.transaction_id}"}


def unavailable() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details="down"
    )


@pytest.mark.parametrize("action", ["capture", "void"])
async def test_a_capture_or_void_whose_answer_was_lost_is_finished_on_resume(
    payment_gateway, issuer, customer, action
) -> None:
    authorized = await payment_gateway.authorize(customer.request(), "shop")
    issuer.failure = unavailable()  # the issuer acts, or not: the gateway cannot know
    with pytest.raises(errors.PaynetError) as raised:
        if action == "capture":
            await payment_gateway.capture(authorized.transaction_id, "shop")
        else:
            await payment_gateway.void(authorized.transaction_id, "shop")
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    record = await payment_gateway.transaction(authorized.transaction_id, "shop")
    assert record.hold_status == authorization_pb2.HOLD_STATUS_AUTHORIZED

    # Still unreachable: the call stays pending, nothing is guessed.
    assert await payment_gateway.resume_pending_calls() == 0
    issuer.failure = None
    assert await payment_gateway.resume_pending_calls() == 1
    record = await payment_gateway.transaction(authorized.transaction_id, "shop")
    if action == "capture":
        assert (record.hold_status, record.instruction_id) == (
            authorization_pb2.HOLD_STATUS_CAPTURED,
            "instr-1",
        )
    else:
        assert record.hold_status == authorization_pb2.HOLD_STATUS_VOIDED
    method = "CaptureHold" if action == "capture" else "VoidHold"
    sent = [call[1] for call in issuer.calls if call[0] == method]
    assert len(sent) == 3 and sent[0] == sent[1] == sent[2]  # the same request each time
    assert await payment_gateway.resume_pending_calls() == 0  # finished: nothing left


async def test_a_resumed_call_the_issuer_refuses_records_the_hold_as_the_issuer_has_it(
    payment_gateway, issuer, customer
) -> None:
    authorized = await payment_gateway.authorize(customer.request(), "shop")
    issuer.failure = unavailable()
    with pytest.raises(errors.PaynetError):
        await payment_gateway.capture(authorized.transaction_id, "shop")
    issuer.fail_with(grpc.StatusCode.FAILED_PRECONDITION, "HOLD_EXPIRED")
    issuer.found_hold = authorization_pb2.HOLD_STATUS_EXPIRED
    assert await payment_gateway.resume_pending_calls() == 1
    record = await payment_gateway.transaction(authorized.transaction_id, "shop")
    assert record.hold_status == authorization_pb2.HOLD_STATUS_EXPIRED
    assert await payment_gateway.resume_pending_calls() == 0


async def test_a_refund_first_finishes_a_capture_whose_answer_was_lost(
    payment_gateway, issuer, customer
) -> None:
    authorized = await payment_gateway.authorize(customer.request(), "shop")
    issuer.failure = unavailable()
    with pytest.raises(errors.PaynetError):
        await payment_gateway.capture(authorized.transaction_id, "shop")
    issuer.failure = None
    reply = await payment_gateway.refund(
        authorization_pb2.RefundPaymentRequest(
            request_id="r1",
            transaction_id=authorized.transaction_id,
            amount={"amount_minor": 4500, "currency_code": "EUR"},
        ),
        "shop",
    )
    assert reply.refunded_total.amount_minor == 4500
    assert names(issuer)[-2:] == ["CaptureHold", "ReturnPayment"]
    assert issuer.calls[-1][1].original_instruction_id == "instr-1"
    assert await payment_gateway.resume_pending_calls() == 0


async def test_a_sold_hold_found_after_the_retries_is_not_voided_and_the_retry_records_it(
    payment_gateway, issuer, customer
) -> None:
    issuer.unknown_outcomes = authorization.AUTHORIZE_ATTEMPTS
    issuer.found_hold = authorization_pb2.HOLD_STATUS_CAPTURED
    request = customer.request()
    request.capture = True
    with pytest.raises(errors.PaynetError) as raised:
        await payment_gateway.authorize(request, "shop")
    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    # The money moved: nothing is voided, and the outcome stays unknown to the merchant.
    assert names(issuer) == ["AuthorizeHolds"] * 3 + ["GetHold"]

    # The merchant's retry of the same request replays the sale, and the record has it.
    again = await payment_gateway.authorize(request, "shop")
    assert again.capture.instruction_id == "instr-sale"
    record = await payment_gateway.transaction(again.transaction_id, "shop")
    assert record.state is TransactionState.HELD
    assert record.hold_status == authorization_pb2.HOLD_STATUS_CAPTURED
