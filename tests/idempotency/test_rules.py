"""The four idempotency rules, for every mutating RPC, over real mTLS against running nodes.

1. the same request_id with the same content returns the stored result and the effect
   happens once;
2. the same request_id with other content is refused ALREADY_EXISTS /
   IDEMPOTENCY_KEY_REUSED, with no write;
3. 8 concurrent calls with one request_id have exactly one effect and all get the same
   answer;
4. a missing request_id is refused INVALID_ARGUMENT / REQUEST_ID_MISSING, with no write.

A deprecated RPC (the case's ``refusal``) answers every one of those calls with its refusal
and writes nothing. An RPC whose repeat answers its subject as it is now (DepositCheque,
SubmitCheque, DepositCoins, SubmitCoins: the case's ``repeat``) must answer the same
subject, in the same or a later state, and once the network has come to rest, the final
one. Each case is in :mod:`.cases`; the network is one per module.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import text_format
from google.protobuf.message import Message

from .case import Case, Prepared, Snapshot
from .cases import CASES
from .conftest import RunningNetwork
from .harness import Net, Outcome, Refusal, new_request_id, request_type, with_request_id

CONCURRENT_CALLS = 8
KEY_REUSED = Refusal(grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED")
ID_MISSING = Refusal(grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_MISSING")
METHODS = sorted(CASES)


def short(method: str) -> str:
    """Service.Method of a full method name, as a test id."""
    return method.rsplit(".", 1)[-1].replace("/", ".")


def describe(outcome: Outcome) -> str:
    """An outcome for an assertion message (responses carry no secrets)."""
    if isinstance(outcome, Refusal):
        return f"{outcome.code.name} {outcome.reason}"
    return f"{type(outcome).__name__} {{{text_format.MessageToString(outcome, as_one_line=True)}}}"


def changes(before: Snapshot, after: Snapshot) -> str:
    """What differs between two snapshots, key by key."""
    return "; ".join(
        f"{key}: {before.get(key)!r} -> {after.get(key)!r}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    )


def repeat_problem(case: Case, first: Outcome, again: Outcome, *, at_rest: bool) -> str | None:
    """What is wrong with a repeat's answer given the first answer, or None."""
    if isinstance(first, Message) and isinstance(again, Message):
        problem = case.same_answer(first, again, at_rest=at_rest)
    else:
        problem = None if again == first else "not the first answer"
    if problem is None:
        return None
    return f"{problem}: answered {describe(again)}, first {describe(first)}"


async def first_call(net: Net, case: Case, method: str, prepared: Prepared) -> Outcome:
    """The first call of the prepared request: a success, or the deprecated RPC's refusal."""
    outcome = await net.call(case.who(prepared), case.node, method, prepared.request)
    expected = case.refusal or "a response"
    wanted = outcome == case.refusal if case.refusal else isinstance(outcome, Message)
    assert wanted, f"first call answered {describe(outcome)}, expected {expected}"
    return outcome


@pytest.mark.parametrize("method", METHODS, ids=short)
async def test_rule_1_a_replay_returns_the_stored_result_and_writes_nothing(
    running: RunningNetwork, method: str
) -> None:
    """Rule 1: the replay answers exactly the first answer; the effect stays single."""
    case = CASES[method]
    async with Net(running) as net:
        prepared = await case.prepare(net, new_request_id(), False)
        before = await prepared.observe()
        first = await first_call(net, case, method, prepared)
        settled = await prepared.observe()
        if case.refusal:
            assert settled == before, f"a refused call wrote: {changes(before, settled)}"
        else:
            await prepared.effect(before, settled, first)
        if prepared.intervene is not None:
            await prepared.intervene()
            settled = await prepared.observe()
        replay = await net.call(case.who(prepared), case.node, method, prepared.request)
        after = await prepared.observe()
    problems = []
    wrong = repeat_problem(case, first, replay, at_rest=True)
    if wrong is not None:
        problems.append(f"the replay: {wrong}")
    if after != settled:
        problems.append(f"the replay wrote: {changes(settled, after)}")
    assert not problems, "; ".join(problems)


@pytest.mark.parametrize("method", METHODS, ids=short)
async def test_rule_2_the_same_request_id_with_other_content_is_refused_without_a_write(
    running: RunningNetwork, method: str
) -> None:
    """Rule 2: each variant is IDEMPOTENCY_KEY_REUSED and changes nothing."""
    case = CASES[method]
    if case.no_variant:
        fields = [f.name for f in request_type(method).fields]
        assert fields == ["request_id"], f"{case.no_variant} no longer holds: {fields}"
        return
    async with Net(running) as net:
        request_id = new_request_id()
        prepared = await case.prepare(net, request_id, True)
        assert prepared.variants, "a case needs a variant for rule 2"
        for variant in prepared.variants:
            same_key = getattr(variant, "request_id", None) == request_id
            other_content = variant.SerializeToString(deterministic=True) != (
                prepared.request.SerializeToString(deterministic=True)
            )
            assert same_key and other_content, "a variant must reuse the key for other content"
        first = await first_call(net, case, method, prepared)
        settled = await prepared.observe()
        problems = []
        expected = case.refusal or KEY_REUSED
        for number, variant in enumerate(prepared.variants, 1):
            outcome = await net.call(case.who(prepared), case.node, method, variant)
            after = await prepared.observe()
            if outcome != expected:
                problems.append(f"variant {number} answered {describe(outcome)}")
            if after != settled:
                problems.append(f"variant {number} wrote: {changes(settled, after)}")
            settled = after
        replay = await net.call(case.who(prepared), case.node, method, prepared.request)
    wrong = repeat_problem(case, first, replay, at_rest=True)
    if wrong is not None:
        problems.append(f"the original then: {wrong}")
    assert not problems, f"expected {describe(expected)} and no write; " + "; ".join(problems)


@pytest.mark.parametrize("method", METHODS, ids=short)
async def test_rule_3_concurrent_calls_with_one_request_id_have_one_effect_and_one_answer(
    running: RunningNetwork, method: str
) -> None:
    """Rule 3: 8 simultaneous identical calls, one effect, one answer."""
    case = CASES[method]
    async with Net(running) as net:
        prepared = await case.prepare(net, new_request_id(), False)
        caller = case.who(prepared)
        channels = [net.fresh_channel(caller, case.node) for _ in range(CONCURRENT_CALLS)]
        await asyncio.gather(*(channel.channel_ready() for channel in channels))
        before = await prepared.observe()
        outcomes = await asyncio.gather(
            *(
                net.call(caller, case.node, method, prepared.request, channel=channel)
                for channel in channels
            )
        )
        after = await prepared.observe()
        answers = sorted({describe(o) for o in outcomes})
        if case.repeat is None:
            assert len(answers) == 1, f"{CONCURRENT_CALLS} calls got different answers: {answers}"
        else:
            # Each answers the subject as it was when that call read it.
            wrong = [repeat_problem(case, outcomes[0], o, at_rest=False) for o in outcomes]
            assert not any(wrong), f"{CONCURRENT_CALLS} calls: {[w for w in wrong if w]}"
        if case.refusal:
            assert outcomes[0] == case.refusal, describe(outcomes[0])
            assert after == before, f"refused calls wrote: {changes(before, after)}"
        else:
            assert isinstance(outcomes[0], Message), f"every call answered {answers[0]}"
            await prepared.effect(before, after, outcomes[0])


@pytest.mark.parametrize("method", METHODS, ids=short)
async def test_rule_4_a_missing_request_id_is_refused_without_a_write(
    running: RunningNetwork, method: str
) -> None:
    """Rule 4: no request_id is REQUEST_ID_MISSING and changes nothing."""
    case = CASES[method]
    async with Net(running) as net:
        prepared = await case.prepare(net, new_request_id(), False)
        before = await prepared.observe()
        outcome = await net.call(
            case.who(prepared), case.node, method, with_request_id(prepared.request, "")
        )
        after = await prepared.observe()
    expected = case.refusal or ID_MISSING
    problems = []
    if outcome != expected:
        problems.append(f"answered {describe(outcome)}")
    if after != before:
        problems.append(f"wrote: {changes(before, after)}")
    assert not problems, f"expected {describe(expected)} and no write; " + "; ".join(problems)
