"""``python -m bench.fanoutbench``: what a commit costs a node that many subscribers follow.

A bank's customers follow their device inboxes, and a merchant's customers
their orders, each on its own ``NotificationService.Subscribe`` stream. This
serves one node's notification stream over real mTLS from a real store, opens
F streams (default 200, one per customer certificate), then writes N events
(default 2,000) from concurrent writers, each event for one follower chosen at
random, each in its own transaction (the store groups concurrent ones into one
commit, as it does for payments).

It reports the store reads per commit while the events flow (one read serves
every follower; a stream that read the store itself after every commit would
make F), events delivered per second, and the time from the write to the
follower (p50, p99). It checks that every follower got exactly its own events,
each once, in sequence order, and exits 1 if not.

The last line is one JSON object: ``{"fanout": {...}}``. Run it with
``GRPC_VERBOSITY=ERROR`` (``make bench`` does), or gRPC prints an INFO line for
every stream it closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc
from interbank.v1 import notification_pb2, notification_pb2_grpc

from bench.bench import percentile
from ops.devnet import add_customers, write_dev_network
from payment.config import NetworkConfig, Role, load_network
from payment.identity import spiffe_id
from payment.logs import configure_logging
from payment.notifications import SUBSCRIBED_HEADER, NotificationServicer, emit
from payment.pki import Pki, init_pki
from payment.server import create_server
from payment.storage import Store
from payment.tls import NodeIdentity, TlsIdentity, secure_channel

__all__ = ["CountingStore", "FanoutResult", "InboxApp", "InboxNode", "main", "quiet", "run"]

T = TypeVar("T")


class CountingStore(Store):
    """A store that counts its reads."""

    reads = 0

    async def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        self.reads += 1
        return await super().read(query)


@dataclass
class InboxApp:
    """A node app serving only a store's notification stream."""

    store: Store
    service_names: Sequence[str] = ("interbank.v1.NotificationService",)

    def register(self, server: grpc.aio.Server) -> None:
        notification_pb2_grpc.add_NotificationServiceServicer_to_server(
            NotificationServicer(self.store), server
        )

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass
class InboxNode:
    """Bank alfa's notification stream, served over mTLS, with customers to follow it."""

    network: NetworkConfig
    store: CountingStore
    address: str
    server: grpc.aio.Server

    @classmethod
    async def start(cls, directory: Path, customers: Sequence[str]) -> InboxNode:
        path = write_dev_network(directory / "net")
        add_customers(path, tuple(customers), 1000, ("alfa",))
        network = load_network(path)
        init_pki(network, network.pki_dir)
        store = CountingStore(directory / "alfa.sqlite3", "")
        await store.open()
        identity = NodeIdentity.fixed(TlsIdentity.load(Pki(network.pki_dir), "alfa"))
        server, port, _ = await create_server(network, InboxApp(store), identity, "127.0.0.1:0")
        await server.start()
        return cls(network, store, f"127.0.0.1:{port}", server)

    async def stop(self) -> None:
        await self.server.stop(None)
        await self.store.close()

    def uri(self, customer: str) -> str:
        """The SPIFFE id a customer's events are addressed to."""
        return spiffe_id(self.network.trust_domain, Role.CUSTOMER, customer)

    def channel(self, customer: str) -> grpc.aio.Channel:
        """An mTLS channel to the node with the customer's certificate."""
        return secure_channel(self.address, TlsIdentity.load(Pki(self.network.pki_dir), customer))

    async def emit(self, *events: tuple[str, str]) -> None:
        """One transaction queuing events given as (customer, event id)."""

        def step(conn: sqlite3.Connection) -> None:
            for customer, event_id in events:
                event = notification_pb2.SubscribeResponse(event_id=event_id)
                emit(conn, self.uri(customer), event)

        await self.store.transaction(step)


@dataclass(frozen=True)
class FanoutResult:
    followers: int
    events: int
    delivered: int
    commits: int
    store_reads: int
    seconds: float
    p50_ms: float
    p99_ms: float
    problems: list[str] = field(default_factory=list)

    @property
    def reads_per_commit(self) -> float:
        return round(self.store_reads / max(self.commits, 1), 2)

    @property
    def events_per_second(self) -> float:
        return round(self.delivered / self.seconds, 1) if self.seconds else 0.0


async def quiet(store: CountingStore, most_s: float = 10.0) -> None:
    """Until the store is read no more (every stream has its backlog and waits), or most_s."""
    reads = -1
    deadline = time.monotonic() + most_s
    while reads != store.reads and time.monotonic() < deadline:
        reads = store.reads
        await asyncio.sleep(0.2)


async def run(followers: int, events: int, writers: int, seed: int) -> FanoutResult:
    """Serve a notification stream to followers and time events through it."""
    names = [f"follower{i}" for i in range(followers)]
    rng = random.Random(seed)
    plan = [(rng.choice(names), f"event-{k}") for k in range(events)]
    written: dict[str, float] = {}
    got: dict[str, list[tuple[int, str, float]]] = {name: [] for name in names}
    all_in = asyncio.Event()
    count = 0
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fanoutbench-") as tmp:
        node = await InboxNode.start(Path(tmp), names)
        channels = [node.channel(name) for name in names]

        async def follow(name: str, channel: grpc.aio.Channel, live: asyncio.Event) -> None:
            nonlocal count
            stub = notification_pb2_grpc.NotificationServiceStub(channel)
            call = stub.Subscribe(notification_pb2.SubscribeRequest(after_sequence=0))
            if SUBSCRIBED_HEADER not in dict(await call.initial_metadata()):
                problems.append(f"{name} was not subscribed: {await call.details()}")
            live.set()
            async for event in call:
                got[name].append((event.sequence, event.event_id, time.perf_counter()))
                count += 1
                if count == events:
                    all_in.set()

        async def write(share: list[tuple[str, str]]) -> None:
            for customer, event_id in share:
                written[event_id] = time.perf_counter()
                await node.emit((customer, event_id))

        try:
            # Connected a few at a time: a hundred TLS handshakes at once in one
            # process time out before grpc's SETTINGS frame.
            connecting = asyncio.Semaphore(8)

            async def connect(channel: grpc.aio.Channel) -> None:
                async with connecting:
                    await asyncio.wait_for(channel.channel_ready(), 30)

            await asyncio.gather(*(connect(channel) for channel in channels))
            lives = [asyncio.Event() for _ in names]
            readers = [
                asyncio.create_task(follow(name, channel, live))
                for name, channel, live in zip(names, channels, lives, strict=True)
            ]
            await asyncio.wait_for(asyncio.gather(*(live.wait() for live in lives)), 60)
            await quiet(node.store)
            reads, commits = node.store.reads, node.store.commits
            started = time.perf_counter()
            await asyncio.gather(*(write(plan[w::writers]) for w in range(writers)))
            try:
                await asyncio.wait_for(all_in.wait(), 60)
            except TimeoutError:
                pass
            seconds = time.perf_counter() - started
            reads, commits = node.store.reads - reads, node.store.commits - commits
            await asyncio.sleep(0.2)  # a duplicate would arrive now
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        finally:
            for channel in channels:
                await channel.close()
            await node.stop()
    latencies = [
        (at - written[event_id]) * 1000 for seen in got.values() for _, event_id, at in seen
    ]
    for name in names:
        expected = [event_id for customer, event_id in plan if customer == name]
        seen = got[name]
        if sorted(event_id for _, event_id, _ in seen) != sorted(expected):
            problems.append(f"{name} got {len(seen)} events, {len(expected)} were written for it")
        if [s for s, _, _ in seen] != sorted({s for s, _, _ in seen}):
            problems.append(f"{name}'s sequences are not strictly increasing")
    return FanoutResult(
        followers=followers,
        events=events,
        delivered=sum(len(seen) for seen in got.values()),
        commits=commits,
        store_reads=reads,
        seconds=round(seconds, 3),
        p50_ms=round(percentile(latencies, 0.50), 2) if latencies else 0.0,
        p99_ms=round(percentile(latencies, 0.99), 2) if latencies else 0.0,
        problems=problems,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: 1 if a follower missed an event, got one twice or another's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=200, help="open streams")
    parser.add_argument("-n", "--events", type=int, default=2000, help="events written")
    parser.add_argument("--writers", type=int, default=16, help="concurrent writers")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    configure_logging(level=logging.WARNING)  # not an rpc line per stream as they close
    result = asyncio.run(run(args.followers, args.events, args.writers, args.seed))
    print(
        f"notification fan-out: {result.followers} followers, {result.events} events in "
        f"{result.commits} commits: {result.reads_per_commit} store reads per commit "
        f"(a read per follower per commit would be {result.followers}); delivered "
        f"{result.delivered} at {result.events_per_second} events/s, p50 {result.p50_ms} ms, "
        f"p99 {result.p99_ms} ms from the write to the follower"
    )
    for problem in result.problems:
        print(f"problem: {problem}", file=sys.stderr)
    summary = asdict(result) | {
        "reads_per_commit": result.reads_per_commit,
        "events_per_second": result.events_per_second,
    }
    print(json.dumps({"fanout": summary}))
    return 1 if result.problems or result.delivered != result.events else 0


if __name__ == "__main__":
    raise SystemExit(main())
