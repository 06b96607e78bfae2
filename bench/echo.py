"""``python -m bench.echo``: one bare ``grpc.aio`` echo server over mTLS, the benchmark's ceiling.

Its methods (service ``paynet.bench.Echo``) carry opaque bytes and do none of
paynet's work (no interceptors, no store, no parsing):

- ``Echo`` answers with the request's bytes;
- ``Forward`` passes the request on, as configured, and answers with the reply:
  to the next server's ``Forward`` (``--next``), as one entry of a batch call
  to the next server's ``Batch`` (``--batch-next``, through the same
  :class:`payment.batching.Coalescer` the nodes use), or, at the end of the
  line, answers itself;
- ``Batch`` takes entries of :data:`ENTRY_SIZE` bytes, passes each one on
  concurrently as ``Forward`` would, and answers with the replies in order;
- ``Follow`` is a server stream: every entry answered at the end of the line is
  also sent to every follower, as a bank's credit notice is.

With ``--follow host:port`` a server follows another's ``Follow`` stream from
its start, as the merchant follows its bank's notices.

A chain of these, one process each, is a chain of bare hops; servers wired the
way a payment travels (:func:`flow_wiring`) are the payment's calls with none of
its work. Each uses a node's certificate from the network's PKI, so the TLS
work is the network's own. It prints ``listening`` once it serves, and runs
until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import grpc

from payment.batching import Coalescer
from payment.pki import Pki
from payment.tls import SERVER_OPTIONS, TlsIdentity, secure_channel

__all__ = [
    "BATCH_METHOD",
    "ECHO_METHOD",
    "ENTRY_SIZE",
    "FOLLOW_METHOD",
    "FORWARD_METHOD",
    "EchoWiring",
    "flow_wiring",
    "join_entries",
    "main",
    "serve",
    "split_entries",
]

_SERVICE = "paynet.bench.Echo"
ECHO_METHOD = f"/{_SERVICE}/Echo"
FORWARD_METHOD = f"/{_SERVICE}/Forward"
BATCH_METHOD = f"/{_SERVICE}/Batch"
FOLLOW_METHOD = f"/{_SERVICE}/Follow"
ENTRY_SIZE = 256
"""Bytes of one entry of a Batch call (and of the benchmark's every message)."""

EchoWiring = tuple[str, ...]
"""One echo server's command-line options: where it passes requests on, whom it follows."""


def split_entries(batch: bytes) -> list[bytes]:
    """A Batch request's entries; a length that is not a whole number of entries is refused."""
    if not batch or len(batch) % ENTRY_SIZE:
        raise ValueError(f"a batch is 1 or more entries of {ENTRY_SIZE} bytes, not {len(batch)}")
    return [batch[i : i + ENTRY_SIZE] for i in range(0, len(batch), ENTRY_SIZE)]


def join_entries(entries: Sequence[bytes]) -> bytes:
    """Entries as one Batch message."""
    return b"".join(entries)


def flow_wiring(addresses: Sequence[str]) -> list[EchoWiring]:
    """The options of five echo servers wired as a payment travels.

    addresses are, in order, the merchant, gateway, issuer, settlement bank and
    acquirer. The customer calls the merchant twice (``Echo`` for the order,
    ``Forward`` for the payment); the merchant calls the gateway once per
    payment; the gateway, the issuer and the settlement bank pass payments on in
    batch calls; the acquirer answers and sends a notice on the stream the
    merchant follows.
    """
    _merchant, gateway, issuer, settlement, acquirer = addresses
    return [
        ("--next", gateway, "--follow", acquirer),
        ("--batch-next", issuer),
        ("--batch-next", settlement),
        ("--batch-next", acquirer),
        (),
    ]


async def serve(
    pki: Pki,
    name: str,
    port: int,
    *,
    forward_to: str | None = None,
    batch_to: str | None = None,
    follow: str | None = None,
) -> None:
    """Serve the echo methods on 127.0.0.1:port until SIGTERM."""
    tls = TlsIdentity.load(pki, name)
    channels = {
        target: secure_channel(target, tls) for target in {forward_to, batch_to, follow} if target
    }
    followers: set[asyncio.Queue[bytes | None]] = set()  # None: the server is stopping

    async def answer(entry: bytes) -> bytes:
        for queue in followers:
            queue.put_nowait(entry)
        return entry

    onward: Callable[[bytes], Awaitable[bytes]] = answer
    if forward_to is not None:
        forward = channels[forward_to].unary_unary(FORWARD_METHOD)

        async def onward(entry: bytes) -> bytes:
            return bytes(await forward(entry, timeout=10))

    elif batch_to is not None:
        batch_call = channels[batch_to].unary_unary(BATCH_METHOD)

        async def send(entries: list[bytes]) -> list[bytes]:
            return split_entries(await batch_call(join_entries(entries), timeout=10))

        onward = Coalescer(send, f"echo batches to {batch_to}").submit

    async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return request

    async def forward_one(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return await onward(request)

    async def batch(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            entries = split_entries(request)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return join_entries(await asyncio.gather(*(onward(entry) for entry in entries)))

    async def follow_notices(
        _request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        followers.add(queue)
        try:
            await context.send_initial_metadata(())  # the follower knows it is following
            while (notice := await queue.get()) is not None:
                yield notice
        finally:
            followers.discard(queue)

    server = grpc.aio.server(options=SERVER_OPTIONS)  # the nodes' keepalive policy
    unary = grpc.unary_unary_rpc_method_handler
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                _SERVICE,
                {
                    "Echo": unary(echo),
                    "Forward": unary(forward_one),
                    "Batch": unary(batch),
                    "Follow": grpc.unary_stream_rpc_method_handler(follow_notices),
                },
            ),
        )
    )
    server.add_secure_port(f"127.0.0.1:{port}", tls.server_credentials())
    await server.start()
    following = None
    if follow is not None:
        following = asyncio.create_task(_follow(channels[follow]))
    print("listening", flush=True)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    await stopped.wait()
    if following is not None:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
    for queue in followers:
        queue.put_nowait(None)  # streams end cleanly rather than being cancelled by stop()
    await server.stop(1)
    for channel in channels.values():
        await channel.close()


async def _follow(channel: grpc.aio.Channel) -> None:
    """Read a server's notices for as long as it runs (what a merchant does with its bank's)."""
    stream = channel.unary_stream(FOLLOW_METHOD)(b"", wait_for_ready=True)
    with contextlib.suppress(grpc.aio.AioRpcError):
        async for _notice in stream:
            pass


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pki", type=Path, required=True, help="the network's PKI directory")
    parser.add_argument("--name", required=True, help="whose certificate to serve and call with")
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    onward = parser.add_mutually_exclusive_group()
    onward.add_argument("--next", help="host:port whose Forward each Forward is passed to")
    onward.add_argument(
        "--batch-next", help="host:port whose Batch receives this server's entries, coalesced"
    )
    parser.add_argument("--follow", help="host:port whose Follow stream to read from the start")
    args = parser.parse_args()
    asyncio.run(
        serve(
            Pki(args.pki),
            args.name,
            args.port,
            forward_to=args.next,
            batch_to=args.batch_next,
            follow=args.follow,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
