"""Limits a peer hits, over real sockets: concurrent streams per connection,
challenge answers per minute, failed authentications per minute; each refusal
carries its reason. (The message size limit is in tests/hostile.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from interbank.v1 import (
    authorization_pb2,
    authorization_pb2_grpc,
    notification_pb2,
    notification_pb2_grpc,
    order_pb2,
    order_pb2_grpc,
)

from payment.config import Role
from payment.errors import error_info
from payment.pki import Pki, issue_certificate
from payment.tls import TlsIdentity, secure_channel
from tests.e2e.conftest import RunningNetwork, start_network, stop

LIMIT = 3


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = start_network(
        tmp_path_factory.mktemp("limits"),
        max_concurrent_streams=2,
        challenge_answers_per_minute=LIMIT,
        failed_authentications_per_minute=LIMIT,
    )
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


def _tls(net: RunningNetwork, name: str) -> TlsIdentity:
    return TlsIdentity.load(Pki(net.network.pki_dir), name)


async def _outcome(call) -> tuple[str, str | None, dict[str, str]]:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        info = error_info(exc)
        return exc.code().name, info.reason if info else None, dict(info.metadata) if info else {}
    return "OK", None, {}


async def test_a_connection_gets_no_more_concurrent_streams_than_the_limit(
    net: RunningNetwork,
) -> None:
    shop = net.network.node("shop").address
    async with secure_channel(shop, _tls(net, "alice")) as channel:
        inbox = notification_pb2_grpc.NotificationServiceStub(channel)
        streams = [inbox.Subscribe(notification_pb2.SubscribeRequest()) for _ in range(2)]
        for stream in streams:
            await stream.initial_metadata()  # both streams hold their slot
        store = order_pb2_grpc.OrderServiceStub(channel)
        waiting = await _outcome(store.ListProducts(order_pb2.ListProductsRequest(), timeout=1.5))
        assert waiting[0] == "DEADLINE_EXCEEDED", waiting  # queued for a stream, never served
        async with secure_channel(shop, _tls(net, "alice")) as other:
            served = await _outcome(
                order_pb2_grpc.OrderServiceStub(other).ListProducts(
                    order_pb2.ListProductsRequest(), timeout=5
                )
            )
        assert served[0] == "OK", served  # the limit is per connection
        streams[0].cancel()
        freed = await _outcome(store.ListProducts(order_pb2.ListProductsRequest(), timeout=5))
        assert freed[0] == "OK", freed
        streams[1].cancel()


async def test_challenge_answers_beyond_the_limit_are_refused_with_when_to_retry(
    net: RunningNetwork,
) -> None:
    alfa = net.network.node("alfa").address
    async with secure_channel(alfa, _tls(net, "alice")) as channel:
        stub = authorization_pb2_grpc.ChallengeServiceStub(channel)

        def answer():
            return stub.AnswerChallenge(
                authorization_pb2.AnswerChallengeRequest(
                    request_id=str(uuid.uuid4()), challenge_id=str(uuid.uuid4()), code="123456"
                ),
                timeout=5,
            )

        first = [await _outcome(answer()) for _ in range(LIMIT)]
        assert {o[:2] for o in first} == {("NOT_FOUND", "CHALLENGE_NOT_FOUND")}
        code, reason, metadata = await _outcome(answer())
        assert (code, reason) == ("RESOURCE_EXHAUSTED", "CHALLENGE_ANSWERS_RATE_LIMITED")
        assert 1 <= int(metadata["retry_after_seconds"]) <= 60
    beta = net.network.node("beta").address
    async with secure_channel(beta, _tls(net, "bob")) as channel:
        other = await _outcome(
            authorization_pb2_grpc.ChallengeServiceStub(channel).AnswerChallenge(
                authorization_pb2.AnswerChallengeRequest(
                    request_id=str(uuid.uuid4()), challenge_id=str(uuid.uuid4()), code="123456"
                ),
                timeout=5,
            )
        )
    assert other[:2] == ("NOT_FOUND", "CHALLENGE_NOT_FOUND")  # the limit is per customer


async def test_a_certificate_failing_authentication_is_refused_for_the_minute(
    net: RunningNetwork,
) -> None:
    pki = Pki(net.network.pki_dir)
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    from cryptography import x509

    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key, cert = issue_certificate(
        ca_key,
        ca_cert,
        net.network.trust_domain,
        Role.CUSTOMER,
        "mallory",  # type: ignore[arg-type]
    )
    mallory = TlsIdentity(
        pki.ca_cert.read_bytes(),
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    shop = net.network.node("shop").address

    def products(channel: grpc.aio.Channel):
        return order_pb2_grpc.OrderServiceStub(channel).ListProducts(
            order_pb2.ListProductsRequest(), timeout=5
        )

    async with secure_channel(shop, mallory) as channel:
        first = [await _outcome(products(channel)) for _ in range(LIMIT)]
        assert {o[:2] for o in first} == {("UNAUTHENTICATED", "UNKNOWN_PARTICIPANT")}
        code, reason, metadata = await _outcome(products(channel))
    assert (code, reason) == ("RESOURCE_EXHAUSTED", "AUTHENTICATION_RATE_LIMITED")
    assert 1 <= int(metadata["retry_after_seconds"]) <= 60
    async with secure_channel(shop, _tls(net, "alice")) as channel:
        assert (await _outcome(products(channel)))[0] == "OK"
