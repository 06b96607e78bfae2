"""Replay on a running network: a sealed instruction pays one transaction, only for its
order, only inside its time window, and the gateway's memory of it survives a restart.

The merchant is the one who could replay a customer's sealed payment, so the calls go
to the gateway with the merchant's own certificate, as the merchant node makes them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from collections.abc import Iterator

import grpc
import pytest
from interbank.v1 import authorization_pb2, authorization_pb2_grpc, common_pb2

from customer.client import Customer, PlacedOrder
from ops.launcher import check_health
from payment.clock import now
from payment.errors import error_info
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel
from tests.e2e.conftest import RunningNetwork, launch_node, start_network, stop

Outcome = tuple[grpc.StatusCode, str | None, str]
Request = authorization_pb2.AuthorizePaymentRequest


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = start_network(tmp_path_factory.mktemp("replay"))
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


def _request(
    placed: PlacedOrder, payment: common_pb2.SealedPayment, request_id: str
) -> authorization_pb2.AuthorizePaymentRequest:
    order = placed.order
    return authorization_pb2.AuthorizePaymentRequest(
        request_id=request_id,
        order_id=order.order_id,
        amount=order.total,
        order_digest=order.order_digest,
        payment=payment,
    )


async def _authorize(
    net: RunningNetwork, request: authorization_pb2.AuthorizePaymentRequest
) -> Outcome:
    """AuthorizePayment as the shop: (code, reason, transaction id)."""
    shop = TlsIdentity.load(Pki(net.network.pki_dir), "shop")
    async with secure_channel(net.network.node("gateway").address, shop) as channel:
        try:
            reply = await authorization_pb2_grpc.GatewayServiceStub(channel).AuthorizePayment(
                request, timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            info = error_info(exc)
            return exc.code(), info.reason if info else None, ""
    return grpc.StatusCode.OK, None, reply.transaction_id


def _gateway_rows(net: RunningNetwork, sql: str, *args: object) -> list[tuple[object, ...]]:
    path = net.network.node("gateway").store_path
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, args).fetchall()


def _restart_gateway(net: RunningNetwork) -> None:
    node = net.network.node("gateway")
    assert stop({"gateway": net.procs["gateway"]}) == {"gateway": 0}
    net.procs["gateway"] = launch_node(net.path, node, net.workdir)
    deadline = time.monotonic() + 30
    while asyncio.run(check_health(net.network, node, 1.0)).status != "SERVING":
        assert time.monotonic() < deadline, "the gateway did not come back"
        time.sleep(0.2)


def test_one_sealed_instruction_pays_one_transaction_of_its_own_order(
    net: RunningNetwork, report
) -> None:
    async def scenario() -> tuple[dict[str, Outcome], int, Request]:
        async with Customer(net.network, "alice") as alice:
            before = (await alice.balance()).held.amount_minor
            placed = await alice.create_order("shop", [("book-001", 1)])
            other = await alice.create_order("shop", [("book-001", 1)])
            sealed = alice.seal_payment(placed, alice.instrument("card"))
            seen = {
                "first": await _authorize(net, _request(placed, sealed, "replay-1")),
                "same request again": await _authorize(net, _request(placed, sealed, "replay-1")),
                "another request": await _authorize(net, _request(placed, sealed, "replay-2")),
                "another order": await _authorize(net, _request(other, sealed, "replay-3")),
            }
            held = (await alice.balance()).held.amount_minor - before
        return seen, held, _request(placed, sealed, "replay-after-restart")

    seen, held, after_restart = asyncio.run(scenario())
    code, _, transaction_id = seen["first"]
    assert code == grpc.StatusCode.OK
    # A retry of the same request resumes it: the merchant may resubmit after an unknown outcome.
    assert seen["same request again"] == (grpc.StatusCode.OK, None, transaction_id)
    assert seen["another request"] == (grpc.StatusCode.ALREADY_EXISTS, "INSTRUCTION_REPLAYED", "")
    assert seen["another order"] == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INSTRUCTION_UNREADABLE",
        "",
    )
    assert held == 4500, "a replay placed a second hold"
    recorded = _gateway_rows(net, "SELECT transaction_id FROM payment_transaction")
    assert recorded == [(transaction_id,)], "a refused replay left a record"
    nonces = _gateway_rows(net, "SELECT transaction_id FROM instruction_nonce")
    assert nonces == [(transaction_id,)]

    # The memory is durable: after a restart the same instruction is still refused.
    _restart_gateway(net)
    assert asyncio.run(_authorize(net, after_restart)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "INSTRUCTION_REPLAYED",
        "",
    )
    report(
        "replay: one sealed instruction under a second request refused INSTRUCTION_REPLAYED "
        "(also after a gateway restart), for another order INSTRUCTION_UNREADABLE; "
        "one hold and one gateway record"
    )


@pytest.mark.parametrize(
    ("age", "outcome"),
    [
        (dt.timedelta(minutes=6), "INSTRUCTION_EXPIRED"),
        (-dt.timedelta(minutes=6), "INSTRUCTION_FROM_FUTURE"),
        (dt.timedelta(minutes=4), None),
        (-dt.timedelta(minutes=4), None),
    ],
    ids=["6 min old", "6 min ahead", "4 min old", "4 min ahead"],
)
def test_an_instruction_is_accepted_only_inside_its_time_window(
    net: RunningNetwork, age: dt.timedelta, outcome: str | None
) -> None:
    async def scenario() -> tuple[Outcome, int]:
        async with Customer(net.network, "bob") as bob:
            before = (await bob.balance()).held.amount_minor
            placed = await bob.create_order("shop", [("book-001", 1)])
            sealed = bob.seal_payment(placed, bob.instrument("card"), created_at=now() - age)
            seen = await _authorize(net, _request(placed, sealed, f"window-{age}"))
            return seen, (await bob.balance()).held.amount_minor - before

    (code, reason, transaction_id), held = asyncio.run(scenario())
    if outcome is None:
        assert (code, reason) == (grpc.StatusCode.OK, None)
        assert held == 4500
    else:
        assert (code, reason, transaction_id) == (grpc.StatusCode.INVALID_ARGUMENT, outcome, "")
        assert held == 0
