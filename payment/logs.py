"""Structured logs: JSON lines when not on a terminal, one canonical line per RPC.

Secrets are removed by processors, not by convention: any field whose name
says it holds a secret is replaced, at any depth, and any run of 12-19 digits
(a card or account number) is masked in the rendered line, wherever it is.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

__all__ = [
    "REDACTED",
    "configure_logging",
    "drop_secret_fields",
    "get_logger",
    "mask_rendered",
]

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


def configure_logging(
    *,
    stream: TextIO | None = None,
    level: int = logging.INFO,
    json: bool | None = None,
    **bound: Any,
) -> None:
    """Configure structlog for this process; bound fields (node=...) go on every line."""
    stream = stream or sys.stderr
    use_json = json if json is not None else not stream.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            drop_secret_fields,
            renderer,
            mask_rendered,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    if bound:
        structlog.contextvars.bind_contextvars(**bound)


def get_logger(name: str) -> Any:
    """A structlog logger for a module."""
    return structlog.get_logger(name)
