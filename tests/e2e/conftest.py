"""A real network for end-to-end tests: every node its own process, on mTLS."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops.devnet import add_customers, write_dev_network
from ops.launcher import check_health
from payment.config import NetworkConfig, NodeConfig, load_network
from payment.pki import init_pki


@dataclass
class RunningNetwork:
    """A started network: its file, config, working directory and node processes."""

    path: Path
    network: NetworkConfig
    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]]

    def log(self, name: str) -> bytes:
        return (self.workdir / "logs" / f"{name}.log").read_bytes()


def start_network(
    workdir: Path,
    *,
    settlement_mode: str | None = None,
    buyers: tuple[str, ...] = (),
    **rules: int,
) -> RunningNetwork:
    """The dev network, rules overridden, plus buyers with 1,000,000.00 EUR each."""
    path = write_dev_network(workdir, settlement_mode=settlement_mode, **rules)
    add_customers(path, buyers, 100_000_000, banks=("alfa", "beta"))
    network = load_network(path)
    init_pki(network, network.pki_dir)
    (workdir / "logs").mkdir()
    procs = {node.name: launch_node(path, node, workdir) for node in network.nodes}
    deadline = time.monotonic() + 30
    while True:
        reports = asyncio.run(_health(network))
        if all(r == "SERVING" for r in reports):
            break
        dead = {n: p.returncode for n, p in procs.items() if p.poll() is not None}
        if dead or time.monotonic() > deadline:
            stop(procs)
            logs = {n: (workdir / "logs" / f"{n}.log").read_text()[-2000:] for n in procs}
            raise RuntimeError(f"network did not start: dead={dead} health={reports} logs={logs}")
        time.sleep(0.2)
    return RunningNetwork(path, network, workdir, procs)


def launch_node(path: Path, node: NodeConfig, workdir: Path) -> subprocess.Popen[bytes]:
    """``paynet serve`` for one node, its output appended to workdir/logs/<name>.log."""
    with (workdir / "logs" / f"{node.name}.log").open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ops.cli",
                "serve",
                str(node.role),
                "--network",
                str(path),
                "--name",
                node.name,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )


async def _health(network: NetworkConfig) -> list[str]:
    reports = await asyncio.gather(*(check_health(network, n, 1.0) for n in network.nodes))
    return [r.status for r in reports]


def stop(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, int]:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes = {}
    for name, proc in procs.items():
        try:
            codes[name] = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            codes[name] = proc.wait()
    return codes


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The dev network, shared by a module's tests."""
    running = start_network(tmp_path_factory.mktemp("net"))
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


@pytest.fixture(scope="module")
def short_lived_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """A network whose codes live 1 s and holds 3 s, for expiry tests."""
    running = start_network(
        tmp_path_factory.mktemp("short"), challenge_ttl_seconds=1, hold_ttl_seconds=3
    )
    yield running
    stop(running.procs)
