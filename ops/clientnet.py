"""A network for clients in other languages: the dev network plus one buyer each.

``python -m ops.clientnet --dir DIR`` writes the network into DIR, makes its
PKI, saves one client profile per buyer in DIR/profiles/<language>.json (see
:mod:`customer.profile`), runs ``paynet up`` and waits until every node is
SERVING; then it keeps the network up until interrupted. ``make clients-test``
and ``tests/clients`` use the same pieces, so a client can be developed against
exactly the network that tests it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from customer.profile import write_client_profile
from ops.devnet import add_customers, write_dev_network
from ops.launcher import check_health
from payment.config import NetworkConfig, load_network
from payment.pki import init_pki

__all__ = ["BUYERS", "OPENING_BALANCE_MINOR", "ClientNetwork", "start_client_network"]

BUYERS = {"typescript": "ts-buyer", "go": "go-buyer", "java": "java-buyer"}
"""The customer each language's buyer pays as."""
OPENING_BALANCE_MINOR = 200_000
"""Every buyer starts with 2,000.00 EUR."""


@dataclass
class ClientNetwork:
    """A running ``paynet up`` and the profiles of its buyers."""

    path: Path
    """The network file."""
    network: NetworkConfig
    """Its configuration."""
    profiles: dict[str, Path]
    """Language -> that buyer's profile file."""
    process: subprocess.Popen[bytes]
    """The ``paynet up`` process."""
    log: Path
    """Where ``paynet up`` writes every node's log lines."""

    def stop(self, grace: float = 15.0) -> int:
        """Stop every node (SIGTERM to ``paynet up``); its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def write_client_network(directory: Path) -> Path:
    """The dev network in directory, with a funded buyer per client language."""
    path = write_dev_network(directory)
    add_customers(path, tuple(BUYERS.values()), OPENING_BALANCE_MINOR, banks=("alfa", "beta"))
    return path


def start_client_network(directory: Path, ready_timeout: float = 60.0) -> ClientNetwork:
    """Write the network and profiles into directory, start ``paynet up``, wait for SERVING."""
    path = write_client_network(directory)
    network = load_network(path)
    init_pki(network, network.pki_dir)
    profiles = {
        language: write_client_profile(
            network, customer, directory / "profiles" / f"{language}.json"
        )
        for language, customer in BUYERS.items()
    }
    log = directory / "paynet-up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "up", "--network", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    running = ClientNetwork(path, network, profiles, process, log)
    deadline = time.monotonic() + ready_timeout
    while True:
        statuses = asyncio.run(_health(network))
        if all(status == "SERVING" for status in statuses):
            return running
        if process.poll() is not None or time.monotonic() > deadline:
            running.stop()
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"paynet up did not start (health {statuses}):\n{tail}")
        time.sleep(0.3)


async def _health(network: NetworkConfig) -> list[str]:
    reports = await asyncio.gather(*(check_health(network, n, 1.0) for n in network.nodes))
    return [report.status for report in reports]


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the clients' network in --dir until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m ops.clientnet", description=__doc__)
    parser.add_argument("--dir", required=True, type=Path, help="an empty directory for it")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    running = start_client_network(args.dir.resolve())
    print(f"network {running.path} is SERVING; logs in {running.log}")
    for language, profile in running.profiles.items():
        print(f"  PAYNET_PROFILE={profile}   ({language} buyer {BUYERS[language]})")
    print("Ctrl-C stops it.", flush=True)
    try:
        running.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
