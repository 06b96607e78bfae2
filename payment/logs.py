"""Structured logs: JSON lines when not on a terminal, one canonical line per RPC.

Secrets are removed by processors, not by convention: any field whose name
says it holds a secret is replaced, at any depth, and any run of 12-19 digits
(a card or account number) is masked in the rendered line, wherever it is.

A line is bounded whatever its fields hold, since callers fill some of them
(a request_id, say): every string keeps at most :data:`MAX_VALUE_CHARS`, at any
depth and in keys too (bytes and other objects by their repr), an exception's
text :data:`MAX_EXCEPTION_CHARS` (its start and its end), nesting
:data:`MAX_DEPTH` levels; a line still over :data:`MAX_LINE_CHARS` (too many
fields) keeps only its event, level, time, node, method, peer and status. A cut
is marked where it was made: ``…[cut 69744 chars]``.

A process logging to an OS file or pipe (a node, to its standard error) writes
through :class:`payment.logsink.LineSink`, so a reader that stops reading
never blocks it.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import structlog

from payment.logsink import LineSink

__all__ = [
    "MAX_DEPTH",
    "MAX_EXCEPTION_CHARS",
    "MAX_LINE_CHARS",
    "MAX_VALUE_CHARS",
    "REDACTED",
    "bound_values",
    "configure_logging",
    "drop_secret_fields",
    "get_logger",
    "mask_rendered",
]

MAX_VALUE_CHARS = 256
"""Longest string a log field keeps, at any depth (bytes and other objects by their repr)."""
MAX_EXCEPTION_CHARS = 8 * 1024
"""Longest exception or stack text a line keeps: its start and its end, the middle cut."""
MAX_DEPTH = 8
"""Deepest nesting of dicts and lists a line keeps."""
MAX_LINE_CHARS = 16 * 1024
"""Longest rendered line; a longer one keeps only the fields in _LINE_KEPT."""
_LONG_TEXT_FIELDS = frozenset({"exception", "stack"})
_LINE_KEPT = ("timestamp", "level", "event", "node", "logger", "method", "peer", "status")
_NUMBER_CHARS = "0123456789 "

REDACTED = "[redacted]"
SECRET_FIELDS = frozenset(
    {
        "code",
        "otp",
        "one_time_code",
        "instrument",
        "number",
        "card_number",
        "account_number",
        "pan",
        "private_key",
        "key",
        "signing_key",
        "secret",
        "password",
        "sealed_instruction",
        "instruction",
        "dual_signature",
        "seed",
    }
)
_DIGIT_RUN = re.compile(r"\d[\d ]{10,22}\d")


def _mask(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        return REDACTED if 12 <= len(digits) <= 19 else match.group()

    return _DIGIT_RUN.sub(repl, text)


def _drop_secret_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in SECRET_FIELDS else _drop_secret_fields(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_drop_secret_fields(v) for v in value)
    return value


def drop_secret_fields(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace every field named as a secret, at any depth."""
    for key, value in event.items():
        event[key] = REDACTED if key.lower() in SECRET_FIELDS else _drop_secret_fields(value)
    return event


def mask_rendered(_logger: Any, _method: str, line: Any) -> Any:
    """structlog processor after the renderer: mask instrument-like digit runs in the line.

    One pass over the rendered line masks them wherever they are (a message,
    a nested value, an exception's text) for the price of one regex search.
    """
    if isinstance(line, str) and _DIGIT_RUN.search(line):
        return _mask(line)
    return line


def _cut(text: str, limit: int) -> str:
    """text, or its first limit characters and a marker saying how many were cut."""
    if len(text) <= limit:
        return text
    # Never keep part of a digit run: masking hides a whole card number, not a part.
    head = text[:limit].rstrip(_NUMBER_CHARS)
    return f"{head}…[cut {len(text) - len(head)} chars]"


def _cut_middle(text: str, limit: int) -> str:
    """text, or its start and its end with a marker between (a traceback's ends say most)."""
    if len(text) <= limit:
        return text
    head = text[: limit // 2].rstrip(_NUMBER_CHARS)
    tail = text[-(limit // 2) :].lstrip(_NUMBER_CHARS)
    return f"{head}…[cut {len(text) - len(head) - len(tail)} chars]…{tail}"


def _bounded(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _cut(value, MAX_VALUE_CHARS)
    if depth >= MAX_DEPTH:
        return f"…[cut: nested deeper than {MAX_DEPTH}]"
    if isinstance(value, dict):
        return {_bounded(k, depth): _bounded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_bounded(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_bounded(v, depth + 1) for v in value)
    # bytes, sets and any other object: as the renderers would show it, their repr
    return _cut(repr(value), MAX_VALUE_CHARS)


def bound_values(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: cut every value and key to its maximum, at any depth, marking it."""
    return {
        _cut(key, MAX_VALUE_CHARS): _cut_middle(value, MAX_EXCEPTION_CHARS)
        if key in _LONG_TEXT_FIELDS and isinstance(value, str)
        else _bounded(value, 0)
        for key, value in event.items()
    }


class _BoundedRenderer:
    """Renders a line, masks it, and replaces one over MAX_LINE_CHARS by its main fields."""

    def __init__(self, renderer: Callable[..., Any]) -> None:
        self._renderer = renderer

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        # A copy: the console renderer pops the fields it prints.
        line = mask_rendered(logger, method, self._renderer(logger, method, dict(event)))
        if len(line) <= MAX_LINE_CHARS:
            return line
        kept = {key: event[key] for key in _LINE_KEPT if key in event}
        kept["cut"] = f"…[cut {len(line)} chars: the line was over {MAX_LINE_CHARS}]"
        return mask_rendered(logger, method, self._renderer(logger, method, kept))[:MAX_LINE_CHARS]


def _has_descriptor(stream: TextIO) -> bool:
    try:
        stream.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
    return True


_sink: LineSink | None = None


def configure_logging(
    *,
    stream: TextIO | None = None,
    level: int = logging.INFO,
    json: bool | None = None,
    background: bool | None = None,
    **bound: Any,
) -> None:
    """Configure structlog for this process; bound fields (node=...) go on every line.

    background: write through a :class:`payment.logsink.LineSink` (a bounded queue
    drained by a writer thread, so logging never blocks on a full pipe); by default
    when the stream is an OS file or pipe, not when it is in memory.
    """
    global _sink  # one process, one log configuration: structlog's own is global too
    stream = stream or sys.stderr
    use_json = json if json is not None else not stream.isatty()
    renderer = _BoundedRenderer(
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    if _sink is not None:
        _sink.close()
        _sink = None
    logger_factory: Callable[..., Any] = structlog.PrintLoggerFactory(stream)
    if background if background is not None else _has_descriptor(stream):
        _sink = LineSink(stream, dropped_notice=_dropped_notice(renderer, bound))
        logger_factory = _sink_factory(_sink)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            bound_values,
            drop_secret_fields,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    if bound:
        structlog.contextvars.bind_contextvars(**bound)


def _sink_factory(sink: LineSink) -> Callable[..., LineSink]:
    def factory(*_args: Any) -> LineSink:
        return sink

    return factory


def _dropped_notice(renderer: _BoundedRenderer, bound: dict[str, Any]) -> Callable[[int], str]:
    """Renders the line that reports how many lines a full sink dropped."""
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)

    def notice(count: int) -> str:
        event: MutableMapping[str, Any] = {"event": "log.dropped", "count": count, **bound}
        event = drop_secret_fields(
            None, "warning", bound_values(None, "warning", stamp(None, "warning", event))
        )
        line = renderer(None, "warning", {**event, "level": "warning"})
        return str(line)

    return notice


def get_logger(name: str) -> Any:
    """A structlog logger for a module."""
    return structlog.get_logger(name)
