"""Contention: many concurrent payments against one account never overdraw it.

Every payment ends in a definite state: paid and delivered, or refused with
its reason and the order back to CREATED. Every node is its own process.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest
from interbank.v1 import order_pb2

from customer.client import Customer, PlacedOrder
from payment.errors import PaynetError

from .conftest import RunningNetwork, start_network, stop

S = order_pb2.OrderStatus
PAYMENTS = 100
PRICE = 72000  # bike-003: alice's 2 500.00 EUR cover three of them


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The dev network with no step-up, so all payments race for the funds."""
    running = start_network(
        tmp_path_factory.mktemp("busy"),
        challenge_above_minor=10**9,
        velocity_max_payments=10**6,
        window_seconds=0,
        net_debit_cap_minor=10**9,  # only the account's funds limit the payments here
    )
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


async def test_concurrent_payments_against_one_account_never_overdraw_it(busy) -> None:
    network = busy.network
    async with Customer(network, "alice") as alice:
        before = await alice.balance()
        placed = [await alice.create_order("shop", [("bike-003", 1)]) for _ in range(PAYMENTS)]

        async def pay(order: PlacedOrder) -> str:
            try:
                paid = await alice.submit_payment(
                    order, alice.seal_payment(order, alice.instrument())
                )
            except PaynetError as exc:
                return exc.reason
            return S.Name(paid.status)

        outcomes = Counter(await asyncio.gather(*(pay(order) for order in placed)))
        affordable = before.available.amount_minor // PRICE
        # Captured payments settle asynchronously: wait for each to be delivered.
        finals = [await alice.get_order("shop", p.order.order_id) for p in placed]
        for final in finals:
            if final.status in (S.ORDER_STATUS_CAPTURED, S.ORDER_STATUS_SETTLED):
                await alice.wait_for_order(
                    "shop", final.order_id, S.ORDER_STATUS_DELIVERY_CONFIRMED, 30
                )
        finals = [await alice.get_order("shop", p.order.order_id) for p in placed]
        after = await alice.balance()

    assert outcomes["INSUFFICIENT_FUNDS"] == PAYMENTS - affordable, outcomes
    assert sum(outcomes.values()) == PAYMENTS
    states = Counter(S.Name(f.status) for f in finals)
    assert states == {
        "ORDER_STATUS_DELIVERY_CONFIRMED": affordable,
        "ORDER_STATUS_CREATED": PAYMENTS - affordable,
    }, states
    assert all(
        f.failure_reason == "INSUFFICIENT_FUNDS"
        for f in finals
        if f.status == S.ORDER_STATUS_CREATED
    )
    assert after.booked.amount_minor == before.booked.amount_minor - affordable * PRICE
    assert after.available.amount_minor >= 0
    assert after.held.amount_minor == 0
    audit = subprocess.run(
        [sys.executable, "-m", "ops.cli", "audit", "--network", str(busy.path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert json.loads(audit.stdout)["ok"] is True
