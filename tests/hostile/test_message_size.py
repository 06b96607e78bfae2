"""The message size limit: one byte over ``[limits] max_message_bytes`` is refused, not the limit.

A network whose nodes take at most 64 KiB per message. Every RPC gets the
same request three times: as it is, padded with an unknown field to exactly
the limit (answered as if unpadded: processed, or refused for what it says),
and padded to one byte more (RESOURCE_EXHAUSTED from grpc before any of our
code runs, nothing written). Each node keeps serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.support.cash import denominations

from .catalog import RpcSpec, specs
from .harness import Allowance, Harness, Outcome
from .network import HOSTILE_BUYERS, start_network

LIMIT = 64 * 1024
_PADDING_FIELD = 2**29 - 1  # the largest field number: no contract message uses it


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def padded(payload: bytes, size: int) -> bytes:
    """payload followed by one unknown length-delimited field, size bytes in all."""
    key = _varint((_PADDING_FIELD << 3) | 2)
    length = size - len(payload) - len(key)
    while len(key) + len(_varint(length)) + length + len(payload) > size:
        length -= 1
    data = payload + key + _varint(length) + b"\0" * length
    assert len(data) == size, (len(data), size)
    return data


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """The dev network with a 64 KiB message limit."""
    running = start_network(
        Path(tmp_path_factory.mktemp("small")),
        buyers=HOSTILE_BUYERS,
        max_message_bytes=LIMIT,
        window_seconds=0,
    )
    # alfa makes its denomination keys when first asked (seconds): not within a case.
    asyncio.run(denominations(running.network, "alfa", "alfa"))
    opened = Harness(running)
    yield opened
    opened.close()
    codes = running.stop()
    assert all(code == 0 for code in codes.values()), codes


def test_the_network_file_sets_the_limit(small: Harness) -> None:
    assert small.network.limits.max_message_bytes == LIMIT


def _as_is(outcome: Outcome) -> Allowance:
    # The unpadded request of defaults: a success may write (an empty window opened).
    return Allowance(None if outcome.ok else frozenset())


@pytest.mark.parametrize("spec", specs(), ids=lambda spec: spec.id)
def test_one_byte_over_the_limit_is_refused_and_the_limit_is_not(
    spec: RpcSpec, small: Harness
) -> None:
    request = spec.request_type().SerializeToString()
    plain = small.check(spec.target, request, kind="size", judge=_as_is)

    def same_as_plain(outcome: Outcome) -> Allowance:
        assert (outcome.code, outcome.reason) == (plain.code, plain.reason), (
            f"{spec.method}: {LIMIT} bytes answered {outcome}, unpadded {plain}"
        )
        return _as_is(outcome)

    small.check(spec.target, padded(request, LIMIT), kind="size", judge=same_as_plain)

    def too_big(outcome: Outcome) -> Allowance:
        assert outcome.code is grpc.StatusCode.RESOURCE_EXHAUSTED, f"{spec.method}: {outcome}"
        assert f"{LIMIT + 1} vs. {LIMIT}" in outcome.details, outcome.details
        return Allowance(frozenset())

    small.check(spec.target, padded(request, LIMIT + 1), kind="size", judge=too_big)
