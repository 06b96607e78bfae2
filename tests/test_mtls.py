"""The secure server skeleton over real sockets and real mTLS: handshake,
identity, the role -> RPC table, revocation, health and reflection."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from interbank.v1 import authorization_pb2, authorization_pb2_grpc

from payment.config import Role
from payment.errors import error_info
from payment.identity import caller
from payment.logs import configure_logging
from payment.pki import issue_certificate, make_ca, revoke
from payment.server import create_server
from payment.tls import NodeIdentity, TlsIdentity, secure_channel
from tests.hostile.chains import chained_identity

ISSUER = "interbank.v1.IssuerService"


class EchoIssuer(authorization_pb2_grpc.IssuerServiceServicer):
    """Answers GetHold with the caller's identity, to prove who got through."""

    async def GetHold(self, request, context):
        return authorization_pb2.GetHoldResponse(hold_id=caller().uri)


@dataclass
class IssuerApp:
    service_names: Sequence[str] = (ISSUER,)

    def register(self, server: grpc.aio.Server) -> None:
        authorization_pb2_grpc.add_IssuerServiceServicer_to_server(EchoIssuer(), server)

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@pytest.fixture
async def issuer(devnet) -> AsyncIterator[str]:
    server, port, _ = await create_server(
        devnet.network, IssuerApp(), NodeIdentity.fixed(devnet.tls("alfa")), "127.0.0.1:0"
    )
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def get_hold(channel: grpc.aio.Channel) -> authorization_pb2.GetHoldResponse:
    stub = authorization_pb2_grpc.IssuerServiceStub(channel)
    return await stub.GetHold(authorization_pb2.GetHoldRequest(hold_id="h"), timeout=5)


async def test_each_rpc_logs_one_line_with_method_peer_status_and_duration(devnet, issuer) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, json=True)
    async with devnet.channel("shop", issuer) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await get_hold(channel)

    def rpc_lines() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        return [line for line in lines if line["event"] == "rpc"]

    # The server writes its line as its handler ends, which can be just after the client
    # has the status (server and client share this event loop): wait for it, briefly.
    for _ in range(200):
        if rpc_lines():
            break
        await asyncio.sleep(0.01)
    rpc = rpc_lines()
    assert len(rpc) == 1
    assert rpc[0]["method"] == f"/{ISSUER}/GetHold"
    assert rpc[0]["peer"] == "spiffe://paynet.test/merchant/shop"
    assert rpc[0]["status"] == "PERMISSION_DENIED"
    assert rpc[0]["duration_ms"] >= 0


async def test_the_gateway_is_identified_by_its_certificate_and_let_through(devnet, issuer) -> None:
    async with devnet.channel("gateway", issuer) as channel:
        reply = await get_hold(channel)
    assert reply.hold_id == "spiffe://paynet.test/gateway/gateway"


async def test_a_connection_without_a_client_certificate_fails_the_handshake(
    devnet, issuer
) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=devnet.pki.ca_cert.read_bytes())
    async with grpc.aio.secure_channel(issuer, creds) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await get_hold(channel)
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_from_another_ca_fails_the_handshake(devnet, issuer) -> None:
    ca_key, ca_cert = make_ca("paynet.test")
    key, cert = issue_certificate(ca_key, ca_cert, "paynet.test", Role.GATEWAY, "gateway")
    rogue = TlsIdentity(
        ca_pem=devnet.pki.ca_cert.read_bytes(),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    async with secure_channel(issuer, rogue) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await get_hold(channel)
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_a_valid_certificate_of_the_wrong_role_is_permission_denied(devnet, issuer) -> None:
    async with devnet.channel("shop", issuer) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await get_hold(channel)
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
    info = error_info(err.value)
    assert info is not None
    assert (info.reason, info.domain) == ("ROLE_NOT_ALLOWED", "paynet.dev")
    assert info.metadata["role"] == "merchant"
    assert info.metadata["allowed"] == "gateway"


async def test_a_customer_cannot_call_an_issuer_only_rpc(devnet, issuer) -> None:
    async with devnet.channel("alice", issuer) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await get_hold(channel)
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error_info(err.value).reason == "ROLE_NOT_ALLOWED"


async def test_a_revoked_certificate_is_refused(devnet, issuer) -> None:
    async with devnet.channel("gateway", issuer) as channel:
        await get_hold(channel)
    revoke(devnet.pki, devnet.pki.cert("gateway"))
    await asyncio.sleep(1.1)  # the CRL is re-read at most once a second
    async with devnet.channel("gateway", issuer) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await get_hold(channel)
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error_info(err.value).reason == "CERTIFICATE_REVOKED"


async def test_a_certificate_of_another_trust_domain_from_our_ca_is_unauthenticated(
    devnet, issuer
) -> None:
    pki = devnet.pki
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    from cryptography import x509

    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key, cert = issue_certificate(ca_key, ca_cert, "evil.test", Role.GATEWAY, "gateway")
    foreign = TlsIdentity(
        pki.ca_cert.read_bytes(),
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    async with secure_channel(issuer, foreign) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await get_hold(channel)
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error_info(err.value).reason == "FOREIGN_TRUST_DOMAIN"


async def test_health_reports_serving_for_the_server_and_each_service(devnet, issuer) -> None:
    async with devnet.channel("alice", issuer) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", ISSUER):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def list_services(devnet, address: str) -> list[str]:
    async with devnet.channel("alice", address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        responses = [r async for r in stub.ServerReflectionInfo(iter([request]), timeout=5)]
    return sorted(s.name for s in responses[0].list_services_response.service)


async def test_reflection_lists_the_services_when_enabled(devnet, issuer) -> None:
    assert devnet.network.reflection is True
    names = await list_services(devnet, issuer)
    assert ISSUER in names
    assert "grpc.health.v1.Health" in names


async def test_reflection_is_absent_when_disabled(make_devnet) -> None:
    devnet = make_devnet(reflection=False)
    server, port, _ = await create_server(
        devnet.network, IssuerApp(), NodeIdentity.fixed(devnet.tls("alfa")), "127.0.0.1:0"
    )
    await server.start()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await list_services(devnet, f"127.0.0.1:{port}")
        assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(None)


async def test_a_certificate_chained_through_an_extra_ca_is_unauthenticated(devnet, issuer) -> None:
    chained = chained_identity(devnet.pki, "paynet.test", Role.GATEWAY, "gateway")
    async with secure_channel(issuer, chained) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await get_hold(channel)
    # The handshake completed (the TLS stack accepts the chain); the identity check refuses it.
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    info = error_info(err.value)
    assert info.reason == "ISSUER_NOT_NETWORK_CA"
    assert "intermediate" in err.value.details()
    # The same gateway name with a certificate the network CA issued itself gets through.
    async with devnet.channel("gateway", issuer) as channel:
        assert (await get_hold(channel)).hold_id == "spiffe://paynet.test/gateway/gateway"
