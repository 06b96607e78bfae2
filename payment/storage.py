"""The durable store every node keeps: SQLite in WAL mode with full sync.

One :class:`Store` per node owns one connection on one dedicated thread, so
handlers never block the event loop and writes are serialized. All writes of
one business step go through :meth:`Store.transaction`: they commit together
or not at all. Two tables are common to every store:

- ``idempotency``: the result of each (scope, request_id), with a hash of the
  request, written in the same transaction as the effect;
- ``outbox``: notification events, written in the same transaction as the
  state change they announce, and streamed by sequence number.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import Message

from payment import errors
from payment.clock import now_iso

__all__ = ["IdempotencyRecord", "Store", "read_snapshot", "request_hash"]

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
        conn: sqlite3.Connection, scope: str, request_id: str, digest: bytes
    ) -> bytes | None:
        """The stored response for (scope, request_id), or None if there is none.

        Raises AlreadyExists(IDEMPOTENCY_KEY_REUSED) if the key was used for
        different content.
        """
        row = conn.execute(
            "SELECT request_hash, response FROM idempotency WHERE scope = ? AND request_id = ?",
            (scope, request_id),
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
        """Store a result (in the same transaction as its effect)."""
        conn.execute(
            "INSERT INTO idempotency (scope, request_id, request_hash, response, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (scope, request_id, digest, response, now_iso()),
        )


class Store:
    """A node's SQLite database, used from asyncio through one worker thread."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self._schema = schema
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"store-{path.stem}")
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._committed = asyncio.Condition()

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

    async def close(self) -> None:
        """Close the connection and the worker thread."""
        if self._conn is not None:
            conn = self._conn
            await self._call(conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    async def transaction(self, step: Callable[[sqlite3.Connection], T]) -> T:
        """Run step in one write transaction: all of it commits, or none of it."""

        def run() -> T:
            conn = self._require()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = step(conn)
                conn.execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT (disk full, I/O error): leave no open transaction.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        result = await self._call(run)
        async with self._committed:
            self._committed.notify_all()
        return result

    async def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only query."""
        return await self._call(lambda: query(self._require()))

    async def wait_for_commit(self, timeout: float) -> None:
        """Wait until another write commits, or timeout passes."""
        async with self._committed:
            try:
                await asyncio.wait_for(self._committed.wait(), timeout)
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
        if not request_id:
            raise errors.InvalidArgument(
                "REQUEST_ID_MISSING", "request_id is required: choose a unique id per request"
            )
        digest = request_hash(request)

        def run(conn: sqlite3.Connection) -> M:
            stored = IdempotencyRecord.lookup(conn, scope, request_id, digest)
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
        if not request_id:
            raise errors.InvalidArgument(
                "REQUEST_ID_MISSING", "request_id is required: choose a unique id per request"
            )
        digest = request_hash(request)
        async with self.exclusive(f"{scope}\x00{request_id}"):
            stored = await self.read(
                lambda conn: IdempotencyRecord.lookup(conn, scope, request_id, digest)
            )
            if stored is not None:
                return response_type.FromString(stored)
            response = await step()
            payload = response.SerializeToString(deterministic=True)
            await self.transaction(
                lambda conn: IdempotencyRecord.remember(conn, scope, request_id, digest, payload)
            )
            return response

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"store {self.path} is not open")
        return self._conn

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
