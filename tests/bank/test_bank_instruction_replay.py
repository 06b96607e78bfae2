"""One signed payment instruction is held at most once by its issuer, over mTLS.

The gateway's certificate may call IssuerService directly. The customer's dual
signature covers one instruction (with its nonce), not a request_id or a
transaction_id, so the issuer itself refuses the same instruction under a second
request: ALREADY_EXISTS, INSTRUCTION_REPLAYED, with nothing written. A retry of
the same request_id still replays the first answer. Each case ends with the
network audit (``paynet audit``) passing with the opening money intact.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from interbank.v1 import account_pb2, account_pb2_grpc
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import authorization_pb2_grpc as authz_grpc

from ops.audit import audit_network
from payment import errors
from payment.batching import from_entry_error

CAROL_CARD = "4000005555555555"
REPLAYED = (grpc.StatusCode.ALREADY_EXISTS, "INSTRUCTION_REPLAYED")


def issuer(served: dict[str, Any]) -> authz_grpc.IssuerServiceStub:
    """alfa's IssuerService, called with the gateway's certificate."""
    return authz_grpc.IssuerServiceStub(served["channel"]("gateway", "alfa"))


def under_new_ids(request: authz.AuthorizeHoldRequest) -> authz.AuthorizeHoldRequest:
    """The same signed instruction sent as another request for another transaction."""
    again = authz.AuthorizeHoldRequest()
    again.CopyFrom(request)
    again.request_id = str(uuid.uuid4())
    again.transaction_id = str(uuid.uuid4())
    return again


async def refusal(call: Any) -> tuple[grpc.StatusCode, str]:
    """The status code and ErrorInfo reason of a call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code(), errors.error_info(caught.value).reason


def outcome(result: authz.AuthorizeHoldResult) -> tuple[grpc.StatusCode, str] | str:
    """A batch entry's error as (code, reason), or its decision's name."""
    if result.WhichOneof("outcome") == "report":
        return authz.AuthorizationDecision.Name(result.report.decision)
    error = from_entry_error(result.error)
    return error.code, error.reason


async def balance(served: dict[str, Any], holder: str) -> tuple[int, int, int]:
    """(booked, available, held) of a holder's account at alfa, asked as the holder."""
    stub = account_pb2_grpc.AccountServiceStub(served["channel"](holder, "alfa"))
    reply = await stub.GetBalance(
        account_pb2.GetBalanceRequest(account_id=f"{holder}-current"), timeout=10
    )
    return reply.booked.amount_minor, reply.available.amount_minor, reply.held.amount_minor


async def no_hold_for(served: dict[str, Any], request: authz.AuthorizeHoldRequest) -> None:
    """The issuer has no hold for the request's transaction."""
    found = issuer(served).GetHold(
        authz.GetHoldRequest(transaction_id=request.transaction_id), timeout=10
    )
    assert (await refusal(found))[0] == grpc.StatusCode.NOT_FOUND


async def assert_audit_passes(served: dict[str, Any]) -> None:
    report = await audit_network(served["network"], settle_seconds=1.0)
    assert report.ok, report.to_json()
    assert report.in_flight == 0


async def test_a_sale_replayed_under_another_request_id_is_refused_and_debits_once(
    served, signed_authorization
):
    sale = signed_authorization(served["pki"], amount=2_000)
    sale.capture = True
    first = await issuer(served).AuthorizeHold(sale, timeout=10)
    assert first.decision == authz.AUTHORIZATION_DECISION_APPROVED
    assert first.capture.settlement_state == authz.SETTLEMENT_STATE_SETTLED
    after_sale = await balance(served, "alice")
    assert after_sale == (98_000, 98_000, 0)

    replay = under_new_ids(sale)
    assert await refusal(issuer(served).AuthorizeHold(replay, timeout=10)) == REPLAYED
    batch = authz.AuthorizeHoldsRequest(entries=[under_new_ids(sale)])
    (result,) = (await issuer(served).AuthorizeHolds(batch, timeout=10)).results
    assert outcome(result) == REPLAYED

    assert await balance(served, "alice") == after_sale
    await no_hold_for(served, replay)
    await no_hold_for(served, batch.entries[0])
    await assert_audit_passes(served)


async def test_one_instruction_twice_in_one_batch_is_held_once(served, signed_authorization):
    request = signed_authorization(served["pki"], amount=3_000)
    batch = authz.AuthorizeHoldsRequest(entries=[request, under_new_ids(request)])
    results = (await issuer(served).AuthorizeHolds(batch, timeout=10)).results
    assert sorted(map(str, map(outcome, results))) == sorted(
        [str(REPLAYED), "AUTHORIZATION_DECISION_APPROVED"]
    )
    assert await balance(served, "alice") == (100_000, 97_000, 3_000)
    refused = next(i for i, r in enumerate(results) if r.WhichOneof("outcome") == "error")
    await no_hold_for(served, batch.entries[refused])
    await assert_audit_passes(served)


async def test_a_retry_of_the_same_request_replays_its_answer_alone_or_in_a_batch(
    served, signed_authorization
):
    request = signed_authorization(served["pki"], amount=1_500)
    first = await issuer(served).AuthorizeHold(request, timeout=10)
    assert await issuer(served).AuthorizeHold(request, timeout=10) == first
    batch = authz.AuthorizeHoldsRequest(entries=[request, request])
    results = (await issuer(served).AuthorizeHolds(batch, timeout=10)).results
    assert [r.report for r in results] == [first, first]
    assert await refusal(issuer(served).AuthorizeHold(under_new_ids(request))) == REPLAYED
    assert await balance(served, "alice") == (100_000, 98_500, 1_500)
    await assert_audit_passes(served)


async def test_another_request_for_the_same_transaction_is_still_told_to_ask_get_hold(
    served, signed_authorization
):
    """The gateway resolves IDEMPOTENCY_KEY_REUSED with GetHold (a retry whose first answer
    is past retention): the transaction's own instruction is not called a replay."""
    request = signed_authorization(served["pki"], amount=1_000)
    first = await issuer(served).AuthorizeHold(request, timeout=10)
    again = authz.AuthorizeHoldRequest()
    again.CopyFrom(request)
    again.request_id = str(uuid.uuid4())
    assert await refusal(issuer(served).AuthorizeHold(again, timeout=10)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "IDEMPOTENCY_KEY_REUSED",
    )
    hold = await issuer(served).GetHold(
        authz.GetHoldRequest(transaction_id=request.transaction_id), timeout=10
    )
    assert hold.hold_id == first.hold_id
    assert await balance(served, "alice") == (100_000, 99_000, 1_000)


async def test_a_voided_holds_instruction_stays_spent(served, signed_authorization):
    request = signed_authorization(served["pki"], amount=1_000)
    held = await issuer(served).AuthorizeHold(request, timeout=10)
    await issuer(served).VoidHold(
        authz.VoidHoldRequest(request_id=str(uuid.uuid4()), hold_id=held.hold_id), timeout=10
    )
    replay = under_new_ids(request)
    replay.capture = True
    assert await refusal(issuer(served).AuthorizeHold(replay, timeout=10)) == REPLAYED
    assert await balance(served, "alice") == (100_000, 100_000, 0)
    await assert_audit_passes(served)


async def test_an_instruction_refused_for_funds_is_not_spent_and_is_held_once_funds_are_free(
    served, signed_authorization
):
    """A refusal places nothing, so it spends nothing: the instruction can still pay once."""
    carol = {"customer": "carol", "number": CAROL_CARD}
    earlier = await issuer(served).AuthorizeHold(
        signed_authorization(served["pki"], amount=3_000, **carol), timeout=10
    )
    request = signed_authorization(served["pki"], amount=3_000, **carol)
    assert await refusal(issuer(served).AuthorizeHold(request, timeout=10)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_FUNDS",
    )
    await issuer(served).VoidHold(
        authz.VoidHoldRequest(request_id=str(uuid.uuid4()), hold_id=earlier.hold_id), timeout=10
    )
    presented_again = under_new_ids(request)
    held = await issuer(served).AuthorizeHold(presented_again, timeout=10)
    assert held.decision == authz.AUTHORIZATION_DECISION_APPROVED
    assert await refusal(issuer(served).AuthorizeHold(under_new_ids(request))) == REPLAYED
    assert await balance(served, "carol") == (5_000, 2_000, 3_000)
    await assert_audit_passes(served)
