"""``python -m payment.echo``: one bare ``grpc.aio`` echo server over mTLS, the benchmark's ceiling.

It answers ``/paynet.bench.Echo/Echo`` with the request's bytes, or, given
``--next``, forwards the request to the next echo server and answers with its
reply: a chain of these, one process each, is a chain of bare hops with none
of paynet's work (no interceptors, no store, no parsing). It uses a node's
certificate from the network's PKI, so the TLS work is the network's own.
It prints ``listening`` once it serves, and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

__all__ = ["ECHO_METHOD", "main", "serve"]

ECHO_METHOD = "/paynet.bench.Echo/Echo"


async def serve(pki: Pki, name: str, port: int, forward_to: str | None) -> None:
    """Serve the echo method on 127.0.0.1:port until SIGTERM."""
    tls = TlsIdentity.load(pki, name)
    channel = secure_channel(forward_to, tls) if forward_to else None
    forward: Callable[..., Awaitable[bytes]] | None = (
        channel.unary_unary(ECHO_METHOD) if channel is not None else None
    )

    async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return request if forward is None else bytes(await forward(request, timeout=10))

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "paynet.bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
            ),
        )
    )
    server.add_secure_port(f"127.0.0.1:{port}", tls.server_credentials())
    await server.start()
    print("listening", flush=True)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    await stopped.wait()
    await server.stop(None)
    if channel is not None:
        await channel.close()


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pki", type=Path, required=True, help="the network's PKI directory")
    parser.add_argument("--name", required=True, help="whose certificate to serve and call with")
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--next", help="host:port of the next echo server to forward to")
    args = parser.parse_args()
    asyncio.run(serve(Pki(args.pki), args.name, args.port, args.next))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
