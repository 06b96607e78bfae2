"""A log line is bounded whatever its fields hold, secrets stay masked, and a process
whose log output is not read never waits on it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from payment.logs import (
    MAX_EXCEPTION_CHARS,
    MAX_LINE_CHARS,
    MAX_VALUE_CHARS,
    REDACTED,
    configure_logging,
    get_logger,
)
from payment.logsink import QUEUE_CHARS


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(stream=stream, json=True, node="shop")
    yield stream
    configure_logging(stream=io.StringIO())


def _event(stream: io.StringIO) -> tuple[str, dict[str, object]]:
    line = stream.getvalue().strip()
    assert "\n" not in line
    return line, json.loads(line)


def test_a_70000_character_request_id_is_cut_with_a_marker_and_secrets_stay_masked(
    stream: io.StringIO,
) -> None:
    get_logger("t").info(
        "rpc",
        method="/interbank.v1.OrderService/CreateOrder",
        request_id="r" * 70_000,
        card_number="4000001234567899",
        note="paid with 4000001234567899 " + "n" * 70_000,
        straddling="s" * (MAX_VALUE_CHARS - 6) + "4000 0012 3456 7899" + "s" * 1000,
    )
    line, event = _event(stream)
    assert len(line) < MAX_LINE_CHARS
    assert event["request_id"] == "r" * MAX_VALUE_CHARS + f"…[cut {70_000 - MAX_VALUE_CHARS} chars]"
    assert event["card_number"] == REDACTED
    assert str(event["note"]).startswith(f"paid with {REDACTED} nnn")
    assert "4000" not in line  # not the whole number, nor the part before a cut
    assert event["method"] == "/interbank.v1.OrderService/CreateOrder" and event["node"] == "shop"


def test_values_are_cut_at_any_depth_and_bytes_by_their_repr(stream: io.StringIO) -> None:
    nested: dict[str, object] = {}
    inner = nested
    for _ in range(40):
        inner["deeper"] = {}
        inner = inner["deeper"]  # type: ignore[assignment]
    get_logger("t").info(
        "batch",
        entries=[{"request_id": "e" * 50_000, "k" * 5000: 1}],
        payload=b"\x00" * 50_000,
        nested=nested,
    )
    line, event = _event(stream)
    assert len(line) < 3 * 1024
    entry = event["entries"][0]  # type: ignore[index]
    assert entry["request_id"].endswith(f"…[cut {50_000 - MAX_VALUE_CHARS} chars]")
    assert "k" * MAX_VALUE_CHARS + f"…[cut {5000 - MAX_VALUE_CHARS} chars]" in entry
    assert str(event["payload"]).startswith("b'\\x00") and "…[cut " in str(event["payload"])
    assert "nested deeper than" in line


def test_an_exception_keeps_its_start_and_end_and_is_cut_in_between(
    stream: io.StringIO,
) -> None:
    try:
        raise ValueError("refused " + "x" * 100_000 + " the end")
    except ValueError:
        get_logger("t").exception("rpc.unexpected_error")
    line, event = _event(stream)
    text = str(event["exception"])
    assert len(line) < MAX_LINE_CHARS
    assert text.startswith("Traceback (most recent call last):")
    assert text.endswith("x the end")
    assert len(text) < MAX_EXCEPTION_CHARS + 100 and "…[cut " in text


def test_a_line_with_too_many_fields_keeps_its_event_level_and_node(
    stream: io.StringIO,
) -> None:
    fields = {f"bank{i}": "b" * 500 for i in range(200)}
    get_logger("t").warning("window.positions_drifted", **fields)
    line, event = _event(stream)
    assert len(line) <= MAX_LINE_CHARS
    assert event["event"] == "window.positions_drifted" and event["level"] == "warning"
    assert event["node"] == "shop" and "timestamp" in event
    assert str(event["cut"]).startswith("…[cut ") and "bank0" not in event


def test_a_log_whose_pipe_is_not_read_drops_lines_counts_them_and_never_blocks() -> None:
    read_end, write_end = os.pipe()
    reader = os.fdopen(read_end, "rb")
    configure_logging(stream=os.fdopen(write_end, "w"), json=True, node="shop")
    log = get_logger("t")
    fields = {name: name * (MAX_VALUE_CHARS - 10) for name in "abcd"}
    lines = 3 * QUEUE_CHARS // 1000  # each over 1,000 chars: three times what the queue holds
    logged = threading.Thread(
        target=lambda: [log.info("rpc", i=i, **fields) for i in range(lines)], daemon=True
    )
    logged.start()
    logged.join(10)
    assert not logged.is_alive(), "logging blocked on a pipe nobody reads"

    received: list[dict[str, object]] = []

    def read() -> None:
        for raw in reader:
            received.append(json.loads(raw))
            if received[-1]["event"] == "last":
                return

    reading = threading.Thread(target=read, daemon=True)
    reading.start()
    deadline = time.monotonic() + 10
    while len(received) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)  # the writer thread drains the queue once the pipe is read
    log.info("last")
    reading.join(10)
    configure_logging(stream=io.StringIO())
    reader.close()

    events = [str(event["event"]) for event in received]
    assert events[-2:] == ["log.dropped", "last"]
    written = events.count("rpc")
    assert 0 < written < lines
    assert received[-2]["count"] == lines - written and received[-2]["node"] == "shop"
    assert received[-2]["level"] == "warning"


def test_a_process_that_ends_cleanly_writes_every_queued_line_first() -> None:
    script = (
        "from payment.logs import configure_logging, get_logger\n"
        "configure_logging(node='shop')\n"
        "for i in range(3000): get_logger('t').info('rpc', i=i)\n"
        "get_logger('t').info('node.stopped')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    events = [json.loads(line)["event"] for line in done.stderr.splitlines()]
    assert events == ["rpc"] * 3000 + ["node.stopped"]
