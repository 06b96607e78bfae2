"""A real network for the hostile-input tests: every node its own process, on mTLS.

The network is started by :mod:`tests.support.network`. Each node's SQLite
store is watched read-only, so a test can tell whether a call wrote anything:
:meth:`Stores.snapshot` digests every row of every table of every node in one
read transaction per store.
"""

from __future__ import annotations

import hashlib
import sqlite3

from payment.config import NetworkConfig
from tests.support import RunningNetwork, start_network

__all__ = [
    "HOSTILE_BUYERS",
    "RunningNetwork",
    "Snapshot",
    "Stores",
    "changed_tables",
    "start_network",
]

HOSTILE_BUYERS = ("carol",)
"""Customers added to the dev network (carol banks at alfa): her cheque account, closed
when the world is built, is CloseChequeAccount's target, so no hostile case closes alice's."""

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
            self._conns[node.name] = sqlite3.connect(
                f"{node.store_path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
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
