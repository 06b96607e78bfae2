"""No secret where it should not be: after a frictionless and a challenged
purchase, every log line and every store of every node is scanned for private
keys, instrument numbers and one-time codes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from interbank.v1 import order_pb2

from customer.client import Customer
from tests.e2e.conftest import RunningNetwork, start_network, stop
from tests.security.secrets_scan import codes_in_inboxes, scan

S = order_pb2.OrderStatus


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = start_network(tmp_path_factory.mktemp("secrets"))
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


async def _purchases(net: RunningNetwork) -> list[str]:
    """A card purchase by alice and a challenged account purchase by bob; the codes read."""
    codes = []
    for name, sku, kind in (("alice", "book-001", "card"), ("bob", "bike-003", "account")):
        async with Customer(net.network, name) as customer:
            placed = await customer.create_order("shop", [(sku, 1)])
            order = await customer.submit_payment(
                placed, customer.seal_payment(placed, customer.instrument(kind))
            )
            if order.status == S.ORDER_STATUS_CHALLENGE_REQUIRED:
                code = await customer.read_one_time_code(order.challenge.challenge_id)
                codes.append(code)
                await customer.answer_challenge(order.challenge.challenge_id, code)
                await customer.complete_payment("shop", order.order_id)
            await customer.wait_for_order(
                "shop", placed.order.order_id, S.ORDER_STATUS_DELIVERY_CONFIRMED
            )
    return codes


def test_no_key_instrument_number_or_code_outside_where_it_belongs(
    net: RunningNetwork, report
) -> None:
    codes = asyncio.run(_purchases(net))
    assert len(codes) == 1 and re.fullmatch(r"\d{6}", codes[0])
    # The scan reads the codes back from the device inbox: it finds the one bob was sent.
    assert codes_in_inboxes(net.network) == codes
    found = scan(net.network, net.workdir / "logs", codes)
    assert found.leaks == (), found.leaks
    # The code lives in one place only: bob's device inbox, the outbox of his bank.
    assert found.code_tables == {"beta.outbox"}
    report(f"secrets scan after purchases: {found.summary()}")
