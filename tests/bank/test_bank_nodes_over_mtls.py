"""The bank and settlement nodes served for real: mTLS sockets, interceptors, app wiring."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from interbank.v1 import account_pb2, account_pb2_grpc, notification_pb2_grpc
from interbank.v1 import authorization_pb2 as authz
from interbank.v1 import authorization_pb2_grpc as authz_grpc

from payment import errors
from payment.config import parse_network
from payment.devnet import free_ports
from payment.notifications import follow
from payment.pki import init_pki
from payment.server import create_server, load_app
from payment.tls import NodeIdentity, TlsIdentity, secure_channel


@pytest.fixture
async def served(tmp_path, network_document) -> AsyncIterator[dict[str, Any]]:
    raw = network_document(tmp_path)
    for node, port in zip(raw["nodes"], free_ports(len(raw["nodes"])), strict=True):
        node["address"] = f"127.0.0.1:{port}"
    network = parse_network(raw, base_dir=tmp_path)
    pki = init_pki(network, tmp_path / "pki")
    running = []
    for name in ("settlement", "alfa", "beta"):
        node = network.node(name)
        tls = NodeIdentity.load(pki, name)
        app = load_app(network, node, tls)
        server, _, _ = await create_server(network, app, tls, node.address)
        await app.start()
        await server.start()
        running.append((server, app))
    channels: dict[str, grpc.aio.Channel] = {}

    def channel(as_name: str, to_node: str) -> grpc.aio.Channel:
        key = f"{as_name}->{to_node}"
        if key not in channels:
            channels[key] = secure_channel(
                network.node(to_node).address, TlsIdentity.load(pki, as_name)
            )
        return channels[key]

    yield {"network": network, "pki": pki, "channel": channel}
    for ch in channels.values():
        await ch.close()
    for server, app in reversed(running):
        await server.stop(None)
        await app.close()


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
    async for event in follow(inbox):
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
