"""Time, in one place: UTC, ISO-8601 text in stores, Timestamps on the wire."""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["from_iso", "now", "now_iso", "timestamp", "to_iso"]


def now() -> dt.datetime:
    """The current UTC time."""
    return dt.datetime.now(dt.UTC)


def to_iso(moment: dt.datetime) -> str:
    """A UTC time as sortable ISO-8601 text (microseconds, +00:00)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    """The current UTC time as ISO-8601 text."""
    return to_iso(now())


def from_iso(text: str) -> dt.datetime:
    """Parse text written by to_iso."""
    return dt.datetime.fromisoformat(text)


def timestamp(moment: dt.datetime | str | None) -> Timestamp | None:
    """A protobuf Timestamp for a datetime or ISO text (None stays None)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = from_iso(moment)
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(dt.UTC))
    return stamp
