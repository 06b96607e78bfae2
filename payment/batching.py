"""Batch calls on the private network: many entries per RPC, each answered as if alone.

Client side, a :class:`Coalescer` turns one-at-a-time submissions into batch
calls without a timer: the first entry goes at once, and entries that arrive
while a call is in flight go together in the next one. Under light load every
call carries one entry, as before; under heavy load the calls get fewer and
fuller, which is when their per-call cost matters.

Server side, :func:`answer_each` runs every entry through the same code as the
single-entry RPC and turns each entry's failure into an ``EntryError``, so one
bad entry never fails its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Generic, TypeVar

import grpc
from interbank.v1 import common_pb2

from payment import errors
from payment.logs import get_logger

__all__ = [
    "MAX_BATCH",
    "Coalescer",
    "Coalescers",
    "answer_each",
    "check_batch_size",
    "entry_error",
    "from_entry_error",
]

_log = get_logger("paynet.batching")

MAX_BATCH = 256
"""Most entries in one batch call, the limit every batch RPC enforces."""

Entry = TypeVar("Entry")
Result = TypeVar("Result")
Peer = TypeVar("Peer")


def check_batch_size(count: int, field: str = "entries") -> None:
    """Refuse a batch of no entries, or of more than MAX_BATCH."""
    if not 1 <= count <= MAX_BATCH:
        raise errors.InvalidArgument(
            "BATCH_SIZE_INVALID",
            f"{field} must hold 1 to {MAX_BATCH} entries, not {count}; "
            "split a longer batch into several calls",
            field=field,
            count=count,
        )


def entry_error(error: errors.PaynetError) -> common_pb2.EntryError:
    """An entry's failure as the status and ErrorInfo it would have had alone."""
    return common_pb2.EntryError(
        code=error.code.value[0],
        reason=error.reason,
        message=error.message,
        metadata=error.metadata,
    )


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def from_entry_error(error: common_pb2.EntryError) -> errors.PaynetError:
    """A peer's EntryError as a domain error, code and reason kept: the same error
    :func:`payment.errors.from_rpc_error` makes of the single call's failure."""
    code = _CODES.get(error.code, grpc.StatusCode.UNKNOWN)
    return errors.peer_error(code, error.reason, error.message, error.metadata)


async def answer_each(
    method: str,
    result_type: Callable[..., Result],
    entries: Sequence[Entry],
    handle: Callable[[Entry], Awaitable[object]],
) -> list[Result]:
    """Every entry's result, handled concurrently: ``result_type(report=...)`` or
    ``result_type(error=EntryError)``.

    A batch of no entries or more than MAX_BATCH is refused whole first
    (BATCH_SIZE_INVALID). A domain error is the entry's own answer; anything
    unexpected is logged and answered INTERNAL for that entry alone, which the
    caller retries.
    """
    check_batch_size(len(entries))

    async def one(entry: Entry) -> Result:
        try:
            return result_type(report=await handle(entry))
        except errors.PaynetError as exc:
            return result_type(error=entry_error(exc))
        except Exception as exc:
            _log.error("batch.unexpected_error", method=method, error_type=type(exc).__name__)
            internal = errors.Internal(
                "INTERNAL_ERROR",
                "the server failed unexpectedly on this entry; retry it with the same request_id",
            )
            return result_type(error=entry_error(internal))

    return list(await asyncio.gather(*(one(entry) for entry in entries)))


class Coalescer(Generic[Entry, Result]):
    """Submits entries one at a time and sends them to a peer in batch calls.

    ``send`` makes one batch call and returns one result per entry, in order.
    At most one call is in flight: entries submitted meanwhile wait for it and
    then go together, up to MAX_BATCH per call; one whose submitter was
    cancelled before its call went is left out. If ``send`` raises, or returns
    the wrong number of results, every entry of that call gets the exception.
    """

    def __init__(
        self, send: Callable[[list[Entry]], Awaitable[Sequence[Result]]], name: str
    ) -> None:
        self._send = send
        self._name = name
        self._queue: list[tuple[Entry, asyncio.Future[Result]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, entry: Entry) -> Result:
        """The entry's result, once the batch call carrying it has answered."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((entry, future))
        if self._sender is None:
            self._sender = asyncio.create_task(self._drain(), name=f"coalescer:{self._name}")
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[Entry, asyncio.Future[Result]]] = []
        try:
            while self._queue:
                # An entry whose submitter gave up (cancelled) before it was sent is not sent.
                waiting = [(entry, future) for entry, future in self._queue if not future.done()]
                batch, self._queue = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
                if batch:
                    await self._call(batch)
        finally:
            self._sender = None
            for _, future in batch + self._queue:  # only when cancelled: none may wait forever
                future.cancel()
            self._queue = []

    async def _call(self, batch: list[tuple[Entry, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._send([entry for entry, _ in batch])
            if len(results) != len(batch):
                raise errors.Internal(
                    "BATCH_ANSWER_INVALID",
                    f"{self._name} answered {len(results)} results for {len(batch)} entries",
                )
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


class Coalescers(Generic[Peer, Entry, Result]):
    """One :class:`Coalescer` per peer, opened on the peer's first entry.

    ``send(peer, entries)`` makes one batch call to that peer.
    """

    def __init__(
        self, send: Callable[[Peer, list[Entry]], Awaitable[Sequence[Result]]], name: str
    ) -> None:
        self._send = send
        self._name = name
        self._by_peer: dict[Peer, Coalescer[Entry, Result]] = {}

    async def submit(self, peer: Peer, entry: Entry) -> Result:
        """The entry's result from the peer, once the batch call carrying it has answered."""
        coalescer = self._by_peer.get(peer)
        if coalescer is None:
            coalescer = self._by_peer[peer] = Coalescer(
                partial(self._send, peer), f"{self._name} to {peer}"
            )
        return await coalescer.submit(entry)
