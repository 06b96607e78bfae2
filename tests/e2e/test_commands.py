"""The commands a user runs: paynet up, paynet health, and the make run demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ops.devnet import write_dev_network
from payment.config import load_network
from payment.pki import init_pki

PAYNET = [sys.executable, "-m", "ops.cli"]


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} not seen; output:\n{''.join(seen)[-3000:]}")


def test_paynet_up_reaches_serving_on_every_node_and_stops_cleanly(tmp_path: Path) -> None:
    path = write_dev_network(tmp_path)
    network = load_network(path)
    init_pki(network, network.pki_dir)
    proc = subprocess.Popen(
        [*PAYNET, "up", "--network", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        lines = wait_for_line(proc, "all nodes SERVING", 60)
        assert any(line.startswith("settlement | ") for line in lines)
        health = subprocess.run(
            [*PAYNET, "health", "--network", str(path)], capture_output=True, text=True, timeout=60
        )
        assert health.returncode == 0, health.stdout + health.stderr
        rows = health.stdout.strip().splitlines()[1:]
        assert sorted(r.split()[0] for r in rows) == sorted(n.name for n in network.nodes)
        assert all(r.split()[3] == "SERVING" for r in rows)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0


def test_paynet_up_exits_non_zero_when_a_node_dies(tmp_path: Path) -> None:
    path = write_dev_network(tmp_path)
    network = load_network(path)
    init_pki(network, network.pki_dir)
    proc = subprocess.Popen(
        [*PAYNET, "up", "--network", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        wait_for_line(proc, "all nodes SERVING", 60)
        gateway_port = network.node("gateway").port
        pids = subprocess.run(["pgrep", "-f", "serve gateway"], capture_output=True, text=True)
        own = [int(p) for p in pids.stdout.split() if _cmdline_has(int(p), str(path))]
        assert own, f"no gateway process for port {gateway_port}"
        os.kill(own[0], signal.SIGKILL)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 1


def _cmdline_has(pid: int, text: str) -> bool:
    try:
        return text in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False


def test_paynet_health_reports_unreachable_nodes_and_exits_non_zero(tmp_path: Path) -> None:
    path = write_dev_network(tmp_path)
    init_pki(load_network(path), load_network(path).pki_dir)
    result = subprocess.run(
        [*PAYNET, "health", "--network", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "UNREACHABLE" in result.stdout


def test_make_run_demo_ends_with_the_json_summary_and_exit_0() -> None:
    result = subprocess.run([*PAYNET, "demo"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert [p["status"] for p in summary["payments"]] == ["DELIVERY_CONFIRMED"] * 2
    assert [p["challenged"] for p in summary["payments"]] == [False, True]
    assert summary["total_money_before"] == summary["total_money_after"] == 340000
    refunded = (2 * 4500 + 3250) // 2
    assert summary["refund"]["status"] == "PARTIALLY_REFUNDED"
    assert summary["refund"]["refunded"] == refunded
    # alice's cheque to shop is paid; her stopped cheque moves nothing.
    cheque = 3250
    assert [(c["status"], c["failure_reason"], c["stopped"]) for c in summary["cheques"]] == [
        ("DELIVERY_CONFIRMED", "", False),
        ("FAILED", "PAYMENT_STOPPED", True),
    ]
    assert summary["cheques"][0]["amount"] == cheque
    # alice pays a 45.00 book with coins withdrawn for it (20 + 20 + 5); the same coins
    # shown again for a second order are refused; no coin is left outstanding.
    coins = 4500
    cash = summary["cash"]
    assert (cash["status"], cash["double_spend"]) == ("DELIVERY_CONFIRMED", "COIN_DOUBLE_SPENT")
    assert (cash["withdrawn"], cash["amount"], cash["coins"]) == (coins, coins, 3)
    assert (cash["outstanding"], cash["wallet_unspent"]) == (0, 0)
    assert summary["audit"]["checks"]["cash_outstanding"]["deposited"] == coins
    assert (
        summary["balances_after"]["shop-sales"]
        == 2 * 4500 + 3250 + 72000 - refunded + cheque + coins
    )
    window = summary["settlement_window"]
    assert window["status"] == "SETTLED"
    # alice (alfa) paid shop (beta) 12 250 and got 6 125 back, then paid a 3 250 cheque
    # and 45.00 in coins that alfa took back through the settlement bank; bob's payment
    # stayed at beta.
    net = refunded + cheque + coins
    assert window["positions"] == {"ALFAXX01": -net, "BETAXX02": net}
    assert summary["audit"]["ok"] is True
    assert summary["reconcile"]["ok"] is True
    for step in (
        "[1 browse",
        "[2 choose, seal, send",
        "[3 check order",
        "[4 authorize",
        "[5 step-up",
        "[6 funds move",
        "[7 notify",
        "[8 confirm delivery",
        "[9 check balances",
        "[10 refund",
        "[11 audit",
        "[12 reconcile",
        "[2 withdraw coins",
        "[x double spend",
    ):
        assert any(line.startswith(step) for line in lines), step
