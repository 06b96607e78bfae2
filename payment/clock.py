"""Time, in one place: UTC, ISO-8601 text in stores, Timestamps on the wire.

A node's business clock (:func:`now`) may be set ahead or behind the system
clock by ``PAYNET_TIME_TRAVEL_SECONDS`` in its environment, read once at
start, after GNU Taler's ``--timetravel``: to try what a participant does
when days have passed (a stale cheque, an expired key) without waiting, or
with a clock that is off. TLS certificate validity is judged by the system
clock, never by this one.
"""

from __future__ import annotations

import datetime as dt
import os

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["TIME_TRAVEL_ENV", "from_iso", "now", "now_iso", "timestamp", "to_iso"]

TIME_TRAVEL_ENV = "PAYNET_TIME_TRAVEL_SECONDS"
"""The environment variable holding a node's clock offset in seconds (may be negative)."""
_OFFSET = dt.timedelta(seconds=float(os.environ.get(TIME_TRAVEL_ENV, "0") or 0))


def now() -> dt.datetime:
    """The current UTC time (plus the node's time travel, if any)."""
    return dt.datetime.now(dt.UTC) + _OFFSET


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
