"""Generated hostile requests to every RPC: a precise refusal, nothing written, still serving.

For each RPC, hypothesis draws requests from the message descriptor with
hostile values in every field (empty and ~100 KB strings, odd unicode, int64
edges, unknown enum numbers, missing sub-messages, unknown fields), mixed
with the world's real ids so that validation past the lookups is reached.
Every answer must be a success the RPC may give or one of its documented
refusals (code and ErrorInfo reason); a refusal writes nothing (except the
writes the flow documents), and the node keeps serving without logging an
unexpected error.
"""

from __future__ import annotations

import pytest
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from .catalog import RpcSpec, judge, specs
from .harness import Harness
from .strategies import unknown_fields
from .world import World


@pytest.mark.parametrize("spec", specs(), ids=lambda spec: spec.id)
def test_generated_requests_get_a_precise_answer(
    spec: RpcSpec, harness: Harness, world: World
) -> None:
    check = judge(spec, world)

    @settings(max_examples=spec.max_examples)
    @given(request=spec.strategy(world), extra=st.one_of(st.just(b""), unknown_fields()))
    def case(request: Message, extra: bytes) -> None:
        payload = request.SerializeToString() + extra
        harness.check(spec.target, payload, kind="generated", judge=check)

    case()
