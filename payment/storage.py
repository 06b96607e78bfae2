"""The durable store every node keeps: SQLite in WAL mode with full sync.

One :class:`Store` per node owns one connection on one dedicated thread, so
handlers never block the event loop and writes are serialized. All writes of
one business step go through :meth:`Store.transaction`: they commit together
or not at all. Steps that arrive while the thread is busy are committed
together (group commit): one SQLite transaction, one fsync, each step inside
its own savepoint, so a step that fails is rolled back alone and the others
still commit; no caller hears of its step before the commit is durable.
Two tables are common to every store:

- ``idempotency``: the result of each (scope, request_id), with a hash of the
  request, written in the same transaction as the effect, and kept for the
  network's retention (``[limits] idempotency_retention_seconds``): an older
  result is no longer replayed, and is pruned;
- ``outbox``: notification events, written in the same transaction as the
  state change they announce, and streamed by sequence number.

Every service serves its mutating RPCs the same way, with :func:`idempotent` (or
:func:`idempotent_transaction`): the result is kept per (method, caller, request_id),
a retry replays it and the same id with other content is IDEMPOTENCY_KEY_REUSED.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from google.protobuf.message import Message

from payment import errors
from payment.clock import now, now_iso, to_iso
from payment.identity import caller

__all__ = [
    "DEFAULT_RETENTION_S",
    "IdempotencyRecord",
    "Store",
    "idempotent",
    "idempotent_transaction",
    "read_snapshot",
    "request_hash",
    "served_once",
]

DEFAULT_RETENTION_S = 86400.0
"""How long a request_id's result is replayed unless the network says otherwise (24 h)."""
MAX_PRUNE_INTERVAL_S = 300.0
"""Expired idempotency results are pruned at least this often."""

T = TypeVar("T")
M = TypeVar("M", bound=Message)

_COMMON_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    request_id TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    response BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, request_id)
);
CREATE INDEX IF NOT EXISTS idempotency_age ON idempotency (created_at);
CREATE TABLE IF NOT EXISTS outbox (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    recipient TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    event BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_recipient ON outbox (recipient, sequence);
"""


def request_hash(request: Message) -> bytes:
    """A stable hash of a request's content (deterministic serialization)."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).digest()


def _require_request_id(request_id: str) -> None:
    if not request_id:
        raise errors.InvalidArgument(
            "REQUEST_ID_MISSING", "request_id is required: choose a unique id per request"
        )


@contextmanager
def read_snapshot(path: Path) -> Iterator[sqlite3.Connection]:
    """A store file opened read-only, in one read transaction: every query sees one snapshot.

    For operator tools (audit sums, reconciliation, export) that run beside live nodes.
    """
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        conn.execute("BEGIN")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


class IdempotencyRecord:
    """Reads and writes idempotency results inside a transaction."""

    @staticmethod
    def lookup(
        conn: sqlite3.Connection,
        scope: str,
        request_id: str,
        digest: bytes,
        kept_since: str = "",
    ) -> bytes | None:
        """The stored response for (scope, request_id), or None if there is none.

        A result created before kept_since (ISO text) is past retention and
        counts as none. Raises AlreadyExists(IDEMPOTENCY_KEY_REUSED) if the key
        was used for different content.
        """
        row = conn.execute(
            "SELECT request_hash, response FROM idempotency"
            " WHERE scope = ? AND request_id = ? AND created_at >= ?",
            (scope, request_id, kept_since),
        ).fetchone()
        if row is None:
            return None
        if bytes(row[0]) != digest:
            raise errors.AlreadyExists(
                "IDEMPOTENCY_KEY_REUSED",
                f"request_id {request_id!r} was already used for a different request; "
                "choose a new request_id for a new request",
                request_id=request_id,
            )
        return bytes(row[1])

    @staticmethod
    def remember(
        conn: sqlite3.Connection, scope: str, request_id: str, digest: bytes, response: bytes
    ) -> None:
        """Store a result (in the same transaction as its effect).

        Replaces a result past retention that was not pruned yet.
        """
        conn.execute(
            "INSERT OR REPLACE INTO idempotency"
            " (scope, request_id, request_hash, response, created_at) VALUES (?, ?, ?, ?, ?)",
            (scope, request_id, digest, response, now_iso()),
        )


class Store:
    """A node's SQLite database, used from asyncio through one worker thread."""

    def __init__(
        self, path: Path, schema: str, *, retention_s: float = DEFAULT_RETENTION_S
    ) -> None:
        self.path = path
        self._schema = schema
        self.retention_s = retention_s
        self._pruner: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"store-{path.stem}")
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._committed = asyncio.Condition()
        self._queued: list[
            tuple[Callable[[sqlite3.Connection], object], asyncio.Future[object]]
        ] = []
        self._committer: asyncio.Task[None] | None = None
        self.commits = 0
        """Durable commits so far (each of one or more transactions)."""

    async def open(self) -> None:
        """Open (creating if needed) the database and apply the schema."""
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def connect() -> None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(_COMMON_SCHEMA + self._schema)
            self._conn = conn

        await self._call(connect)
        await self.prune_idempotency()
        self._pruner = asyncio.create_task(self._prune_forever(), name=f"prune-{self.path.stem}")

    async def close(self) -> None:
        """Close the connection and the worker thread."""
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
            self._pruner = None
        if self._committer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer  # what callers are waiting for still commits
        if self._conn is not None:
            conn = self._conn
            await self._call(conn.close)
            self._conn = None
            async with self._committed:
                self._committed.notify_all()  # nothing more will commit
        self._executor.shutdown(wait=True)

    async def transaction(self, step: Callable[[sqlite3.Connection], T]) -> T:
        """Run step in one write transaction: all of it commits, or none of it.

        The step runs on the store's thread, grouped with the steps queued
        beside it into one durable commit; its result (or its exception) is
        returned once that commit is on disk.
        """
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._queued.append((step, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued())
        result = await future
        return result  # type: ignore[return-value]

    async def _commit_queued(self) -> None:
        """Commit what is queued, batch after batch, until nothing is."""
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                outcomes = await self._call(partial(self._run_batch, [s for s, _ in batch]))
            except BaseException as exc:
                # The commit itself failed (or was cancelled): none of the batch happened.
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, future), (result, error) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)
            async with self._committed:
                self._committed.notify_all()

    def _run_batch(
        self, steps: list[Callable[[sqlite3.Connection], object]]
    ) -> list[tuple[object, Exception | None]]:
        """Each step's (result, None) or (None, its exception), once all are committed."""
        conn = self._require()
        conn.execute("BEGIN IMMEDIATE")
        outcomes: list[tuple[object, Exception | None]] = []
        try:
            for step in steps:
                conn.execute("SAVEPOINT step")
                try:
                    outcomes.append((step(conn), None))
                except Exception as exc:
                    if not conn.in_transaction:
                        raise  # SQLite rolled the whole transaction back (I/O error, full disk)
                    conn.execute("ROLLBACK TO step")
                    outcomes.append((None, exc))
                conn.execute("RELEASE step")
            conn.execute("COMMIT")
        except BaseException:
            # Also after a failed COMMIT: leave no open transaction, and no step happened.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.commits += 1
        return outcomes

    def kept_since(self) -> str:
        """ISO time before which idempotency results are past retention."""
        return to_iso(now() - dt.timedelta(seconds=self.retention_s))

    async def prune_idempotency(self) -> int:
        """Delete idempotency results past retention; how many were deleted."""
        cutoff = self.kept_since()
        return await self.transaction(
            lambda conn: (
                conn.execute("DELETE FROM idempotency WHERE created_at < ?", (cutoff,)).rowcount
            )
        )

    async def _prune_forever(self) -> None:
        interval = min(MAX_PRUNE_INTERVAL_S, max(1.0, self.retention_s / 4))
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(sqlite3.Error):
                await self.prune_idempotency()

    async def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only query."""
        return await self._call(lambda: query(self._require()))

    @property
    def closed(self) -> bool:
        """Whether the store is not open (before open, or after close)."""
        return self._conn is None

    async def wait_for_commit(self, *, after: int, timeout: float) -> None:
        """Wait until commits passes after, the store closes, or timeout passes.

        Take after from :attr:`commits` before reading: a commit that lands
        between that read and this wait is not missed.
        """
        async with self._committed:
            try:
                await asyncio.wait_for(
                    self._committed.wait_for(lambda: self.commits > after or self.closed), timeout
                )
            except TimeoutError:
                pass

    @asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[None]:
        """Serialize work on one key in this process (concurrent duplicates wait)."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            yield
        if not lock.locked() and not lock._waiters:
            self._locks.pop(key, None)

    async def once(
        self,
        scope: str,
        request_id: str,
        request: Message,
        response_type: type[M],
        step: Callable[[sqlite3.Connection], M],
    ) -> M:
        """Run a one-transaction step at most once per (scope, request_id).

        The same id with the same request returns the stored response; with
        a different request, IDEMPOTENCY_KEY_REUSED. The result is stored in
        the step's own transaction.
        """
        _require_request_id(request_id)
        digest = request_hash(request)
        kept_since = self.kept_since()

        def run(conn: sqlite3.Connection) -> M:
            stored = IdempotencyRecord.lookup(conn, scope, request_id, digest, kept_since)
            if stored is not None:
                return response_type.FromString(stored)
            response = step(conn)
            IdempotencyRecord.remember(
                conn, scope, request_id, digest, response.SerializeToString(deterministic=True)
            )
            return response

        async with self.exclusive(f"{scope}\x00{request_id}"):
            return await self.transaction(run)

    async def once_async(
        self,
        scope: str,
        request_id: str,
        request: Message,
        response_type: type[M],
        step: Callable[[], Awaitable[M]],
    ) -> M:
        """Like :meth:`once` for a step that spans calls to other nodes.

        The step makes its own transactions (each of which must be safe to
        redo); its final response is remembered so a retry replays it.
        """
        _require_request_id(request_id)
        digest = request_hash(request)
        async with self.exclusive(f"{scope}\x00{request_id}"):
            kept_since = self.kept_since()
            stored = await self.read(
                lambda conn: IdempotencyRecord.lookup(conn, scope, request_id, digest, kept_since)
            )
            if stored is not None:
                return response_type.FromString(stored)
            response = await step()
            payload = response.SerializeToString(deterministic=True)
            await self.transaction(
                lambda conn: IdempotencyRecord.remember(conn, scope, request_id, digest, payload)
            )
            return response

    async def claimed_transaction(
        self,
        scope: str,
        request_id: str,
        request: Message,
        step: Callable[[sqlite3.Connection], T],
    ) -> T:
        """Run step in one transaction that also ties request_id to this request's content.

        For steps idempotent by their own key that answer with a live status
        rather than a stored response (a transfer's settlement state moves on).
        The request_id rules still hold: it is required; reusing it for other
        content is IDEMPOTENCY_KEY_REUSED; it is recorded only if the step
        succeeds, in the step's own transaction.
        """
        _require_request_id(request_id)
        digest = request_hash(request)
        kept_since = self.kept_since()

        def run(conn: sqlite3.Connection) -> T:
            seen = IdempotencyRecord.lookup(conn, scope, request_id, digest, kept_since)
            result = step(conn)
            if seen is None:
                IdempotencyRecord.remember(conn, scope, request_id, digest, b"")
            return result

        return await self.transaction(run)

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"store {self.path} is not open")
        return self._conn

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)


class _Servicer(Protocol):
    """A servicer keeping its node's store as ``_store``."""

    _store: Store


class _Keyed(Protocol):
    """A mutating RPC's request: it carries the client-chosen idempotency key."""

    request_id: str


S = TypeVar("S", bound=_Servicer)
R = TypeVar("R", bound=Message)
AsyncHandler = Callable[[S, R, Any], Awaitable[M]]
"""A servicer method: (self, request, context) -> response."""
StepHandler = Callable[[S, R, Any], Callable[[sqlite3.Connection], M]]
"""A servicer method that returns its one-transaction step instead of running it."""


def _scope(method: str) -> str:
    """Where a method's results are kept: per method and per calling identity."""
    return f"{method}|{caller().uri}"


def _request_id(request: Message) -> str:
    keyed: _Keyed = request  # type: ignore[assignment]
    return keyed.request_id


async def served_once(
    store: Store,
    method: str,
    request: Message,
    response_type: type[M],
    step: Callable[[], Awaitable[M]],
) -> M:
    """A mutating RPC's response, the step run at most once per (method, caller, request_id).

    :meth:`Store.once_async` in the scope every service uses; for a servicer
    method that must check something before the stored result is looked up.
    """
    return await store.once_async(
        _scope(method), _request_id(request), request, response_type, step
    )


def idempotent(response_type: type[M]) -> Callable[[AsyncHandler[S, R, M]], AsyncHandler[S, R, M]]:
    """Serve a servicer method at most once per (method, caller, request_id).

    The method's body runs only when no result is kept for the request; it may
    call other nodes and make its own transactions (each safe to redo); its
    response is then kept and replayed to a retry (:meth:`Store.once_async`).
    """

    def wrap(method: AsyncHandler[S, R, M]) -> AsyncHandler[S, R, M]:
        @functools.wraps(method)
        async def serve(self: S, request: R, context: Any) -> M:
            return await served_once(
                self._store,
                method.__name__,
                request,
                response_type,
                lambda: method(self, request, context),
            )

        return serve

    return wrap


def idempotent_transaction(
    response_type: type[M],
) -> Callable[[StepHandler[S, R, M]], AsyncHandler[S, R, M]]:
    """Like :func:`idempotent` for a method whose work is one transaction.

    The method returns the step (a function of the connection) instead of
    running it; the step and the kept result commit together
    (:meth:`Store.once`).
    """

    def wrap(method: StepHandler[S, R, M]) -> AsyncHandler[S, R, M]:
        @functools.wraps(method)
        async def serve(self: S, request: R, context: Any) -> M:
            step = method(self, request, context)
            return await self._store.once(
                _scope(method.__name__), _request_id(request), request, response_type, step
            )

        return serve

    return wrap
