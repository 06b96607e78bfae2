"""Structured logs: JSON lines when not on a terminal, one canonical line per RPC.

Secrets are removed by a processor, not by convention: any field whose name
says it holds a secret is replaced, and any run of 12-19 digits (a card or
account number) in any string is masked, wherever it appears in the event.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["REDACTED", "configure_logging", "get_logger", "redact_secrets"]

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


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _mask(value)
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in SECRET_FIELDS else _scrub(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: drop secret fields and mask instrument-like digit runs."""
    for key in list(event):
        if key.lower() in SECRET_FIELDS:
            event[key] = REDACTED
        else:
            event[key] = _scrub(event[key])
    return event


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
            redact_secrets,
            renderer,
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
