"""paynet reconcile: a healthy network matches; one wrong record is exactly one mismatch."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
from interbank.v1 import common_pb2, order_pb2, order_pb2_grpc

from customer.client import Customer
from customer.shop import purchase
from ops.devnet import write_dev_network
from ops.reconcile import Mismatch, ReconcileReport, reconcile, render_table
from payment.config import NetworkConfig, load_network
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

from .conftest import RunningNetwork, start_network, stop

S = order_pb2.OrderStatus
TOTAL = 2 * 4500
REFUND = 1500


def quiet(*_args: str) -> None:
    """A step printer that prints nothing."""


@dataclass(frozen=True)
class RefundedPurchase:
    """A running network in which alice bought at shop and got part of it refunded."""

    net: RunningNetwork
    """The network."""
    order: order_pb2.Order
    """The order after the refund."""


async def buy_and_refund_part(network: NetworkConfig) -> order_pb2.Order:
    """alice buys two books by card; the shop's back office refunds part of the order."""
    async with Customer(network, "alice") as alice:
        bought = await purchase(alice, "shop", [("book-001", 2)], say=quiet)
    assert bought.order.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    # The back office is the merchant's own: called with the merchant's certificate.
    identity = TlsIdentity.load(Pki(network.pki_dir), "shop")
    async with secure_channel(network.node("shop").address, identity) as channel:
        reply = await order_pb2_grpc.BackOfficeServiceStub(channel).RefundOrder(
            order_pb2.RefundOrderRequest(
                request_id=str(uuid.uuid4()),
                order_id=bought.order.order_id,
                amount=common_pb2.Money(amount_minor=REFUND, currency_code=network.currency),
            ),
            timeout=15,
        )
    assert reply.order.status == S.ORDER_STATUS_PARTIALLY_REFUNDED
    assert reply.order.refunded_total.amount_minor == REFUND
    return reply.order


@pytest.fixture(scope="module")
def refunded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RefundedPurchase]:
    """The dev network after one card purchase and a partial refund of it."""
    running = start_network(tmp_path_factory.mktemp("reconcile"))
    try:
        order = asyncio.run(buy_and_refund_part(running.network))
        yield RefundedPurchase(running, order)
    finally:
        codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


def credit_of(store: Path, order_id: str) -> str:
    """The instruction id of the acquirer's incoming credit for an order."""
    with closing(sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        (instruction_id,) = conn.execute(
            "SELECT instruction_id FROM incoming_transfers WHERE end_to_end_id = ?", (order_id,)
        ).fetchone()
    return str(instruction_id)


def add_to_credit(store: Path, instruction_id: str, delta: int) -> None:
    """Change a credit's amount behind the running bank's back (WAL lets a second writer in)."""
    with closing(sqlite3.connect(store, timeout=2.0)) as conn, conn:
        conn.execute("PRAGMA busy_timeout = 2000")
        changed = conn.execute(
            "UPDATE incoming_transfers SET amount = amount + ? WHERE instruction_id = ?",
            (delta, instruction_id),
        ).rowcount
    assert changed == 1


def test_a_purchase_and_its_partial_refund_reconcile_with_no_mismatch(
    refunded: RefundedPurchase,
) -> None:
    report = reconcile(refunded.net.network)
    assert report.mismatches == ()
    assert report.ok
    assert report.transactions == 1
    assert render_table(report) == "no mismatches: 1 transactions reconciled"


def test_one_corrupted_credit_at_the_acquirer_is_exactly_one_amount_mismatch(
    refunded: RefundedPurchase,
) -> None:
    network = refunded.net.network
    order_id = refunded.order.order_id
    store = network.node("beta").store_path
    instruction_id = credit_of(store, order_id)
    add_to_credit(store, instruction_id, +1)
    try:
        report = reconcile(network)
    finally:
        add_to_credit(store, instruction_id, -1)
    assert report.mismatches == (
        Mismatch(
            order_id=order_id,
            record=f"acquirer beta incoming_transfers {instruction_id}",
            check="AMOUNT_DIFFERS",
            expected=str(TOTAL),
            found=str(TOTAL + 1),
        ),
    )
    assert not report.ok
    assert reconcile(network).ok


def test_a_network_that_never_ran_reports_each_missing_store(tmp_path: Path) -> None:
    network = load_network(write_dev_network(tmp_path))
    report = reconcile(network)
    assert report.transactions == 0
    assert [m.check for m in report.mismatches] == ["STORE_MISSING"] * len(network.nodes)
    assert [m.record for m in report.mismatches] == [
        f"{node.role} {node.name}" for node in network.nodes
    ]


def test_the_table_and_the_json_show_every_mismatch() -> None:
    report = ReconcileReport(
        transactions=3,
        mismatches=(
            Mismatch(
                "o-1", "acquirer beta incoming_transfers i-1", "AMOUNT_DIFFERS", "9000", "9001"
            ),
            Mismatch("", "settlement settlement_transfers i-9", "ORPHAN", "an order", "none"),
        ),
    )
    assert not report.ok
    assert render_table(report).splitlines() == [
        "ORDER  CHECK           RECORD                                EXPECTED  FOUND",
        "o-1    AMOUNT_DIFFERS  acquirer beta incoming_transfers i-1  9000      9001",
        "-      ORPHAN          settlement settlement_transfers i-9   an order  none",
    ]
    assert report.to_json() == {
        "ok": False,
        "transactions": 3,
        "mismatches": [
            {
                "order_id": "o-1",
                "record": "acquirer beta incoming_transfers i-1",
                "check": "AMOUNT_DIFFERS",
                "expected": "9000",
                "found": "9001",
            },
            {
                "order_id": "",
                "record": "settlement settlement_transfers i-9",
                "check": "ORPHAN",
                "expected": "an order",
                "found": "none",
            },
        ],
    }
    assert ReconcileReport(transactions=2, mismatches=()).to_json() == {
        "ok": True,
        "transactions": 2,
        "mismatches": [],
    }
