"""Secrets are removed from logs by the processor, whatever the caller passes."""

from __future__ import annotations

import io
import json

from payment.logs import REDACTED, configure_logging, get_logger


def test_secret_fields_and_instrument_like_numbers_never_reach_the_log() -> None:
    stream = io.StringIO()
    configure_logging(stream=stream, json=True, node="alfa")
    get_logger("t").info(
        "authorize",
        code="123456",
        card_number="4000001234567899",
        note="paid with 4000 0012 3456 7899 today",
        nested={"instrument": {"number": "ALFA00000001"}, "amount": 1050},
        order_id="5f2b9c1e",
    )
    line = stream.getvalue().strip()
    event = json.loads(line)
    assert "123456" not in line and "4000001234567899" not in line and "0012 3456" not in line
    assert "ALFA00000001" not in line
    assert event["code"] == REDACTED and event["card_number"] == REDACTED
    assert event["nested"]["instrument"] == REDACTED
    assert event["nested"]["amount"] == 1050
    assert event["order_id"] == "5f2b9c1e" and event["node"] == "alfa"
