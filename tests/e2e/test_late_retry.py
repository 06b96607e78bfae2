"""A sale the issuer completed while the gateway died is paid when its retry comes after
the instruction's window: the order is never put back to CREATED, the books agree, and
no hold is left open.

Every node is its own process. The settlement bank is paused while the sale runs, so the
issuer has posted the hold and waits for the interbank leg before it answers: that is
when the gateway is killed (SIGKILL), before the merchant hears anything. The
instruction was built nearly a window earlier, as a gateway whose clock runs that far
ahead would see it, so the merchant's retry arrives when it is out of the window.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing

import grpc
import pytest
from interbank.v1 import order_pb2

from customer.client import Customer
from ops.launcher import check_health
from ops.reconcile import reconcile, render_table
from payment.clock import now
from payment.errors import PaynetError

from .conftest import RunningNetwork, launch_node, start_network, stop

S = order_pb2.OrderStatus
BOOK = 4500
LEEWAY_S = 4.0
"""How far inside the window the instruction is when the gateway first sees it."""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    # Gross settlement: the credit reaches the shop at once, not when a window closes.
    running = start_network(tmp_path_factory.mktemp("late-retry"), settlement_mode="gross")
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


def _holds(net: RunningNetwork, order_id: str) -> list[str]:
    """The statuses of the order's holds at the issuer (alfa), read from its store."""
    path = net.network.node("alfa").store_path
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT status FROM holds WHERE order_id = ?", (order_id,))
        return [str(row[0]) for row in rows]


async def _until(condition, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def _restart_gateway(net: RunningNetwork) -> None:
    node = net.network.node("gateway")
    net.procs["gateway"] = launch_node(net.path, node, net.workdir)
    deadline = time.monotonic() + 30
    while (await check_health(net.network, node, 1.0)).status != "SERVING":
        assert time.monotonic() < deadline, "the gateway did not come back"
        await asyncio.sleep(0.2)


def test_a_sale_completed_as_the_gateway_died_is_paid_when_retried_after_the_window(
    net: RunningNetwork, report
) -> None:
    window_s = net.network.limits.instruction_window_seconds

    async def scenario() -> tuple[order_pb2.Order, PaynetError, int, int]:
        async with Customer(net.network, "alice") as alice:
            before = (await alice.balance()).booked.amount_minor
            placed = await alice.create_order("shop", [("book-001", 1)])
            order_id = placed.order.order_id
            built = now() - dt.timedelta(seconds=window_s - LEEWAY_S)
            payment = alice.seal_payment(placed, alice.instrument(), created_at=built)

            settlement = net.procs["settlement"]
            settlement.send_signal(signal.SIGSTOP)
            try:
                submitted = asyncio.ensure_future(alice.submit_payment(placed, payment))
                # The issuer posted the sale and now waits on the settlement bank to answer.
                await _until(lambda: _holds(net, order_id) == ["CAPTURED"], "the issuer's sale")
                net.procs["gateway"].kill()
                net.procs["gateway"].wait()
            finally:
                settlement.send_signal(signal.SIGCONT)
            with pytest.raises(PaynetError) as lost:
                await submitted
            pending = await alice.get_order("shop", order_id)
            assert pending.status == S.ORDER_STATUS_PAYMENT_PENDING

            await _restart_gateway(net)
            late_by = (now() - built).total_seconds() - window_s
            if late_by < 1:
                await asyncio.sleep(1 - late_by)  # the retry is surely out of the window

            # The customer submits the same sealed payment again: the merchant's retry.
            retried = await alice.submit_payment(placed, payment)
            assert retried.status in (
                S.ORDER_STATUS_CAPTURED,
                S.ORDER_STATUS_SETTLED,
                S.ORDER_STATUS_DELIVERY_CONFIRMED,
            ), order_pb2.OrderStatus.Name(retried.status)
            if retried.status != S.ORDER_STATUS_DELIVERY_CONFIRMED:
                await alice.wait_for_order("shop", order_id, S.ORDER_STATUS_DELIVERY_CONFIRMED)
            final = await alice.get_order("shop", order_id)
            after = (await alice.balance()).booked.amount_minor
        return final, lost.value, before, after

    final, lost, before, after = asyncio.run(scenario())

    assert (lost.code, lost.reason) == (grpc.StatusCode.UNAVAILABLE, "PAYMENT_OUTCOME_UNKNOWN")
    assert final.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    assert final.failure_reason == ""
    assert before - after == BOOK  # debited once
    assert _holds(net, final.order_id) == ["CAPTURED"]  # one hold, posted: none left open
    books = reconcile(net.network)
    assert books.ok, render_table(books)
    report(
        "late retry: a sale posted at the issuer while the gateway was SIGKILLed, retried "
        f"{window_s:g} s + after its instruction was built, ends DELIVERY_CONFIRMED; "
        "reconcile agrees; one hold, CAPTURED"
    )
