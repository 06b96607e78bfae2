"""Ports for the networks tests write: each pytest-xdist worker takes its own.

ops.devnet.free_ports asks the kernel for any free port and releases it before
the node binds it; in a parallel run another worker could be handed the same
port in between, and one of the two networks would not start. Under xdist each
worker instead picks from its own block of ports below the kernel's ephemeral
range (where no outgoing connection takes a port either), so two workers never
pick the same one. A plain run keeps free_ports.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

from ops.devnet import free_ports

__all__ = ["pick_ports"]

LOWEST_PORT = 10_000
"""The first port of the blocks shared out between workers."""


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands out on its own (32768 by default on Linux)."""
    try:
        low, _high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low)
    except (OSError, ValueError):
        return 32_768


def _ports_of_this_worker() -> Iterator[int] | None:
    """This worker's block of ports, endlessly from a random start; None outside xdist.

    The random start keeps two parallel runs on one machine apart, mostly.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if not worker.startswith("gw") or workers < 1:
        return None
    size = (_ephemeral_floor() - LOWEST_PORT) // workers
    if size < 1_000:  # no room below the kernel's own ports: share them as a plain run does
        return None
    start = LOWEST_PORT + int(worker.removeprefix("gw")) * size
    offset = random.SystemRandom().randrange(size)
    return itertools.cycle([*range(start + offset, start + size), *range(start, start + offset)])


_WORKER_PORTS = _ports_of_this_worker()


def pick_ports(count: int) -> list[int]:
    """count distinct free ports on 127.0.0.1, from this worker's block under xdist.

    Each is bound until the last is picked, as free_ports does; a port something
    else holds is skipped.
    """
    if _WORKER_PORTS is None:
        return free_ports(count)
    with contextlib.ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            port = next(_WORKER_PORTS)
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            ports.append(port)
    return ports
