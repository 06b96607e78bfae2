"""Network files and running networks for tests: the one way a test boots nodes.

:func:`write_network` writes the dev network with fresh loopback ports under a
directory (rules overridden, buyers added); :func:`make_pki` loads it and makes
its PKI; :func:`start_network` does both and starts every node as its own
``paynet serve`` process (:func:`ops.launcher.serve_command`), waiting until
each answers SERVING over mTLS (:func:`ops.launcher.wait_until_serving`).

A node's output goes to ``<workdir>/logs/<name>.log``, appended across restarts.
Tests drive the processes synchronously (poll, kill, restart), so they are
:class:`subprocess.Popen` objects rather than the launcher's asyncio children.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bank.mint import DENOMINATIONS_MINOR, make_keys
from ops.devnet import add_customers, write_dev_network
from ops.launcher import NodeDied, serve_command, wait_until_serving
from payment.config import NetworkConfig, NodeConfig, Role, load_network
from payment.pki import init_pki

from .ports import pick_ports

__all__ = [
    "BUYER_OPENING_MINOR",
    "START_TIMEOUT_S",
    "STOP_GRACE_S",
    "RunningNetwork",
    "launch_node",
    "make_pki",
    "start_network",
    "start_nodes",
    "stop",
    "write_network",
]

BUYER_OPENING_MINOR = 100_000_000
"""What each added buyer opens with: 1,000,000.00 EUR."""
START_TIMEOUT_S = 30.0
"""How long a network has to answer SERVING on every node."""
STOP_GRACE_S = 10.0
"""How long a node has to exit after SIGTERM before it is killed."""


def write_network(
    directory: Path,
    *,
    reflection: bool = True,
    settlement_mode: str | None = None,
    buyers: tuple[str, ...] = (),
    **rules: int,
) -> Path:
    """The dev network file under directory: fresh ports, rules overridden, buyers added.

    Ports come from :func:`tests.support.ports.pick_ports` (this worker's own
    under pytest-xdist). Buyers get BUYER_OPENING_MINOR each, alternately at alfa and beta.
    """
    path = write_dev_network(
        directory,
        reflection=reflection,
        settlement_mode=settlement_mode,
        pick_ports=pick_ports,
        **rules,
    )
    if buyers:
        add_customers(path, buyers, BUYER_OPENING_MINOR, banks=("alfa", "beta"))
    return path


def make_pki(path: Path) -> NetworkConfig:
    """Load the network file at path and make its PKI in its pki_dir, with the banks'
    mint keys from this machine's test cache (:func:`share_mint_keys`)."""
    network = load_network(path)
    init_pki(network, network.pki_dir)
    share_mint_keys(network)
    return network


MINT_CACHE = Path(tempfile.gettempdir()) / f"paynet-test-mint-v1-{os.getuid()}"
"""Mint keys made once per machine and test day for every test network's banks."""


def share_mint_keys(network: NetworkConfig) -> None:
    """Give each bank of a test network the cached mint keys of the bank of its name.

    A bank makes its 12 RSA-3072 denomination keys when first asked (about 3 s on
    two cores); a suite that starts dozens of networks would pay that for each. The
    keys are real and complete, made by :func:`bank.mint.make_keys` under a lock
    (pytest-xdist workers share the cache), once a day; each network's banks get a
    copy, as if they had made them.
    """
    day = dt.date.today().isoformat()
    for node in network.nodes_with_role(Role.BANK):
        cached = MINT_CACHE / day / network.currency / node.name
        if not (cached / "done").exists():
            cached.mkdir(parents=True, exist_ok=True)
            with (cached.parent / ".lock").open("w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not (cached / "done").exists():
                    stamp = int(dt.datetime.now(dt.UTC).timestamp())
                    make_keys(cached, DENOMINATIONS_MINOR, network.currency, stamp)
                    (cached / "done").touch()
        target = network.pki_dir / node.name / "mint"
        target.mkdir(parents=True, exist_ok=True)
        for item in cached.glob("*.*"):
            shutil.copy2(item, target / item.name)


@dataclass
class RunningNetwork:
    """A started network: its file, config, working directory and node processes."""

    path: Path
    network: NetworkConfig
    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log_path(self, name: str) -> Path:
        """Where a node's output goes."""
        return log_path(self.workdir, name)

    def log(self, name: str) -> bytes:
        """A node's output so far."""
        return self.log_path(name).read_bytes()

    def dead(self) -> dict[str, int]:
        """Nodes whose process has exited, with their exit codes."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def stop(self) -> dict[str, int]:
        """SIGTERM every node (SIGKILL after STOP_GRACE_S); their exit codes."""
        return stop(self.procs)


def log_path(workdir: Path, name: str) -> Path:
    return workdir / "logs" / f"{name}.log"


def launch_node(
    path: Path, node: NodeConfig, workdir: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``paynet serve`` for one node of the network file at path, output appended to its log;
    env adds to the node's environment (PAYNET_TIME_TRAVEL_SECONDS, say)."""
    log = log_path(workdir, node.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            serve_command(node, path),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
        )


def start_nodes(path: Path, network: NetworkConfig, workdir: Path) -> RunningNetwork:
    """Start every node of the network file at path and wait until all are SERVING.

    A node that exits or a network not SERVING in START_TIMEOUT_S stops the
    others and raises RuntimeError with the tail of every node's log.
    """
    running = RunningNetwork(path, network, workdir)
    for node in network.nodes:
        running.procs[node.name] = launch_node(path, node, workdir)
    try:
        asyncio.run(wait_until_serving(network, START_TIMEOUT_S, running.dead))
    except (NodeDied, TimeoutError) as exc:
        codes = running.stop()
        tails = {n: running.log(n)[-2000:].decode(errors="replace") for n in running.procs}
        raise RuntimeError(f"network did not start: {exc}; exit codes {codes}; {tails}") from exc
    return running


def start_network(
    workdir: Path,
    *,
    settlement_mode: str | None = None,
    buyers: tuple[str, ...] = (),
    **rules: int,
) -> RunningNetwork:
    """The dev network under workdir, rules overridden and buyers added, every node SERVING."""
    path = write_network(
        workdir, reflection=True, settlement_mode=settlement_mode, buyers=buyers, **rules
    )
    return start_nodes(path, make_pki(path), workdir)


def stop(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, int]:
    """SIGTERM these nodes, SIGKILL any still running after STOP_GRACE_S; their exit codes."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes: dict[str, int] = {}
    for name, proc in procs.items():
        try:
            codes[name] = proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            codes[name] = proc.wait()
    return codes
