"""Bytes that are not the method's message, sent straight to every RPC.

grpcio alone would answer such a call UNKNOWN, quoting the parser's exception;
the server's interceptors parse leniently instead, so the call is
authenticated and authorized like any other and refused with
INVALID_ARGUMENT, reason REQUEST_MALFORMED. Nothing is written and the node
keeps serving.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from .catalog import RpcSpec, specs
from .harness import Allowance, Harness, Outcome
from .strategies import malformed_bytes
from .world import World


@pytest.mark.parametrize("spec", specs(), ids=lambda spec: spec.id)
def test_undecodable_bytes_are_refused_as_malformed(
    spec: RpcSpec, harness: Harness, world: World
) -> None:
    type_name = spec.request_type.DESCRIPTOR.full_name

    def malformed(outcome: Outcome) -> Allowance:
        assert (outcome.code.name, outcome.reason) == ("INVALID_ARGUMENT", "REQUEST_MALFORMED"), (
            f"{spec.method}: {outcome}"
        )
        assert outcome.metadata.get("type") == type_name, outcome.metadata
        return Allowance(frozenset())

    @settings(max_examples=25)
    @given(data=malformed_bytes(spec.request_type, spec.strategy(world)))
    def case(data: bytes) -> None:
        harness.check(spec.target, data, kind="malformed", judge=malformed)

    case()
