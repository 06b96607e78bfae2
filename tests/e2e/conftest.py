"""A real network for end-to-end tests: every node its own process, on mTLS.

The network is started by :mod:`tests.support.network`; its names are
re-exported here for the tests that import them from this module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import RunningNetwork, launch_node, start_network, stop

__all__ = ["RunningNetwork", "launch_node", "start_network", "stop"]


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
