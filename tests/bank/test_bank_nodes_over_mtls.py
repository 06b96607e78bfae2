"""The bank and settlement nodes served for real: mTLS sockets, interceptors, app wiring."""

from __future__ import annotations

import contextlib
import uuid

import grpc
import pytest
from interbank.v1 import account_pb2, account_pb2_grpc, notification_pb2_grpc
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import authorization_pb2_grpc as authz_grpc

from payment import errors
from payment.notifications import follow


async def test_a_purchase_is_authorized_captured_and_credited_over_mtls(
    served, signed_authorization
):
    issuer = authz_grpc.IssuerServiceStub(served["channel"]("gateway", "alfa"))
    request = signed_authorization(served["pki"], amount=4_500)
    authorized = await issuer.AuthorizeHold(request, timeout=5)
    assert authorized.decision == authz.AUTHORIZATION_DECISION_APPROVED
    captured = await issuer.CaptureHold(
        authz.CaptureHoldRequest(request_id=str(uuid.uuid4()), hold_id=authorized.hold_id),
        timeout=10,
    )
    assert captured.settlement_state == authz.SETTLEMENT_STATE_SETTLED
    shop = account_pb2_grpc.AccountServiceStub(served["channel"]("shop", "beta"))
    balance = await shop.GetBalance(account_pb2.GetBalanceRequest(account_id="shop-sales"))
    assert balance.booked.amount_minor == 4_500
    alice = account_pb2_grpc.AccountServiceStub(served["channel"]("alice", "alfa"))
    mine = await alice.GetBalance(account_pb2.GetBalanceRequest(account_id="alice-current"))
    assert mine.booked.amount_minor == 95_500


async def test_only_the_holder_reads_a_balance_and_refunds_go_through_the_acquirer(served):
    bob = account_pb2_grpc.AccountServiceStub(served["channel"]("bob", "beta"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await bob.GetBalance(account_pb2.GetBalanceRequest(account_id="shop-sales"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert errors.error_info(caught.value).reason == "ACCOUNT_NOT_HELD_BY_CALLER"
    issuer = authz_grpc.IssuerServiceStub(served["channel"]("gateway", "alfa"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await issuer.RefundCapture(authz.RefundCaptureRequest(request_id="r"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert errors.error_info(caught.value).reason == "REFUND_VIA_ACQUIRER"
    shop_issuer = authz_grpc.IssuerServiceStub(served["channel"]("shop", "alfa"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop_issuer.GetHold(authz.GetHoldRequest(hold_id="x"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_challenged_customer_gets_the_code_in_its_inbox_and_answers_it(
    served, signed_authorization
):
    issuer = authz_grpc.IssuerServiceStub(served["channel"]("gateway", "alfa"))
    authorized = await issuer.AuthorizeHold(
        signed_authorization(served["pki"], amount=60_000), timeout=5
    )
    assert authorized.decision == authz.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
    inbox = notification_pb2_grpc.NotificationServiceStub(served["channel"]("alice", "alfa"))
    code = None
    async with contextlib.aclosing(follow(inbox)) as events:
        async for event in events:
            if event.WhichOneof("event") == "one_time_code":
                code = event.one_time_code
                break
    assert code is not None and code.challenge_id == authorized.challenge.challenge_id
    answer = authz_grpc.ChallengeServiceStub(served["channel"]("alice", "alfa"))
    answered = await answer.AnswerChallenge(
        authz.AnswerChallengeRequest(
            request_id="answer-1", challenge_id=code.challenge_id, code=code.code
        ),
        timeout=5,
    )
    assert answered.hold_status == authz.HOLD_STATUS_AUTHORIZED
