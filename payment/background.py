"""Periodic jobs of a node: sweeps, retries and reconciliations that run until it stops."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from payment.logs import get_logger

__all__ = ["Background"]

_log = get_logger("paynet.background")


class Background:
    """Periodic jobs that run until cancelled; a failing round is logged, not fatal."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def every(self, interval_s: float, name: str, job: Callable[[], Awaitable[object]]) -> None:
        """Run job now and then every interval_s after each round ends."""

        async def loop() -> None:
            while True:
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    _log.warning("background.failed", job=name, error_type=type(exc).__name__)
                await asyncio.sleep(interval_s)

        self._tasks.append(asyncio.create_task(loop(), name=name))

    async def stop(self) -> None:
        """Cancel every job and wait until each has ended."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
