"""One real network for the idempotency tests: every node its own process, on mutual TLS.

The dev network is copied with free ports, then tuned so that many payments in a
few seconds stay frictionless and settle: no velocity challenge, windows closed
by command only, a rich payer (alice) and a net debit cap that does not bind.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops.devnet import write_dev_network
from ops.launcher import check_health
from payment.config import NetworkConfig, load_network
from payment.pki import init_pki

PAYER_OPENING_MINOR = 10_000_000
"""alice's opening balance (100 000.00 EUR): enough for every case's purchases and holds."""
START_TIMEOUT_S = 30.0


@dataclass
class RunningNetwork:
    """A started network: its file, its configuration, its directory and its node processes."""

    path: Path
    network: NetworkConfig
    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]]


def write_network(workdir: Path) -> Path:
    """The dev network file, tuned for the idempotency tests, written under workdir."""
    path = write_dev_network(
        workdir,
        window_seconds=0,
        velocity_max_payments=1_000_000,
        net_debit_cap_minor=PAYER_OPENING_MINOR,
        # Every rule is sent many times on purpose; the rate limits have tests of their own.
        challenge_answers_per_minute=1_000_000,
        failed_authentications_per_minute=1_000_000,
    )
    text = path.read_text(encoding="utf-8")
    text, count = re.subn(
        r'(name = "alice"(?:\n[^\[\n][^\n]*)*?\nopening_balance_minor = )\d+',
        rf"\g<1>{PAYER_OPENING_MINOR}",
        text,
    )
    if count != 1:
        raise RuntimeError("the dev network has no customer alice with an opening balance")
    path.write_text(text, encoding="utf-8")
    return path


def start_network(workdir: Path) -> RunningNetwork:
    """Write the network and its PKI, start every node and wait until all are SERVING."""
    path = write_network(workdir)
    network = load_network(path)
    init_pki(network, network.pki_dir)
    logs = workdir / "logs"
    logs.mkdir()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for node in network.nodes:
        with (logs / f"{node.name}.log").open("wb") as log:
            procs[node.name] = subprocess.Popen(
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
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        reports = asyncio.run(_health(network))
        if all(status == "SERVING" for status in reports):
            return RunningNetwork(path, network, workdir, procs)
        dead = {name: p.returncode for name, p in procs.items() if p.poll() is not None}
        if dead or time.monotonic() > deadline:
            stop_network(procs)
            tails = {n: (logs / f"{n}.log").read_text()[-2000:] for n in procs}
            raise RuntimeError(f"network did not start: dead={dead} health={reports} {tails}")
        time.sleep(0.2)


async def _health(network: NetworkConfig) -> list[str]:
    reports = await asyncio.gather(*(check_health(network, n, 1.0) for n in network.nodes))
    return [report.status for report in reports]


def stop_network(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, int]:
    """SIGTERM the nodes this fixture started (SIGKILL after 10 s); their exit codes."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes: dict[str, int] = {}
    for name, proc in procs.items():
        try:
            codes[name] = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            codes[name] = proc.wait()
    return codes


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The tuned dev network, shared by a module's tests; every node must stop cleanly."""
    started = start_network(tmp_path_factory.mktemp("idempotency"))
    yield started
    codes = stop_network(started.procs)
    assert all(code == 0 for code in codes.values()), codes
