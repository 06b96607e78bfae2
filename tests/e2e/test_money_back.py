"""Net and gross settlement, refunds, voids and reversals, audit and export, over processes.

Every node is its own process on mTLS; the operator commands run as the
`paynet` CLI in a subprocess, exactly as a user would type them.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from interbank.v1 import authorization_pb2, authorization_pb2_grpc, order_pb2, order_pb2_grpc

from customer.client import Customer
from customer.shop import all_balances, purchase
from ops import iso20022
from ops.audit import collect_books
from payment import errors
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

from .conftest import RunningNetwork, start_network, stop

S = order_pb2.OrderStatus


def quiet(*_args: str) -> None:
    """A step printer that prints nothing."""


def paynet(net: RunningNetwork, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the paynet CLI against the network; returns the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *args, "--network", str(net.path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def net_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The dev network settling net, windows closed by command only."""
    running = start_network(tmp_path_factory.mktemp("net-mode"), window_seconds=0)
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


@pytest.fixture(scope="module")
def gross_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The dev network settling gross."""
    running = start_network(tmp_path_factory.mktemp("gross-mode"), settlement_mode="gross")
    yield running
    stop(running.procs)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The dev network settling net with a net debit cap of 50.00 EUR per bank."""
    running = start_network(
        tmp_path_factory.mktemp("capped"), window_seconds=0, net_debit_cap_minor=5000
    )
    yield running
    stop(running.procs)


async def reserves(net: RunningNetwork) -> dict[str, int]:
    books = await collect_books(net.network)
    return {r.bank_code: r.reserve_minor for r in books[0].settlement.reserves}


async def test_partial_then_full_refund_through_the_cli(net_mode) -> None:
    network = net_mode.network
    async with Customer(network, "alice") as alice:
        bought = await purchase(alice, "shop", [("book-001", 2)], say=quiet)
        order_id = bought.order.order_id
        before = await all_balances(network)

        partial = paynet(
            net_mode, "refund", "--merchant", "shop", "--order", order_id, "--amount", "2500"
        )
        assert partial.returncode == 0, partial.stderr
        reply = json.loads(partial.stdout)
        assert reply["order"]["status"] == "ORDER_STATUS_PARTIALLY_REFUNDED"
        assert reply["order"]["refundedTotal"]["amountMinor"] == "2500"
        middle = await all_balances(network)
        assert middle["alice-current"] == before["alice-current"] + 2500
        assert middle["shop-sales"] == before["shop-sales"] - 2500

        rest = paynet(net_mode, "refund", "--merchant", "shop", "--order", order_id)
        assert rest.returncode == 0, rest.stderr
        assert json.loads(rest.stdout)["order"]["status"] == "ORDER_STATUS_REFUNDED"
        after = await all_balances(network)
        assert after["alice-current"] == before["alice-current"] + 9000
        assert after["shop-sales"] == before["shop-sales"] - 9000
        assert sum(after.values()) == network.total_opening_money()

        again = paynet(net_mode, "refund", "--merchant", "shop", "--order", order_id)
        assert again.returncode == 1
        assert "ORDER_NOT_REFUNDABLE" in again.stderr
        seen = await alice.get_order("shop", order_id)
        assert seen.status == S.ORDER_STATUS_REFUNDED
        assert seen.refunded_total.amount_minor == 9000
        statement = await alice.statement()
    refunds = [
        e
        for e in statement.entries
        if e.order_id == order_id and e.description.startswith("refund from")
    ]
    assert [e.amount.amount_minor for e in refunds] == [2500, 6500]


async def test_only_the_merchant_itself_may_refund(net_mode) -> None:
    network = net_mode.network
    shop = network.node("shop")
    pki = Pki(network.pki_dir)
    async with secure_channel(shop.address, TlsIdentity.load(pki, "alice")) as channel:
        stub = order_pb2_grpc.BackOfficeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.RefundOrder(order_pb2.RefundOrderRequest(request_id="r", order_id="x"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert errors.error_info(refused.value).reason == "ROLE_NOT_ALLOWED"


async def test_canceling_a_challenged_order_voids_its_hold(net_mode) -> None:
    network = net_mode.network
    async with Customer(network, "bob") as bob:
        before = await bob.balance()
        placed = await bob.create_order("shop", [("bike-003", 1)])
        payment = bob.seal_payment(placed, bob.instrument("account"))
        order = await bob.submit_payment(placed, payment)
        assert order.status == S.ORDER_STATUS_CHALLENGE_REQUIRED
        assert (await bob.balance()).available.amount_minor == before.available.amount_minor - 72000
        stub = order_pb2_grpc.OrderServiceStub(bob.channel("shop"))
        canceled = await stub.CancelOrder(
            order_pb2.CancelOrderRequest(request_id=str(uuid.uuid4()), order_id=order.order_id)
        )
        assert canceled.order.status == S.ORDER_STATUS_CANCELED
        after = await bob.balance()
        statement = await bob.statement()
    assert (after.booked.amount_minor, after.available.amount_minor, after.held.amount_minor) == (
        before.booked.amount_minor,
        before.available.amount_minor,
        0,
    )
    # A void posts nothing: no statement line for the order.
    assert not [e for e in statement.entries if e.order_id == order.order_id]
    pki = Pki(network.pki_dir)
    async with secure_channel(
        network.node("gateway").address, TlsIdentity.load(pki, "shop")
    ) as channel:
        gateway = authorization_pb2_grpc.GatewayServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await gateway.RefundPayment(
                authorization_pb2.RefundPaymentRequest(request_id="r", transaction_id="unknown")
            )
    assert errors.error_info(refused.value).reason == "TRANSACTION_NOT_FOUND"


async def test_a_window_settles_net_audit_passes_and_the_exports_match_the_ledger(
    net_mode, tmp_path: Path
) -> None:
    network = net_mode.network
    async with Customer(network, "alice") as alice:
        await purchase(alice, "shop", [("lamp-002", 2)], say=quiet)
    async with Customer(network, "bob") as bob:
        await purchase(bob, "shop", [("book-001", 1)], say=quiet)
    before = await reserves(net_mode)
    window = paynet(net_mode, "settlement", "window")
    assert window.returncode == 0, window.stderr
    assert json.loads(window.stdout)["status"] == "OPEN"

    closed = paynet(net_mode, "settlement", "close")
    assert closed.returncode == 0, closed.stderr
    settled = json.loads(closed.stdout)
    assert settled["status"] == "SETTLED"
    after = await reserves(net_mode)
    moved = {code: after[code] - before[code] for code in before}
    assert moved == {code: settled["positions"].get(code, 0) for code in before}
    assert sum(moved.values()) == 0

    audit = paynet(net_mode, "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    verdict = json.loads(audit.stdout)
    assert verdict["ok"] is True
    assert set(verdict["checks"]) == {
        "ledgers_balanced",
        "holders_backed",
        "positions_mirror",
        "total_money",
        "no_overdue_holds",
        "cash_outstanding",
        "cheques_cleared",
    }

    exported = paynet(
        net_mode, "export", "window", "--window", settled["window_id"], "--out", str(tmp_path)
    )
    assert exported.returncode == 0, exported.stderr
    count, total = iso20022.pacs008_totals(Path(exported.stdout.strip()).read_bytes())
    store = network.node("settlement").store_path
    conn = sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True)
    ledger_count, ledger_total = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM settlement_transfers WHERE window_id = ?"
        " AND kind = 'transfer' AND status = 'ACCEPTED'",
        (settled["window_id"],),
    ).fetchone()
    (returns,) = conn.execute(
        "SELECT COUNT(*) FROM settlement_transfers WHERE window_id = ? AND kind = 'return'"
        " AND status = 'ACCEPTED'",
        (settled["window_id"],),
    ).fetchone()
    conn.close()
    assert (count, total) == (ledger_count, ledger_total)
    assert count >= 1
    assert count + returns == settled["transfer_count"]

    statement = paynet(
        net_mode,
        "export",
        "statement",
        "--holder",
        "alice",
        "--account",
        "alice-current",
        "--out",
        str(tmp_path),
    )
    assert statement.returncode == 0, statement.stderr
    opening, closing, credits, debits = iso20022.camt053_totals(
        Path(statement.stdout.strip()).read_bytes()
    )
    balances = await all_balances(network)
    opening_config = network.customer("alice").opening_balance_minor
    assert opening == 0  # the statement starts before the account was opened
    assert closing == balances["alice-current"]
    assert opening + credits - debits == closing
    assert credits >= opening_config


async def test_gross_mode_moves_reserves_per_payment_and_has_no_windows(gross_mode) -> None:
    network = gross_mode.network
    before = await reserves(gross_mode)
    async with Customer(network, "alice") as alice:
        bought = await purchase(alice, "shop", [("book-001", 1)], say=quiet)
    after = await reserves(gross_mode)
    paid = bought.order.total.amount_minor
    assert after["ALFAXX01"] - before["ALFAXX01"] == -paid
    assert after["BETAXX02"] - before["BETAXX02"] == paid
    closed = paynet(gross_mode, "settlement", "close")
    assert closed.returncode == 1
    assert "SETTLEMENT_MODE_GROSS" in closed.stderr
    audit = paynet(gross_mode, "audit")
    assert audit.returncode == 0, audit.stdout
    assert json.loads(audit.stdout)["ok"] is True


async def test_a_payment_past_the_net_debit_cap_is_reversed_and_the_order_says_why(
    capped,
) -> None:
    network = capped.network
    async with Customer(network, "alice") as alice:
        before = await alice.balance()
        placed = await alice.create_order("shop", [("book-001", 2)])
        order = await alice.submit_payment(placed, alice.seal_payment(placed, alice.instrument()))
        after = await alice.balance()
        statement = await alice.statement()
    assert order.status == S.ORDER_STATUS_REVERSED
    assert order.failure_reason == "NET_DEBIT_CAP_EXCEEDED"
    assert after.booked.amount_minor == before.booked.amount_minor
    lines = [
        (e.description, e.amount.amount_minor)
        for e in statement.entries
        if e.order_id == order.order_id
    ]
    assert lines == [("purchase at shop", 9000), ("reversal: NET_DEBIT_CAP_EXCEEDED", 9000)]
    audit = paynet(capped, "audit")
    assert audit.returncode == 0, audit.stdout


async def test_a_refund_whose_answer_was_lost_replays_after_the_order_is_refunded(
    net_mode,
) -> None:
    """The merchant refunded, then died before remembering its answer: the retry replays."""
    network = net_mode.network
    shop = network.node("shop")
    async with Customer(network, "alice") as alice:
        bought = await purchase(alice, "shop", [("lamp-002", 1)], say=quiet)
    order_id = bought.order.order_id
    request = order_pb2.RefundOrderRequest(request_id=f"lost-{order_id}", order_id=order_id)
    tls = TlsIdentity.load(Pki(network.pki_dir), "shop")
    async with secure_channel(shop.address, tls) as channel:
        stub = order_pb2_grpc.BackOfficeServiceStub(channel)
        first = await stub.RefundOrder(request, timeout=10)
        assert first.order.status == S.ORDER_STATUS_REFUNDED
        before = await all_balances(network)
        # What a crash between the refund and storing its answer leaves behind.
        with sqlite3.connect(shop.store_path, timeout=10) as conn:
            deleted = conn.execute(
                "DELETE FROM idempotency WHERE request_id = ?", (request.request_id,)
            ).rowcount
        assert deleted == 1
        again = await stub.RefundOrder(request, timeout=10)
        changed = order_pb2.RefundOrderRequest(
            request_id=request.request_id,
            order_id=order_id,
            amount={"amount_minor": 1, "currency_code": "EUR"},
        )
        with pytest.raises(grpc.aio.AioRpcError) as reused:
            await stub.RefundOrder(changed, timeout=10)
    assert again.refund_id == first.refund_id
    assert again.order.status == S.ORDER_STATUS_REFUNDED
    assert again.order.refunded_total.amount_minor == 3250
    assert await all_balances(network) == before
    assert errors.error_info(reused.value).reason == "IDEMPOTENCY_KEY_REUSED"
