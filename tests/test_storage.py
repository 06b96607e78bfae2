"""The store's idempotency rules, on a real SQLite file: one test per rule.

A step here inserts one row into a ``effects`` table, so the number of rows
is the number of times a request took effect.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from interbank.v1 import common_pb2

from payment import errors
from payment.storage import Store

SCHEMA = "CREATE TABLE IF NOT EXISTS effects (request_id TEXT NOT NULL, amount INTEGER NOT NULL);"


def money(amount: int) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency_code="EUR")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store(tmp_path / "node.sqlite3", SCHEMA)
    await opened.open()
    yield opened
    await opened.close()


def effect(request_id: str, request: common_pb2.Money):  # type: ignore[no-untyped-def]
    def step(conn: sqlite3.Connection) -> common_pb2.Money:
        conn.execute("INSERT INTO effects VALUES (?, ?)", (request_id, request.amount_minor))
        count = conn.execute("SELECT count(*) FROM effects").fetchone()[0]
        return common_pb2.Money(amount_minor=count, currency_code="EUR")

    return step


async def effects(store: Store) -> list[tuple[str, int]]:
    return await store.read(lambda conn: conn.execute("SELECT * FROM effects").fetchall())


async def test_the_same_id_and_content_replays_the_stored_result_without_a_second_effect(
    store: Store,
) -> None:
    first = await store.once(
        "Pay|alice", "r1", money(500), common_pb2.Money, effect("r1", money(500))
    )
    again = await store.once(
        "Pay|alice", "r1", money(500), common_pb2.Money, effect("r1", money(500))
    )
    assert first == again == money(1)
    assert await effects(store) == [("r1", 500)]


async def test_the_same_id_with_different_content_is_refused_and_writes_nothing(
    store: Store,
) -> None:
    await store.once("Pay|alice", "r1", money(500), common_pb2.Money, effect("r1", money(500)))
    with pytest.raises(errors.AlreadyExists) as refused:
        await store.once("Pay|alice", "r1", money(501), common_pb2.Money, effect("r1", money(501)))
    assert refused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert await effects(store) == [("r1", 500)]


async def test_ids_are_scoped_to_the_caller(store: Store) -> None:
    await store.once("Pay|alice", "r1", money(500), common_pb2.Money, effect("r1", money(500)))
    await store.once("Pay|bob", "r1", money(700), common_pb2.Money, effect("r1", money(700)))
    assert await effects(store) == [("r1", 500), ("r1", 700)]


async def test_the_result_is_stored_in_the_effects_transaction(store: Store) -> None:
    """A step that fails after its write leaves neither the effect nor a stored result."""

    def fails_after_writing(conn: sqlite3.Connection) -> common_pb2.Money:
        effect("r1", money(500))(conn)
        raise errors.FailedPrecondition("INSUFFICIENT_FUNDS", "no")

    with pytest.raises(errors.FailedPrecondition):
        await store.once("Pay|alice", "r1", money(500), common_pb2.Money, fails_after_writing)
    assert await effects(store) == []
    stored = await store.read(
        lambda conn: conn.execute("SELECT count(*) FROM idempotency").fetchone()[0]
    )
    assert stored == 0
    # Nothing was remembered, so the same id may try again and take effect.
    again = await store.once(
        "Pay|alice", "r1", money(500), common_pb2.Money, effect("r1", money(500))
    )
    assert again == money(1)


async def test_concurrent_calls_with_one_id_execute_once(store: Store) -> None:
    async def slow_async_step() -> common_pb2.Money:
        await asyncio.sleep(0.05)
        return await store.transaction(effect("r9", money(300)))

    results = await asyncio.gather(
        *(
            store.once("Pay|alice", "r8", money(300), common_pb2.Money, effect("r8", money(300)))
            for _ in range(20)
        ),
        *(
            store.once_async("Pay|alice", "r9", money(300), common_pb2.Money, slow_async_step)
            for _ in range(20)
        ),
    )
    assert await effects(store) == [("r8", 300), ("r9", 300)]
    assert set(r.amount_minor for r in results[:20]) == {1}
    assert set(r.amount_minor for r in results[20:]) == {2}


async def test_a_missing_request_id_is_refused(store: Store) -> None:
    with pytest.raises(errors.InvalidArgument) as refused:
        await store.once("Pay|alice", "", money(1), common_pb2.Money, effect("", money(1)))
    assert refused.value.reason == "REQUEST_ID_MISSING"
    assert await effects(store) == []


async def test_results_past_retention_are_not_replayed_and_are_pruned(tmp_path: Path) -> None:
    store = Store(tmp_path / "node.sqlite3", SCHEMA, retention_s=3600)
    await store.open()
    try:
        await store.once("Pay|alice", "old", money(1), common_pb2.Money, effect("old", money(1)))
        await store.once("Pay|alice", "new", money(2), common_pb2.Money, effect("new", money(2)))
        # Age the first result past retention.
        await store.transaction(
            lambda conn: conn.execute(
                "UPDATE idempotency SET created_at = '2000-01-01T00:00:00.000000+00:00'"
                " WHERE request_id = 'old'"
            )
        )
        # Past retention, the id is new again: it takes effect a second time.
        await store.once("Pay|alice", "old", money(1), common_pb2.Money, effect("old", money(1)))
        assert [r for r in await effects(store) if r[0] == "old"] == [("old", 1), ("old", 1)]
        # Within retention, a replay.
        await store.once("Pay|alice", "new", money(2), common_pb2.Money, effect("new", money(2)))
        assert [r for r in await effects(store) if r[0] == "new"] == [("new", 2)]

        await store.transaction(
            lambda conn: conn.execute(
                "UPDATE idempotency SET created_at = '2000-01-01T00:00:00.000000+00:00'"
                " WHERE request_id = 'new'"
            )
        )
        assert await store.prune_idempotency() == 1
        left = await store.read(
            lambda conn: conn.execute("SELECT request_id FROM idempotency").fetchall()
        )
        assert left == [("old",)]
    finally:
        await store.close()


async def test_concurrent_transactions_share_durable_commits_and_a_failure_stays_alone(
    store: Store, tmp_path: Path
) -> None:
    def insert(i: int):  # type: ignore[no-untyped-def]
        def step(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO effects VALUES (?, ?)", (f"r{i}", i))
            if i % 10 == 3:
                raise errors.FailedPrecondition("REFUSED", f"step {i} refused after writing")
            return i

        return step

    commits_before = store.commits
    outcomes = await asyncio.gather(
        *(store.transaction(insert(i)) for i in range(100)), return_exceptions=True
    )

    refused = [i for i, o in enumerate(outcomes) if isinstance(o, errors.FailedPrecondition)]
    assert refused == list(range(3, 100, 10))
    assert [o for o in outcomes if not isinstance(o, Exception)] == [
        i for i in range(100) if i % 10 != 3
    ]
    # Grouped: fewer durable commits than transactions, each in one piece.
    assert store.commits - commits_before < 100
    with sqlite3.connect(tmp_path / "node.sqlite3") as conn:
        rows = sorted(r[0] for r in conn.execute("SELECT amount FROM effects"))
    assert rows == [i for i in range(100) if i % 10 != 3], "a refused step left its write"


async def test_a_step_failing_inside_sqlite_is_rolled_back_alone(
    store: Store, tmp_path: Path
) -> None:
    def fine(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO effects VALUES ('fine', 1)")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO effects VALUES ('broken', 2)")
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    outcomes = await asyncio.gather(
        store.transaction(fine), store.transaction(broken), return_exceptions=True
    )
    assert outcomes[0] is None
    assert isinstance(outcomes[1], sqlite3.OperationalError)
    with sqlite3.connect(tmp_path / "node.sqlite3") as conn:
        assert conn.execute("SELECT request_id FROM effects").fetchall() == [("fine",)]
