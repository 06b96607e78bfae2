"""The notification stream served for real: a node's outbox read once per commit
for all its subscribers, each getting exactly its own events, in order, once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from interbank.v1 import notification_pb2, notification_pb2_grpc

from bench import fanoutbench
from bench.fanoutbench import InboxNode
from payment.errors import error_info
from payment.notifications import SUBSCRIBED_HEADER, _events_after, emit, follow

FOLLOWERS = tuple(f"follower{i}" for i in range(30))


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[InboxNode]:
    node = await InboxNode.start(tmp_path, FOLLOWERS)
    yield node
    await node.stop()


@dataclass
class Follower:
    """One subscription, collecting what it is sent."""

    call: Any
    events: list[notification_pb2.SubscribeResponse]
    reader: asyncio.Task[None]

    def ids(self) -> list[str]:
        return [event.event_id for event in self.events]

    async def until(self, count: int) -> None:
        while len(self.events) < count:
            await asyncio.sleep(0.01)


async def subscribe(node: InboxNode, customer: str, after: int = 0) -> Follower:
    channel = node.channel(customer)
    stub = notification_pb2_grpc.NotificationServiceStub(channel)
    call = stub.Subscribe(notification_pb2.SubscribeRequest(after_sequence=after))
    headers = dict(await call.initial_metadata())
    assert headers[SUBSCRIBED_HEADER] == str(after)
    events: list[notification_pb2.SubscribeResponse] = []

    async def read() -> None:
        try:
            async for event in call:
                events.append(event)
        finally:
            await channel.close()

    return Follower(call, events, asyncio.create_task(read()))


async def test_each_commit_is_read_once_for_all_followers_and_wakes_only_its_recipient(
    node: InboxNode,
) -> None:
    followers = {name: await subscribe(node, name) for name in FOLLOWERS}
    await fanoutbench.quiet(node.store)
    reads_before = node.store.reads
    for i in range(20):
        await node.emit(("follower0", f"e{i}"))
        await asyncio.wait_for(followers["follower0"].until(i + 1), 10)
    reads = node.store.reads - reads_before
    # One read of the outbox per commit serves all 30 followers; a follower
    # waking and reading the store itself after every commit would be 600.
    assert reads <= 2 * 20, reads
    assert followers["follower0"].ids() == [f"e{i}" for i in range(20)]
    assert [len(f.events) for name, f in followers.items() if name != "follower0"] == [0] * 29
    sequences = [event.sequence for event in followers["follower0"].events]
    assert sequences == sorted(set(sequences))
    for follower in followers.values():
        follower.call.cancel()


async def test_one_commit_for_many_recipients_reaches_each_its_own_in_order(
    node: InboxNode,
) -> None:
    names = FOLLOWERS[:10]
    followers = {name: await subscribe(node, name) for name in names}
    await node.emit(*((name, f"{name}-{k}") for k in range(3) for name in names))
    for name in names:
        await asyncio.wait_for(followers[name].until(3), 10)
    await node.emit(("follower1", "follower1-3"))
    await asyncio.wait_for(followers["follower1"].until(4), 10)
    for name in names:
        expected = [f"{name}-{k}" for k in range(4 if name == "follower1" else 3)]
        assert followers[name].ids() == expected
    # Resuming after the second event gives the rest, not again the first two.
    second = followers["follower1"].events[1].sequence
    resumed = await subscribe(node, "follower1", after=second)
    await asyncio.wait_for(resumed.until(2), 10)
    assert resumed.ids() == ["follower1-2", "follower1-3"]
    for follower in [*followers.values(), resumed]:
        follower.call.cancel()


async def test_a_backlog_longer_than_one_read_then_live_events_arrive_once_each(
    node: InboxNode,
) -> None:
    for start in range(0, 600, 100):
        await node.emit(*(("follower0", f"old{i}") for i in range(start, start + 100)))
    follower = await subscribe(node, "follower0")
    for i in range(50):
        await node.emit(("follower0", f"new{i}"), ("follower1", f"other{i}"))
    await asyncio.wait_for(follower.until(650), 20)
    await asyncio.sleep(0.3)
    assert follower.ids() == [f"old{i}" for i in range(600)] + [f"new{i}" for i in range(50)]
    follower.call.cancel()


async def test_concurrent_writers_and_followers_lose_and_repeat_nothing(node: InboxNode) -> None:
    names = FOLLOWERS[:8]
    rng = random.Random(7)
    sent: dict[str, list[str]] = {name: [] for name in names}
    followers = {name: await subscribe(node, name) for name in names[:4]}

    async def writer(w: int) -> None:
        for k in range(40):
            batch = [(rng.choice(names), f"w{w}-{k}-{j}") for j in range(rng.randint(1, 4))]
            await node.emit(*batch)
            await asyncio.sleep(rng.random() / 200)

    writers = [asyncio.create_task(writer(w)) for w in range(6)]
    await asyncio.sleep(0.05)
    # Half the followers join while the writers run: backlog and live events meet.
    for name in names[4:]:
        followers[name] = await subscribe(node, name)
    await asyncio.gather(*writers)
    rows = await node.store.read(
        lambda conn: conn.execute(
            "SELECT recipient, event_id FROM outbox ORDER BY sequence"
        ).fetchall()
    )
    for recipient, event_id in rows:
        sent[recipient.rsplit("/", 1)[1]].append(event_id)
    for name in names:
        await asyncio.wait_for(followers[name].until(len(sent[name])), 10)
    await asyncio.sleep(0.3)
    for name in names:
        assert followers[name].ids() == sent[name]
    assert sum(len(ids) for ids in sent.values()) == len(rows) > 240
    for follower in followers.values():
        follower.call.cancel()


async def test_a_follower_waiting_when_the_node_closes_its_store_is_told_to_resume(
    node: InboxNode,
) -> None:
    follower = await subscribe(node, "follower0")
    await node.emit(("follower0", "e0"))
    await asyncio.wait_for(follower.until(1), 10)
    await node.store.close()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await asyncio.wait_for(follower.reader, 10)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info(raised.value)
    assert info is not None and info.reason == "NODE_STOPPING"
    assert "subscribe again" in (raised.value.details() or "")


def test_the_fanout_bench_delivers_every_event_once_with_one_read_per_commit(capsys) -> None:
    assert fanoutbench.main(["--followers", "12", "-n", "120", "--writers", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    result = json.loads(out[-1])["fanout"]
    assert result["followers"] == 12
    assert result["delivered"] == result["events"] == 120
    assert result["problems"] == []
    assert 0 < result["commits"] <= 120
    assert result["reads_per_commit"] <= 2, result
    assert result["p99_ms"] >= result["p50_ms"] > 0
    assert out[0].startswith("notification fan-out: 12 followers, 120 events in ")


async def refusal(node: InboxNode, customer: str, after: int) -> grpc.aio.AioRpcError:
    """The error a subscription after a sequence ends with, at once."""
    async with node.channel(customer) as channel:
        stub = notification_pb2_grpc.NotificationServiceStub(channel)
        call = stub.Subscribe(notification_pb2.SubscribeRequest(after_sequence=after))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await asyncio.wait_for(call.read(), 10)
        return raised.value


async def test_a_cursor_beyond_the_end_of_the_stream_is_refused_with_the_last_sequence(
    node: InboxNode,
) -> None:
    await node.emit(("follower0", "a0"), ("follower1", "b0"), ("follower0", "a1"))
    follower = await subscribe(node, "follower0")
    await asyncio.wait_for(follower.until(2), 10)
    last = follower.events[-1].sequence
    follower.call.cancel()
    # Resuming after the last event received is accepted, and waits for the next.
    resumed = await subscribe(node, "follower0", after=last)
    resumed.call.cancel()
    other = last - 1  # follower1's one event; follower0's last is beyond follower1's end
    for customer, after, end in (
        ("follower0", last + 1, last),
        ("follower0", 2**63 - 1, last),
        ("follower1", last, other),
        ("follower2", 1, 0),  # no event yet: only 0 is a valid cursor
    ):
        refused = await refusal(node, customer, after)
        assert refused.code() == grpc.StatusCode.OUT_OF_RANGE, (customer, after)
        info = error_info(refused)
        assert info is not None and info.reason == "CURSOR_BEYOND_END"
        assert info.metadata["last_sequence"] == str(end)
        assert info.metadata["field"] == "after_sequence"


async def test_follow_raises_a_cursor_beyond_the_end_instead_of_resubscribing_for_ever(
    node: InboxNode,
) -> None:
    async with node.channel("follower0") as channel:
        stub = notification_pb2_grpc.NotificationServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await asyncio.wait_for(anext(follow(stub, after_sequence=10)), 10)
    assert raised.value.code() == grpc.StatusCode.OUT_OF_RANGE


class _CommitBetweenStatements:
    """A connection whose first statement is followed by another writer's commit: what a
    subscriber's backlog read meets when an event commits while it reads."""

    def __init__(self, reader: sqlite3.Connection, writer: sqlite3.Connection) -> None:
        self._reader = reader
        self._writer = writer
        self._statements = 0

    def execute(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor:
        cursor = self._reader.execute(sql, args)
        rows = cursor.fetchall()
        self._statements += 1
        if self._statements == 1:
            with self._writer:
                emit(self._writer, "spiffe://paynet.test/customer/alice", _order_event())
        return _Fetched(rows)  # type: ignore[return-value]


@dataclass
class _Fetched:
    rows: list[Any]

    def fetchall(self) -> list[Any]:
        return self.rows

    def fetchone(self) -> Any:
        return self.rows[0]


OUTBOX_SCHEMA = """
CREATE TABLE outbox (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    recipient TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    event BLOB NOT NULL
);
"""


def _order_event() -> notification_pb2.SubscribeResponse:
    return notification_pb2.SubscribeResponse(order_update=notification_pb2.OrderUpdate())


def test_a_backlog_read_counts_as_read_only_the_events_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.executescript(OUTBOX_SCHEMA)
    alice = "spiffe://paynet.test/customer/alice"
    emit(writer, alice, _order_event())
    reader = sqlite3.connect(path, isolation_level=None)
    racing = _CommitBetweenStatements(reader, writer)
    rows, read_up_to = _events_after(racing, recipient=alice, after=0)  # type: ignore[arg-type]
    stored = [
        seq
        for (seq,) in reader.execute(
            "SELECT sequence FROM outbox WHERE recipient = ? ORDER BY sequence", (alice,)
        )
    ]
    assert len(stored) == 2
    # Whatever the read says it read up to, it returned: a subscriber that then waits
    # for events after read_up_to misses none.
    assert [seq for seq, _blob in rows] == [s for s in stored if s <= read_up_to]


async def test_a_follower_that_stops_early_ends_its_stream_at_once(node: InboxNode) -> None:
    """Taking the first event and stopping, as a wait for one order status does, must end
    the subscription on the node: streams left open fill the connection's stream limit
    (100), after which the next subscription on it waits for ever."""
    await node.emit(("follower0", "first"))
    stub = notification_pb2_grpc.NotificationServiceStub(node.channel("follower0"))

    async def first() -> str:
        async with contextlib.aclosing(follow(stub)) as events:
            async for event in events:
                return event.event_id
        raise AssertionError("follow() never ends")

    for _ in range(150):
        assert await asyncio.wait_for(first(), 5) == "first"
