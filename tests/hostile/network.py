"""A real network for the hostile-input tests: every node its own process, on mTLS.

Each node's SQLite store is watched read-only, so a test can tell whether a
call wrote anything: :meth:`Stores.snapshot` digests every row of every table
of every node in one read transaction per store.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ops.devnet import write_dev_network
from ops.launcher import check_health
from payment.config import NetworkConfig, Role, load_network
from payment.pki import init_pki

__all__ = ["STORE_FILES", "RunningNetwork", "Snapshot", "Stores", "start_network"]

STORE_FILES: Mapping[Role, str] = {
    Role.SETTLEMENT: "settlement.sqlite3",
    Role.BANK: "bank.sqlite3",
    Role.GATEWAY: "gateway.sqlite3",
    Role.MERCHANT: "merchant.sqlite3",
}
"""Each role's store file in its node's data_dir."""

Snapshot = dict[tuple[str, str], tuple[int, str]]
"""(node, table) -> (row count, SHA-256 over the table's rows)."""


class Stores:
    """Read-only connections to every node's store.

    A store is digested again only when another connection committed to it
    since the last digest (SQLite's ``PRAGMA data_version``); otherwise its
    last digest is still exact.
    """

    def __init__(self, network: NetworkConfig) -> None:
        self._conns: dict[str, sqlite3.Connection] = {}
        self._cached: dict[str, tuple[int, Snapshot]] = {}
        for node in network.nodes:
            path = node.data_dir / STORE_FILES[node.role]
            self._conns[node.name] = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
            )

    def snapshot(self) -> Snapshot:
        """Every table of every store, digested row by row."""
        digests: Snapshot = {}
        for name, conn in self._conns.items():
            conn.execute("BEGIN")
            try:
                (version,) = conn.execute("PRAGMA data_version").fetchone()
                cached = self._cached.get(name)
                if cached is None or cached[0] != version:
                    cached = (version, _digest(name, conn))
                    self._cached[name] = cached
                digests.update(cached[1])
            finally:
                conn.execute("ROLLBACK")
        return digests

    def close(self) -> None:
        """Close every connection."""
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def _digest(name: str, conn: sqlite3.Connection) -> Snapshot:
    digests: Snapshot = {}
    tables = [
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    ]
    for table in tables:
        rows = sorted(repr(row) for row in conn.execute(f'SELECT * FROM "{table}"'))  # noqa: S608
        digest = hashlib.sha256("\n".join(rows).encode("utf-8", "surrogatepass"))
        digests[(name, table)] = (len(rows), digest.hexdigest())
    return digests


def changed_tables(before: Snapshot, after: Snapshot) -> dict[tuple[str, str], tuple[int, int]]:
    """The (node, table)s whose rows differ, with their row counts before and after."""
    return {
        key: (before.get(key, (0, ""))[0], after.get(key, (0, ""))[0])
        for key in before.keys() | after.keys()
        if before.get(key) != after.get(key)
    }


@dataclass
class RunningNetwork:
    """A started network: its file, config, working directory and node processes."""

    path: Path
    network: NetworkConfig
    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log(self, name: str) -> str:
        """A node's log so far."""
        return (self.workdir / "logs" / f"{name}.log").read_text(errors="replace")

    def dead(self) -> dict[str, int]:
        """Nodes whose process has exited, with their exit codes."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def stop(self) -> dict[str, int]:
        """SIGTERM every node (SIGKILL after 10 s); their exit codes."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        return codes


def start_network(workdir: Path, **rules: int) -> RunningNetwork:
    """Write the dev network with rules overridden, make its PKI and start every node."""
    path = write_dev_network(workdir, **rules)  # type: ignore[arg-type]  # rules are all ints
    network = load_network(path)
    init_pki(network, network.pki_dir)
    (workdir / "logs").mkdir()
    running = RunningNetwork(path, network, workdir)
    for node in network.nodes:
        log = (workdir / "logs" / f"{node.name}.log").open("wb")
        running.procs[node.name] = subprocess.Popen(
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
    deadline = time.monotonic() + 30
    while True:
        reports = asyncio.run(_health(network))
        if all(status == "SERVING" for status in reports):
            return running
        if running.dead() or time.monotonic() > deadline:
            running.stop()
            tails = {n: running.log(n)[-2000:] for n in running.procs}
            raise RuntimeError(f"network did not start: health={reports} logs={tails}")
        time.sleep(0.2)


async def _health(network: NetworkConfig) -> list[str]:
    reports = await asyncio.gather(*(check_health(network, n, 1.0) for n in network.nodes))
    return [r.status for r in reports]
