"""Shared fixtures: a throwaway dev network (file + PKI) per test; the run's summary.

Every section of the terminal summary (these reports, the hostile-input case
counts) is printed here, whether the run is plain or parallel
(:mod:`tests.support.parallel`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog

from payment.config import NetworkConfig
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel
from tests.support import make_pki, write_network
from tests.support.parallel import NetworkScopeScheduling, publish, receive, write_sections


@dataclass
class DevNet:
    """A network file with its PKI, in a temporary directory."""

    path: Path
    network: NetworkConfig

    @property
    def pki(self) -> Pki:
        return Pki(self.network.pki_dir)

    def tls(self, name: str) -> TlsIdentity:
        return TlsIdentity.load(self.pki, name)

    def channel(self, as_name: str, address: str) -> grpc.aio.Channel:
        """An mTLS channel to address presenting participant as_name's certificate."""
        return secure_channel(address, self.tls(as_name))


@pytest.fixture
def make_devnet(tmp_path: Path) -> Callable[..., DevNet]:
    def make(**overrides: int | bool) -> DevNet:
        reflection = bool(overrides.pop("reflection", True))
        path = write_network(
            tmp_path / "net", reflection=reflection, **{k: int(v) for k, v in overrides.items()}
        )
        return DevNet(path, make_pki(path))

    return make


@pytest.fixture
def devnet(make_devnet: Callable[..., DevNet]) -> DevNet:
    return make_devnet()


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """A test that configures logging (a tool's main writing to the test's captured
    output, say) leaves it as it found it: the next test, whichever it is, must not
    log to a stream that was closed when the first one ended."""
    before = structlog.get_config()
    yield
    if structlog.get_config() != before:
        structlog.configure(**before)


_REPORTS: list[str] = []


@pytest.fixture
def report() -> Callable[[str], None]:
    """Add a line to the run's summary (figures a test measured, shown even when it passes)."""
    return _REPORTS.append


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> NetworkScopeScheduling:
    """Tests that share a network run on one worker of a parallel run."""
    return NetworkScopeScheduling(config, log)


def pytest_sessionfinish(session: pytest.Session) -> None:
    publish(session.config, "paynet reports", _REPORTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """A parallel run's worker finished: keep the summary sections it published."""
    receive(node.config, getattr(node, "workeroutput", {}))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    write_sections(config, terminalreporter)


def require_tool(missing: str | None, install: str) -> None:
    """Skip a test that needs a tool this machine lacks (missing says why), telling what
    to install; under CI=true, where every tool must be present, fail instead."""
    if missing is None:
        return
    message = f"{missing}; install {install}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: a missing tool is a failure)")
    pytest.skip(message)
