"""The one server factory every node uses, and the loop that serves a node.

:func:`create_server` builds a ``grpc.aio`` server with mutual TLS, the
access-log, identity/authorization, per-caller call limit and error-mapping
interceptors,
``grpc.health.v1`` always, and server reflection when the network file turns it
on. It returns the server and the bound port, so tests can bind port 0.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from typing import Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from payment.admission import CallLimit
from payment.config import NetworkConfig, NodeConfig
from payment.identity import RevocationList
from payment.interceptors import AccessLog, ErrorMapping, PeerAuthorization
from payment.logs import get_logger
from payment.pki import Pki
from payment.tls import SERVER_OPTIONS, NodeIdentity

__all__ = ["AppFactory", "HealthServicer", "NodeApp", "create_server", "serve_node"]

_log = get_logger("paynet.server")


class NodeApp(Protocol):
    """What a service package hands the server factory."""

    @property
    def service_names(self) -> Sequence[str]:
        """Full names of the gRPC services it registers (for health and reflection)."""
        ...

    def register(self, server: grpc.aio.Server) -> None:
        """Add its servicers to the server."""
        ...

    async def start(self) -> None:
        """Open stores, recover, and start background work; runs before serving."""
        ...

    async def close(self) -> None:
        """Stop background work and close stores and channels."""
        ...


class AppFactory(Protocol):
    """Builds a node's app from the network, the node and its TLS identity."""

    def __call__(
        self, network: NetworkConfig, node: NodeConfig, identity: NodeIdentity
    ) -> NodeApp: ...


class HealthServicer(health.aio.HealthServicer):  # type: ignore[misc]
    """grpc.health.v1 with List, which the health service descriptor has and
    grpcio-health-checking's asyncio servicer does not implement."""

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthListResponse:
        """The status of every registered service ("" is the server as a whole)."""
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in self._server_status.items()
            }
        )


async def create_server(
    network: NetworkConfig,
    app: NodeApp,
    identity: NodeIdentity,
    address: str,
) -> tuple[grpc.aio.Server, int, HealthServicer]:
    """A ready-to-start server for app on address; returns it, its bound port and its health."""
    pki = Pki(network.pki_dir)
    server = grpc.aio.server(
        interceptors=[
            AccessLog(),
            PeerAuthorization(network, RevocationList(pki.crl, pki.ca_cert)),
            CallLimit(network.limits.max_concurrent_calls_per_caller),
            ErrorMapping(),
        ],
        options=(
            *SERVER_OPTIONS,
            ("grpc.max_receive_message_length", network.limits.max_message_bytes),
            ("grpc.max_concurrent_streams", network.limits.max_concurrent_streams),
        ),
    )
    app.register(server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *app.service_names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if network.reflection:
        names = (
            *app.service_names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server)
    port = server.add_secure_port(address, identity.server_credentials())
    if port == 0:
        raise OSError(f"cannot listen on {address}: is the port already in use?")
    return server, port, health_servicer


async def serve_node(
    network: NetworkConfig, node: NodeConfig, factory: AppFactory, *, grace_s: float = 5.0
) -> None:
    """Serve one node, its app built by factory, until SIGTERM or SIGINT, then stop
    gracefully. Which factory serves which role is the launcher's to say
    (:mod:`ops.nodes`): the core knows no service."""
    identity = NodeIdentity.load(Pki(network.pki_dir), node.name)
    app = factory(network, node, identity)
    server, port, health_servicer = await create_server(network, app, identity, node.address)
    # Stores open and recovery runs before the first request can arrive.
    await app.start()
    await server.start()
    _log.info(
        "node.serving",
        role=str(node.role),
        name=node.name,
        address=f"{node.host}:{port}",
        reflection=network.reflection,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    _log.info("node.stopping", name=node.name)
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace_s)
    await app.close()
    _log.info("node.stopped", name=node.name)
