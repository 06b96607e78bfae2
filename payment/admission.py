"""Admission: how many calls one caller may have in progress on a node.

HTTP/2 bounds the streams of one connection (``[limits] max_concurrent_streams``):
a client's further calls on that connection wait for a free stream. A caller
can open more connections, so a node also bounds each caller's calls in
progress over all of them: :class:`CallLimit`, a server interceptor placed
after :class:`~payment.interceptors.PeerAuthorization`, because it counts by the
verified certificate identity. A call beyond the limit is refused at once,
before any of its work runs, with RESOURCE_EXHAUSTED /
TOO_MANY_CONCURRENT_CALLS and ``retry_after_seconds``; the caller's other calls
and every other caller are unaffected. A stream (a notification subscription,
a device inbox) counts while it is open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from payment import errors
from payment.identity import current_caller
from payment.interceptors import MethodWrapper, Stream, Unary, abort_with, rewrap

__all__ = ["RETRY_AFTER_SECONDS", "CallLimit"]

RETRY_AFTER_SECONDS = 1
"""What a refused caller is told to wait: a slot frees as soon as one of its calls ends."""


class CallLimit(MethodWrapper):
    """At most limit calls in progress per caller on this node, over all its connections.

    The caller is the identity :class:`~payment.interceptors.PeerAuthorization`
    verified (its SPIFFE id), so a participant's calls count together whatever
    connection or certificate generation they come on. Memory is bounded by
    the callers with a call in progress.
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self._in_progress: dict[str, int] = {}

    def _enter(self, caller: str) -> None:
        count = self._in_progress.get(caller, 0)
        if count >= self.limit:
            raise errors.ResourceExhausted(
                "TOO_MANY_CONCURRENT_CALLS",
                f"{caller} has {count} calls in progress on this node, the most it may have; "
                f"retry in {RETRY_AFTER_SECONDS} s, or wait for a call to end",
                limit=self.limit,
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        self._in_progress[caller] = count + 1

    def _leave(self, caller: str) -> None:
        count = self._in_progress.get(caller, 0) - 1
        if count > 0:
            self._in_progress[caller] = count
        else:
            self._in_progress.pop(caller, None)

    async def _admit(self, context: grpc.aio.ServicerContext) -> str:
        identity = current_caller.get(None)
        # Without an identity (no PeerAuthorization before it) the connection is the caller.
        caller = identity.uri if identity is not None else context.peer()
        try:
            self._enter(caller)
        except errors.PaynetError as exc:
            await abort_with(context, exc)
        return caller

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler | None
    ) -> grpc.RpcMethodHandler | None:
        def unary(behavior: Unary) -> Unary:
            async def limited(request: Any, context: grpc.aio.ServicerContext) -> Any:
                caller = await self._admit(context)
                try:
                    return await behavior(request, context)
                finally:
                    self._leave(caller)

            return limited

        def stream(behavior: Stream) -> Stream:
            async def limited(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                caller = await self._admit(context)
                try:
                    async for item in behavior(request, context):
                        yield item
                finally:
                    self._leave(caller)

            return limited

        return rewrap(handler, unary, stream)
