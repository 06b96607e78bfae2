"""Concurrent calls over real mTLS sockets: a burst on one connection is served or
refused with a reason, never reset; each caller's calls in progress on a node are
bounded, one caller's limit leaves the others alone, and a stream counts while it
is open."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import grpc
import pytest
from interbank.v1 import (
    account_pb2,
    account_pb2_grpc,
    notification_pb2,
    notification_pb2_grpc,
)

from payment.errors import error_info
from payment.pki import Pki
from payment.server import create_server
from payment.tls import NodeIdentity, TlsIdentity, secure_channel
from tests.conftest import DevNet
from tests.e2e.conftest import RunningNetwork, start_network, stop

BURST = 500
LIMIT = 8
HELD = "held"
"""GetBalance of this account waits until the test lets it go."""

Outcome = tuple[str, str | None, dict[str, str]]


async def outcome(call: Awaitable[object]) -> Outcome:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        info = error_info(exc)
        return (
            exc.code().name,
            info.reason if info else exc.details(),
            (dict(info.metadata) if info else {}),
        )
    return "OK", None, {}


def balance(stub: account_pb2_grpc.AccountServiceStub, account_id: str) -> Awaitable[object]:
    return stub.GetBalance(account_pb2.GetBalanceRequest(account_id=account_id), timeout=60)


def refused_with_when_to_retry(result: Outcome) -> bool:
    code, reason, metadata = result
    return (
        code == "RESOURCE_EXHAUSTED"
        and reason == "TOO_MANY_CONCURRENT_CALLS"
        and int(metadata["retry_after_seconds"]) >= 1
    )


async def served_again(stub: account_pb2_grpc.AccountServiceStub, account_id: str) -> None:
    """Call until served: the slots a caller's ended calls held come back as the node
    learns they ended; until then it is refused with when to retry, nothing else."""
    while True:
        result = await outcome(balance(stub, account_id))
        if result[0] == "OK":
            return
        assert refused_with_when_to_retry(result), result


async def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


# A real bank node, limits as shipped.


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = start_network(tmp_path_factory.mktemp("calls"), buyers=("carol",))  # at alfa
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


async def test_500_concurrent_calls_on_one_connection_are_served_and_none_is_reset(
    net: RunningNetwork,
) -> None:
    alfa = net.network.node("alfa").address
    pki = Pki(net.network.pki_dir)
    async with (
        secure_channel(alfa, TlsIdentity.load(pki, "alice")) as alice,
        secure_channel(alfa, TlsIdentity.load(pki, "carol")) as carol,
    ):
        alice_stub = account_pb2_grpc.AccountServiceStub(alice)
        carol_stub = account_pb2_grpc.AccountServiceStub(carol)
        results = await asyncio.gather(
            *(outcome(balance(alice_stub, "alice-current")) for _ in range(BURST)),
            *(outcome(balance(carol_stub, "carol-current")) for _ in range(20)),
        )
        # 500 calls over a connection of 100 streams: the rest wait for a stream
        # (or, past the caller's limit, are refused with when to retry); none is reset.
        odd = Counter(r[:2] for r in results if r[0] != "OK" and not refused_with_when_to_retry(r))
        assert not odd, odd
        assert all(r[0] == "OK" for r in results[BURST:])  # carol is another caller
        assert (await outcome(balance(alice_stub, "alice-current")))[0] == "OK"


# A node serving a gated account service, with a caller limit of LIMIT.


class GatedAccounts(account_pb2_grpc.AccountServiceServicer):
    """GetBalance of HELD waits for release; any other account answers at once."""

    def __init__(self) -> None:
        self.held = 0
        self.release = asyncio.Event()

    async def GetBalance(self, request, context):
        if request.account_id == HELD:
            self.held += 1
            await self.release.wait()
        return account_pb2.GetBalanceResponse()


class OpenInbox(notification_pb2_grpc.NotificationServiceServicer):
    """A subscription that stays open, sending nothing, until the subscriber cancels."""

    async def Subscribe(self, request, context):
        await context.send_initial_metadata(())
        await asyncio.Event().wait()
        yield notification_pb2.SubscribeResponse()


@dataclasses.dataclass
class GatedApp:
    accounts: GatedAccounts
    service_names: Sequence[str] = (
        "interbank.v1.AccountService",
        "interbank.v1.NotificationService",
    )

    def register(self, server: grpc.aio.Server) -> None:
        account_pb2_grpc.add_AccountServiceServicer_to_server(self.accounts, server)
        notification_pb2_grpc.add_NotificationServiceServicer_to_server(OpenInbox(), server)

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclasses.dataclass
class GatedNode:
    devnet: DevNet
    address: str
    accounts: GatedAccounts

    def channel(self, name: str) -> grpc.aio.Channel:
        return self.devnet.channel(name, self.address)


@pytest.fixture
async def node(devnet: DevNet, tmp_path: Path) -> AsyncIterator[GatedNode]:
    limits = dataclasses.replace(devnet.network.limits, max_concurrent_calls_per_caller=LIMIT)
    network = dataclasses.replace(devnet.network, limits=limits)
    accounts = GatedAccounts()
    server, port, _ = await create_server(
        network, GatedApp(accounts), NodeIdentity.fixed(devnet.tls("alfa")), "127.0.0.1:0"
    )
    await server.start()
    yield GatedNode(devnet, f"127.0.0.1:{port}", accounts)
    accounts.release.set()
    await server.stop(None)


async def test_a_caller_over_its_limit_is_refused_with_when_to_retry_and_others_are_served(
    node: GatedNode,
) -> None:
    async with node.channel("alice") as alice, node.channel("bob") as bob:
        alice_stub = account_pb2_grpc.AccountServiceStub(alice)
        bob_stub = account_pb2_grpc.AccountServiceStub(bob)
        burst = [asyncio.ensure_future(outcome(balance(alice_stub, HELD))) for _ in range(BURST)]
        await until(lambda: node.accounts.held == LIMIT)
        await until(lambda: sum(call.done() for call in burst) == BURST - LIMIT)
        refused = [call.result() for call in burst if call.done()]
        assert all(refused_with_when_to_retry(r) for r in refused), Counter(r[:2] for r in refused)
        assert node.accounts.held == LIMIT  # no refused call ran
        # Alice is at her limit; Bob, another caller, is not.
        assert refused_with_when_to_retry(await outcome(balance(alice_stub, "alice-current")))
        assert (await outcome(balance(bob_stub, "bob-current")))[0] == "OK"
        node.accounts.release.set()
        held = await asyncio.gather(*(call for call in burst if not call.done()))
        assert [r[0] for r in held] == ["OK"] * LIMIT
        # After the burst, Alice is served again.
        assert (await outcome(balance(alice_stub, "alice-current")))[0] == "OK"


async def test_an_open_stream_counts_against_the_caller_limit_until_it_ends(
    node: GatedNode,
) -> None:
    async with node.channel("alice") as alice:
        inbox = notification_pb2_grpc.NotificationServiceStub(alice)
        streams = [inbox.Subscribe(notification_pb2.SubscribeRequest()) for _ in range(LIMIT)]
        for stream in streams:
            await stream.initial_metadata()  # each stream is open and holds its slot
        stub = account_pb2_grpc.AccountServiceStub(alice)
        assert refused_with_when_to_retry(await outcome(balance(stub, "alice-current")))
        streams[0].cancel()
        await asyncio.wait_for(served_again(stub, "alice-current"), 10)
        for stream in streams[1:]:
            stream.cancel()


async def test_calls_that_end_by_their_deadline_give_their_slots_back(node: GatedNode) -> None:
    async with node.channel("alice") as alice:
        stub = account_pb2_grpc.AccountServiceStub(alice)
        held = [
            stub.GetBalance(account_pb2.GetBalanceRequest(account_id=HELD), timeout=1)
            for _ in range(LIMIT)
        ]
        assert {r[0] for r in await asyncio.gather(*map(outcome, held))} == {"DEADLINE_EXCEEDED"}
        await asyncio.wait_for(served_again(stub, "alice-current"), 10)
