"""Notifications: a transactional outbox served as a resumable server stream.

A node writes an event with :func:`emit` inside the same transaction as the
state change it announces. :class:`NotificationServicer` streams to each
subscriber the events addressed to its certificate identity, after the
sequence number it asks for, then waits for new ones. A subscription that is
accepted answers its headers at once (``paynet-subscribed-after`` names the
sequence it resumes after), so a subscriber knows it is live before the first
event. A negative sequence is refused (FIELD_INVALID), and so is one beyond the
subscriber's last event (OUT_OF_RANGE / CURSOR_BEYOND_END, with ``last_sequence``):
no event can ever come after it, and a stream that waited for one would hold
a slot of the node for ever. :func:`follow` is the subscriber side: it
reconnects with backoff and resumes from the last sequence seen, so delivery
is at least once; callers deduplicate by event id.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from functools import partial

import grpc
from interbank.v1 import notification_pb2, notification_pb2_grpc

from payment import errors
from payment.clock import now, to_iso
from payment.identity import caller
from payment.logs import get_logger
from payment.storage import Store

__all__ = ["SUBSCRIBED_HEADER", "NotificationServicer", "OutboxWatch", "emit", "follow"]

_log = get_logger("paynet.notifications")
_BATCH = 256
"""Most events a subscriber reads from the store at once."""
_SCAN = 4096
"""Most events the watch reads at once, for all recipients."""
_WATCH_TIMEOUT_S = 1.0
"""The watch reads the outbox at least this often, commits or not."""
SUBSCRIBED_HEADER = "paynet-subscribed-after"
"""Initial metadata of an accepted subscription: the sequence it resumes after."""
_FINAL = frozenset(
    {
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)
"""Refusals :func:`follow` raises: subscribing again the same way would be refused again."""


def emit(
    conn: sqlite3.Connection, recipient: str, event: notification_pb2.SubscribeResponse
) -> str:
    """Queue an event for recipient (a SPIFFE id) in the caller's transaction.

    Sets event_id (unless given) and occurred_at; sequence is assigned by the
    outbox. Returns the event id.
    """
    event.event_id = event.event_id or str(uuid.uuid4())
    moment = now()
    event.occurred_at.FromDatetime(moment)
    conn.execute(
        "INSERT INTO outbox (event_id, recipient, occurred_at, event) VALUES (?, ?, ?, ?)",
        (event.event_id, recipient, to_iso(moment), event.SerializeToString()),
    )
    return event.event_id


Rows = list[tuple[int, bytes]]
"""Outbox rows as (sequence, serialized event), in sequence order."""


def _events_after(conn: sqlite3.Connection, *, recipient: str, after: int) -> tuple[Rows, int]:
    """Up to _BATCH of recipient's events after a sequence, and the outbox sequence they
    were read up to.

    The last sequence is read first and the events only up to it: each statement
    sees the store as of its own start, so an event committed between two reads
    would otherwise count as read (in the sequence) without having been (in the
    rows), and a subscriber waiting for what comes after that sequence would
    never get it.
    """
    last = int(
        conn.execute(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)"
        ).fetchone()[0]
    )
    rows = conn.execute(
        "SELECT sequence, event FROM outbox WHERE recipient = ? AND sequence > ?"
        " AND sequence <= ? ORDER BY sequence LIMIT ?",
        (recipient, after, last, _BATCH),
    ).fetchall()
    return [(int(seq), bytes(blob)) for seq, blob in rows], last


def _last_sequence(conn: sqlite3.Connection, *, recipient: str) -> int:
    """The sequence of recipient's last event, 0 if it has none."""
    row = conn.execute(
        "SELECT coalesce(max(sequence), 0) FROM outbox WHERE recipient = ?", (recipient,)
    ).fetchone()
    return int(row[0])


def _all_after(conn: sqlite3.Connection, *, after: int) -> list[tuple[int, str, bytes]]:
    """Up to _SCAN of every recipient's events after a sequence."""
    rows = conn.execute(
        "SELECT sequence, recipient, event FROM outbox WHERE sequence > ? ORDER BY sequence"
        " LIMIT ?",
        (after, _SCAN),
    ).fetchall()
    return [(int(seq), str(recipient), bytes(blob)) for seq, recipient, blob in rows]


@dataclass(eq=False)
class _Waiter:
    after: int
    handed: asyncio.Future[tuple[Rows, int] | None]


class OutboxWatch:
    """One reader of a store's outbox for all the subscribers waiting on it.

    After each commit it reads the new events once, for every recipient,
    and hands each waiting subscriber its own; a subscriber whose recipient
    got nothing is not woken and reads nothing. So a commit costs one read
    however many subscribers follow the node. It runs while anyone waits.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._scanned: int | None = None
        """The outbox sequence read up to; None while nobody waits."""
        self._waiting: dict[str, set[_Waiter]] = {}
        self._task: asyncio.Task[None] | None = None

    async def wait(
        self, recipient: str, *, after: int, read_up_to: int, timeout: float | None = None
    ) -> tuple[Rows, int] | None:
        """recipient's events after sequence after, once there are some.

        read_up_to is the outbox's last sequence when the caller last had
        all of recipient's events up to it. Returns the events with the
        sequence the outbox was read up to for them; or None when timeout
        passes, or when the watch has already read past read_up_to: then
        the caller reads the store itself.
        """
        if self._scanned is None:
            self._scanned = read_up_to
        elif self._scanned > read_up_to:
            return None
        waiter = _Waiter(after, asyncio.get_running_loop().create_future())
        waiting = self._waiting.setdefault(recipient, set())
        waiting.add(waiter)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name=f"outbox-{self._store.path.stem}")
        try:
            return await asyncio.wait_for(waiter.handed, timeout)
        except TimeoutError:
            return None
        finally:
            waiting.discard(waiter)
            if not waiting:
                self._waiting.pop(recipient, None)

    async def _watch(self) -> None:
        try:
            while self._waiting and not self._store.closed:
                commits = self._store.commits
                assert self._scanned is not None
                rows = await self._store.read(partial(_all_after, after=self._scanned))
                if rows:
                    self._scanned = rows[-1][0]
                    self._hand_out(rows)
                if len(rows) < _SCAN:
                    await self._store.wait_for_commit(after=commits, timeout=_WATCH_TIMEOUT_S)
        except Exception as exc:
            _log.error(
                "outbox.watch_failed", store=self._store.path.name, error_type=type(exc).__name__
            )
        finally:
            self._scanned = None
            self._release()

    def _release(self) -> None:
        """Let go of whoever still waits: the node is stopping, or they read the store."""
        stopping = errors.Unavailable(
            "NODE_STOPPING",
            "the node is stopping: subscribe again with the last sequence processed to resume",
        )
        for waiting in self._waiting.values():
            for waiter in waiting:
                if waiter.handed.done():
                    continue
                if self._store.closed:
                    waiter.handed.set_exception(stopping)
                else:
                    waiter.handed.set_result(None)

    def _hand_out(self, rows: list[tuple[int, str, bytes]]) -> None:
        by_recipient: dict[str, Rows] = {}
        for seq, recipient, blob in rows:
            if recipient in self._waiting:
                by_recipient.setdefault(recipient, []).append((seq, blob))
        for recipient, mine in by_recipient.items():
            for waiter in self._waiting[recipient]:
                if waiter.handed.done():
                    continue
                handed = [(seq, blob) for seq, blob in mine if seq > waiter.after]
                if handed:
                    waiter.handed.set_result((handed, rows[-1][0]))


class NotificationServicer(notification_pb2_grpc.NotificationServiceServicer):
    """Serves Subscribe from a store's outbox, filtered to the caller's identity.

    A subscriber reads the store for its backlog; once it has caught up it
    waits on the store's one :class:`OutboxWatch` for what commits next.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._watch = OutboxWatch(store)

    async def Subscribe(
        self, request: notification_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[notification_pb2.SubscribeResponse]:
        recipient = caller().uri
        if request.after_sequence < 0:
            raise errors.InvalidArgument(
                "FIELD_INVALID",
                "after_sequence must be 0 (from the first event) or the last sequence processed",
                field="after_sequence",
            )
        cursor = request.after_sequence
        if cursor > 0:
            # Sequences grow for ever, so a cursor is one of the recipient's own
            # events; beyond the last of them it names nothing that exists.
            last = await self._store.read(partial(_last_sequence, recipient=recipient))
            if cursor > last:
                raise errors.OutOfRange(
                    "CURSOR_BEYOND_END",
                    f"after_sequence {cursor} is beyond your last event ({last}); pass the "
                    "sequence of the last event you processed, or 0 for all of them",
                    field="after_sequence",
                    last_sequence=last,
                )
        await context.send_initial_metadata(((SUBSCRIBED_HEADER, str(cursor)),))
        handed: tuple[Rows, int] | None = None
        while True:
            if handed is None:
                handed = await self._store.read(
                    partial(_events_after, recipient=recipient, after=cursor)
                )
            rows, read_up_to = handed
            for sequence, blob in rows:
                event = notification_pb2.SubscribeResponse.FromString(blob)
                event.sequence = sequence
                yield event
                cursor = sequence
            if len(rows) >= _BATCH:
                handed = None  # a backlog: read on
                continue
            handed = await self._watch.wait(recipient, after=cursor, read_up_to=read_up_to)


async def follow(
    stub: notification_pb2_grpc.NotificationServiceStub,
    after_sequence: int = 0,
    *,
    max_backoff_s: float = 5.0,
) -> AsyncGenerator[notification_pb2.SubscribeResponse, None]:
    """Events from a node, forever: reconnects with jittered backoff and resumes.

    Yields each event once per delivery; a reconnect never skips an event but
    may repeat none, since it resumes strictly after the last sequence yielded.
    A refusal that resubscribing cannot cure (an invalid or out-of-range cursor,
    a caller the node does not let in) is raised. A caller that stops before the
    end closes it (``contextlib.aclosing``), which ends the stream on the node.
    """
    cursor = after_sequence
    backoff = 0.1
    while True:
        call = stub.Subscribe(notification_pb2.SubscribeRequest(after_sequence=cursor))
        try:
            async for event in call:
                backoff = 0.1
                cursor = event.sequence
                yield event
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _FINAL:
                raise
            _log.info("subscription.reconnecting", status=exc.code().name, after_sequence=cursor)
        finally:
            # A follower that stops (closes this generator, or is cancelled) ends the
            # stream at once: left open, it holds one of the connection's streams and
            # one of the caller's calls on the node until the channel closes.
            call.cancel()
        await asyncio.sleep(backoff * (0.5 + random.random()))
        backoff = min(backoff * 2, max_backoff_s)
