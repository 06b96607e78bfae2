"""The chaos run's short form, as CI runs it: every node killed, no money lost.

``make chaos`` is the long form (2,000 payments, every node killed twice).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from itertools import islice
from pathlib import Path

from bench.chaos import FAILURES, Outcome, fault_schedule, judge, schedule_digest
from customer.client import Customer
from customer.shop import purchase
from payment.config import load_network
from tests.security.secrets_scan import codes_in_inboxes, scan

CHAOS = [sys.executable, "-m", "bench.chaos"]
NODES = ["settlement", "alfa", "beta", "gateway", "shop"]


def test_the_same_seed_gives_the_same_fault_schedule() -> None:
    first = list(islice(fault_schedule(7, NODES, 2, (1.0, 3.0)), 40))
    again = list(islice(fault_schedule(7, NODES, 2, (1.0, 3.0)), 40))
    other = list(islice(fault_schedule(8, NODES, 2, (1.0, 3.0)), 40))
    assert first == again
    assert first != other


def test_the_schedule_kills_every_node_the_minimum_number_of_times_first() -> None:
    prefix = list(islice(fault_schedule(3, NODES, 2, (1.0, 3.0)), 3 * len(NODES)))
    kills = {n: sum(1 for f in prefix if f.action == "kill" and f.node == n) for n in NODES}
    pauses = {n: sum(1 for f in prefix if f.action == "pause" and f.node == n) for n in NODES}
    assert kills == dict.fromkeys(NODES, 2)
    assert pauses == dict.fromkeys(NODES, 1)
    assert all(1.0 <= f.gap_s <= 3.0 for f in prefix)


def test_chaos_short_form_loses_and_duplicates_nothing_and_leaks_no_secret(
    report: Callable[[str], None], tmp_path: Path
) -> None:
    workdir = tmp_path / "chaos"
    run = subprocess.run(
        [
            *CHAOS,
            *("--seed", "5", "--payments", "300", "--min-kills", "1", "--gap", "1", "2"),
            *("--dir", str(workdir)),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    lines = run.stdout.strip().splitlines()
    assert lines, run.stderr[-3000:]
    summary = json.loads(lines[-1])
    report(f"chaos (short form): {lines[-1]}")
    assert run.returncode == 0, run.stdout[-3000:]
    assert summary["payments"] == 300
    assert {name: summary[name] for name in FAILURES} == dict.fromkeys(FAILURES, 0)
    assert set(summary["kills_by_node"]) == set(NODES)
    assert min(summary["kills_by_node"].values()) >= 1
    assert summary["pauses"] >= len(NODES)
    # Faults delay payments; they may not make the network refuse them. Only the cheques
    # stopped before they were submitted are refused, each PAYMENT_STOPPED (the judge
    # also found none of them in any ledger).
    stopped = summary["kinds"]["cheque-stopped"]
    assert stopped > 0 and summary["kinds"]["cheque"] > 0
    assert summary["refused"] == {"PAYMENT_STOPPED": stopped}
    assert summary["acknowledged"] == 300 - stopped
    assert summary["refunds"] > 0
    # Coin payments, and second spendings of their coins: every one refused.
    assert summary["kinds"]["coins"] > 0
    assert summary["double_spends"]["tried"] == summary["double_spends"]["refused"] > 0

    # Every log line and every store, after kills mid-write, holds no key, instrument
    # number or one-time code outside the device inbox.
    network = load_network(workdir / "network.toml")
    codes = codes_in_inboxes(network)
    assert len(codes) >= summary["kinds"]["challenged"] > 0
    found = scan(network, workdir / "logs", codes)
    report(f"secrets scan after chaos (short form): {found.summary()}")
    assert found.leaks == (), found.leaks
    assert found.code_tables == {"alfa.outbox", "beta.outbox"}


def test_the_schedule_digest_names_the_schedule() -> None:
    assert schedule_digest(7, NODES, 2, (1.0, 3.0)) == schedule_digest(7, NODES, 2, (1.0, 3.0))
    assert schedule_digest(7, NODES, 2, (1.0, 3.0)) != schedule_digest(8, NODES, 2, (1.0, 3.0))


async def test_the_judge_counts_a_payment_the_ledgers_do_not_have(net) -> None:
    """The checks can fail: an acknowledged payment no ledger holds is lost, and disagrees."""
    network = net.network
    async with Customer(network, "alice") as alice:
        bought = await purchase(alice, "shop", [("book-001", 1)], say=lambda *_: None)
    opening = network.total_opening_money()
    real = Outcome(0, "alice", "frictionless", bought.order.order_id, 4500, acknowledged=True)
    result = await judge(network, [real], opening)
    assert (result.lost, result.duplicated, result.negative, result.wrong_total) == (0, 0, 0, 0)

    ghost = Outcome(1, "alice", "frictionless", "no-such-order", 4500, acknowledged=True)
    refunded = Outcome(
        2, "alice", "refunded", bought.order.order_id, 4500, acknowledged=True, refunds_minor=[1]
    )
    result = await judge(network, [ghost, refunded], opening + 1)
    assert result.lost == 3  # the ghost at issuer and acquirer, the refund no ledger has
    assert result.wrong_total == 1
    assert any("no-such-order ended missing" in line for line in result.details)
