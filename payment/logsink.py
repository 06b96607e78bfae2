"""A log sink that never blocks its caller: lines go through a bounded queue to a writer thread.

A node logs to its standard output, a pipe read by whoever started it. When that
reader stops reading (paused, stuck, gone), the pipe fills after 64 KiB and a
plain write blocks the event loop, and the node with it: no call is answered and
no signal handler runs. :class:`LineSink` leaves that wait to its writer
thread. While the queue holds :data:`QUEUE_CHARS` of lines, further lines are
dropped and counted; the next line that gets through is preceded by a
``log.dropped`` line with the count. :meth:`LineSink.close`, run at exit, gives
the writer :data:`FLUSH_TIMEOUT_S` to write what is queued, so a clean stop keeps
its last lines and a stop with nobody reading still ends.
"""

from __future__ import annotations

import atexit
import collections
import os
import threading
from collections.abc import Callable
from typing import IO, Any

__all__ = ["FLUSH_TIMEOUT_S", "QUEUE_CHARS", "LineSink"]

QUEUE_CHARS = 1024 * 1024
"""Characters of lines a sink holds for its writer; a line that does not fit is dropped."""
FLUSH_TIMEOUT_S = 3.0
"""How long closing (at exit) waits for the writer to write what is queued."""


class LineSink:
    """A structlog logger writing each rendered line to an OS file from its own thread.

    The writer writes to the stream's file descriptor, past any buffer of the
    stream's own (none holds a lock it waits in). dropped_notice renders the
    line that reports a count of dropped lines.
    """

    def __init__(
        self,
        stream: IO[Any],
        *,
        dropped_notice: Callable[[int], str],
        capacity: int = QUEUE_CHARS,
    ) -> None:
        stream.flush()
        self._stream = stream  # held, so its descriptor stays open
        self._fd = stream.fileno()
        self._notice = dropped_notice
        self._capacity = capacity
        self._lines: collections.deque[str] = collections.deque()
        self._queued = 0
        self._pending_drops = 0
        self._dropped = 0
        self._writing = False
        self._closed = False
        self._changed = threading.Condition()
        self._writer = threading.Thread(target=self._write_lines, name="log-writer", daemon=True)
        self._writer.start()
        atexit.register(self.close)

    @property
    def dropped(self) -> int:
        """Lines dropped so far: the queue was full, or the descriptor refused them."""
        return self._dropped

    def msg(self, message: str) -> None:
        """Queue one line, or drop and count it when the queue is full."""
        line = message + "\n"
        with self._changed:
            if self._closed or self._queued + len(line) > self._capacity:
                self._pending_drops += 1
                self._dropped += 1
                return
            if self._pending_drops:
                notice = self._notice(self._pending_drops) + "\n"
                self._pending_drops = 0
                self._lines.append(notice)
                self._queued += len(notice)
            self._lines.append(line)
            self._queued += len(line)
            self._changed.notify_all()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg

    def flush(self, timeout: float) -> bool:
        """Wait until every queued line is written; False if timeout passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._lines and not self._writing, timeout)

    def close(self, timeout: float = FLUSH_TIMEOUT_S) -> None:
        """Write what is queued (waiting at most timeout), then stop; later lines are dropped."""
        atexit.unregister(self.close)
        self.flush(timeout)
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _write_lines(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._lines) or self._closed)
                if not self._lines:
                    return
                batch = list(self._lines)
                self._lines.clear()
                self._queued = 0
                self._writing = True
            try:
                _write_all(self._fd, "".join(batch).encode("utf-8", "backslashreplace"))
            except OSError:
                with self._changed:
                    self._pending_drops += len(batch)
                    self._dropped += len(batch)
            with self._changed:
                self._writing = False
                self._changed.notify_all()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
