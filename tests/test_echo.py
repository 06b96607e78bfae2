"""The bare echo servers behind the benchmark's baselines carry what they are sent.

The bare flow is only a fair ceiling if its servers really make a payment's
calls: every entry of a batch answered in order, every submitter handed its
own reply through the coalescers, every entry answered at the end of the line
sent on the notice stream.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from bench.bench import EchoServers, chain_wiring
from bench.echo import (
    BATCH_METHOD,
    ECHO_METHOD,
    ENTRY_SIZE,
    FOLLOW_METHOD,
    FORWARD_METHOD,
    flow_wiring,
)
from tests.conftest import DevNet


def _names(devnet: DevNet) -> list[str]:
    return [node.name for node in devnet.network.nodes]


async def _read(stream: grpc.aio.UnaryStreamCall, count: int) -> list[bytes]:
    got = []
    async for notice in stream:
        got.append(bytes(notice))
        if len(got) == count:
            break
    return got


async def test_a_batch_is_answered_entry_by_entry_in_order_and_followers_get_each_entry(
    devnet: DevNet,
) -> None:
    entries = [bytes([ord("a") + i]) * ENTRY_SIZE for i in range(3)]
    async with EchoServers(devnet.pki, _names(devnet), 1, chain_wiring) as end:
        channel = devnet.channel(_names(devnet)[0], end.addresses[0])
        follower = channel.unary_stream(FOLLOW_METHOD)(b"", wait_for_ready=True)
        await asyncio.wait_for(follower.wait_for_connection(), 10)
        await asyncio.sleep(0.2)  # the server has registered the follower
        answer = await channel.unary_unary(BATCH_METHOD)(b"".join(entries), timeout=10)
        assert answer == b"".join(entries)
        assert await asyncio.wait_for(_read(follower, 3), 10) == entries
        follower.cancel()
        await channel.close()


@pytest.mark.parametrize("size", [0, ENTRY_SIZE + 1])
async def test_a_batch_that_is_not_whole_entries_is_refused(devnet: DevNet, size: int) -> None:
    async with EchoServers(devnet.pki, _names(devnet), 1, chain_wiring) as end:
        channel = devnet.channel(_names(devnet)[0], end.addresses[0])
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary(BATCH_METHOD)(b"x" * size, timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"entries of {ENTRY_SIZE} bytes, not {size}" in str(refused.value.details())
        await channel.close()


async def test_the_bare_flow_hands_every_payment_its_own_reply_and_a_notice(
    devnet: DevNet,
) -> None:
    payments = [i.to_bytes(2, "big") * (ENTRY_SIZE // 2) for i in range(40)]
    async with EchoServers(devnet.pki, _names(devnet), 5, flow_wiring) as flow:
        merchant = devnet.channel(_names(devnet)[0], flow.addresses[0])
        acquirer = devnet.channel(_names(devnet)[0], flow.addresses[4])
        follower = acquirer.unary_stream(FOLLOW_METHOD)(b"", wait_for_ready=True)
        await asyncio.wait_for(follower.wait_for_connection(), 10)
        await asyncio.sleep(0.2)
        order = merchant.unary_unary(ECHO_METHOD)
        pay = merchant.unary_unary(FORWARD_METHOD)

        async def one(payment: bytes) -> tuple[bytes, bytes]:
            return await order(payment, timeout=10), await pay(payment, timeout=10)

        # Concurrent payments share the batch calls, and each still gets its own bytes back.
        answers = await asyncio.gather(*(one(payment) for payment in payments))
        assert answers == [(payment, payment) for payment in payments]
        notices = await asyncio.wait_for(_read(follower, len(payments)), 10)
        assert sorted(notices) == sorted(payments)
        follower.cancel()
        await merchant.close()
        await acquirer.close()
