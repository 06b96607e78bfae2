"""The coalescer: the first entry goes at once, the ones that queue behind it go together."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from interbank.v1 import common_pb2

from payment import errors
from payment.batching import (
    MAX_BATCH,
    Coalescer,
    check_batch_size,
    entry_error,
    from_entry_error,
)


class Peer:
    """A batch endpoint that records each call and answers when released."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.release = asyncio.Event()

    async def send(self, entries: list[int]) -> list[str]:
        self.calls.append(list(entries))
        await self.release.wait()
        return [f"done {entry}" for entry in entries]


async def test_the_first_entry_goes_alone_and_the_queued_ones_go_together_in_order() -> None:
    peer = Peer()
    coalescer: Coalescer[int, str] = Coalescer(peer.send, "test")
    first = asyncio.create_task(coalescer.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert peer.calls == [[1]]  # sent without waiting for company
    queued = [asyncio.create_task(coalescer.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    assert peer.calls == [[1]]  # one call in flight at a time
    peer.release.set()
    assert await first == "done 1"
    assert await asyncio.gather(*queued) == ["done 2", "done 3", "done 4"]
    assert peer.calls == [[1], [2, 3, 4]]


async def test_an_entry_cancelled_before_its_call_went_is_never_sent() -> None:
    peer = Peer()
    coalescer: Coalescer[int, str] = Coalescer(peer.send, "test")
    first = asyncio.create_task(coalescer.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    given_up = asyncio.create_task(coalescer.submit(2))
    kept = asyncio.create_task(coalescer.submit(3))
    await asyncio.sleep(0)
    given_up.cancel()  # the merchant's deadline passed while call [1] was in flight
    peer.release.set()
    assert (await first, await kept) == ("done 1", "done 3")
    assert given_up.cancelled()
    assert peer.calls == [[1], [3]]


async def test_a_long_queue_is_split_at_the_batch_limit() -> None:
    peer = Peer()
    peer.release.set()
    coalescer: Coalescer[int, str] = Coalescer(peer.send, "test")
    results = await asyncio.gather(*(coalescer.submit(n) for n in range(MAX_BATCH + 10)))
    assert results == [f"done {n}" for n in range(MAX_BATCH + 10)]
    assert [len(call) for call in peer.calls] == [MAX_BATCH, 10]


async def test_a_failed_call_fails_every_entry_it_carried_and_the_next_call_goes_on() -> None:
    calls = []

    async def send(entries: list[int]) -> list[int]:
        calls.append(entries)
        if len(calls) == 1:
            raise errors.Unavailable("PEER_UNAVAILABLE", "down")
        return [entry * 10 for entry in entries]

    coalescer: Coalescer[int, int] = Coalescer(send, "test")
    outcomes = await asyncio.gather(
        coalescer.submit(1), coalescer.submit(2), return_exceptions=True
    )
    assert all(isinstance(o, errors.Unavailable) for o in outcomes)
    assert await coalescer.submit(3) == 30
    assert calls == [[1, 2], [3]]


async def test_an_answer_with_the_wrong_number_of_results_fails_its_entries() -> None:
    async def send(entries: list[int]) -> list[int]:
        return [0]

    coalescer: Coalescer[int, int] = Coalescer(send, "short peer")
    outcomes = await asyncio.gather(
        coalescer.submit(1), coalescer.submit(2), return_exceptions=True
    )
    for outcome in outcomes:
        assert isinstance(outcome, errors.Internal)
        assert outcome.reason == "BATCH_ANSWER_INVALID"
        assert "1 results for 2 entries" in outcome.message


async def test_a_cancelled_sender_leaves_no_entry_waiting() -> None:
    peer = Peer()
    coalescer: Coalescer[int, str] = Coalescer(peer.send, "test")
    waiting = [asyncio.create_task(coalescer.submit(n)) for n in (1, 2)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert coalescer._sender is not None
    coalescer._sender.cancel()
    done = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(d, asyncio.CancelledError) for d in done)
    peer.release.set()
    assert await coalescer.submit(3) == "done 3"  # a new sender starts for the next entry


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
def test_a_batch_of_no_entries_or_too_many_is_refused(count: int) -> None:
    with pytest.raises(errors.InvalidArgument) as refused:
        check_batch_size(count)
    assert refused.value.reason == "BATCH_SIZE_INVALID"
    assert refused.value.metadata == {"field": "entries", "count": str(count)}


def test_an_entry_error_carries_the_code_reason_and_metadata_there_and_back() -> None:
    sent = entry_error(errors.PermissionDenied("DEBTOR_AGENT_NOT_CALLER", "not yours", field="x"))
    assert sent == common_pb2.EntryError(
        code=7, reason="DEBTOR_AGENT_NOT_CALLER", message="not yours", metadata={"field": "x"}
    )
    back = from_entry_error(common_pb2.EntryError.FromString(sent.SerializeToString()))
    assert (back.code, back.reason, back.message, back.metadata) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "DEBTOR_AGENT_NOT_CALLER",
        "not yours",
        {"field": "x"},
    )
    unknown = from_entry_error(common_pb2.EntryError(code=99, reason="X"))
    assert unknown.code is grpc.StatusCode.UNKNOWN
