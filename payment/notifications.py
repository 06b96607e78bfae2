"""Notifications: a transactional outbox served as a resumable server stream.

A node writes an event with :func:`emit` inside the same transaction as the
state change it announces. :class:`NotificationServicer` streams to each
subscriber the events addressed to its certificate identity, after the
sequence number it asks for, then waits for new ones. A subscription that is
accepted answers its headers at once (``paynet-subscribed-after`` names the
sequence it resumes after), so a subscriber knows it is live before the first
event; a negative sequence is refused (FIELD_INVALID). :func:`follow` is the
subscriber side: it reconnects with backoff and resumes from the last
sequence seen, so delivery is at least once; callers deduplicate by event id.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator
from functools import partial

import grpc
from interbank.v1 import notification_pb2, notification_pb2_grpc

from payment import errors
from payment.clock import now, to_iso
from payment.identity import caller
from payment.logs import get_logger
from payment.storage import Store

__all__ = ["SUBSCRIBED_HEADER", "NotificationServicer", "emit", "follow"]

_log = get_logger("paynet.notifications")
_BATCH = 256
SUBSCRIBED_HEADER = "paynet-subscribed-after"
"""Initial metadata of an accepted subscription: the sequence it resumes after."""


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


def _events_after(
    conn: sqlite3.Connection, *, recipient: str, after: int
) -> list[tuple[int, bytes]]:
    rows = conn.execute(
        "SELECT sequence, event FROM outbox WHERE recipient = ? AND sequence > ?"
        " ORDER BY sequence LIMIT ?",
        (recipient, after, _BATCH),
    ).fetchall()
    return [(int(seq), bytes(blob)) for seq, blob in rows]


class NotificationServicer(notification_pb2_grpc.NotificationServiceServicer):
    """Serves Subscribe from a store's outbox, filtered to the caller's identity."""

    def __init__(self, store: Store, *, poll_s: float = 1.0) -> None:
        self._store = store
        self._poll_s = poll_s

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
        await context.send_initial_metadata(((SUBSCRIBED_HEADER, str(cursor)),))
        while True:
            rows = await self._store.read(partial(_events_after, recipient=recipient, after=cursor))
            for sequence, blob in rows:
                event = notification_pb2.SubscribeResponse.FromString(blob)
                event.sequence = sequence
                yield event
                cursor = sequence
            if len(rows) < _BATCH:
                await self._store.wait_for_commit(self._poll_s)


async def follow(
    stub: notification_pb2_grpc.NotificationServiceStub,
    after_sequence: int = 0,
    *,
    max_backoff_s: float = 5.0,
) -> AsyncIterator[notification_pb2.SubscribeResponse]:
    """Events from a node, forever: reconnects with jittered backoff and resumes.

    Yields each event once per delivery; a reconnect never skips an event but
    may repeat none, since it resumes strictly after the last sequence yielded.
    """
    cursor = after_sequence
    backoff = 0.1
    while True:
        try:
            call = stub.Subscribe(notification_pb2.SubscribeRequest(after_sequence=cursor))
            async for event in call:
                backoff = 0.1
                cursor = event.sequence
                yield event
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
                raise
            _log.info("subscription.reconnecting", status=exc.code().name, after_sequence=cursor)
        await asyncio.sleep(backoff * (0.5 + random.random()))
        backoff = min(backoff * 2, max_backoff_s)
