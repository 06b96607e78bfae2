"""Shared fixtures: a throwaway dev network (file + PKI) per test."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from ops.devnet import write_dev_network
from payment.config import NetworkConfig, load_network
from payment.pki import Pki, init_pki
from payment.tls import TlsIdentity, secure_channel


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
        path = write_dev_network(
            tmp_path / "net", reflection=reflection, **{k: int(v) for k, v in overrides.items()}
        )
        network = load_network(path)
        init_pki(network, network.pki_dir)
        return DevNet(path, network)

    return make


@pytest.fixture
def devnet(make_devnet: Callable[..., DevNet]) -> DevNet:
    return make_devnet()


_REPORTS: list[str] = []


@pytest.fixture
def report() -> Callable[[str], None]:
    """Add a line to the run's summary (figures a test measured, shown even when it passes)."""
    return _REPORTS.append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORTS:
        terminalreporter.section("paynet reports")
        for line in _REPORTS:
            terminalreporter.write_line(line)


def require_tool(missing: str | None, install: str) -> None:
    """Skip a test that needs a tool this machine lacks (missing says why), telling what
    to install; under CI=true, where every tool must be present, fail instead."""
    if missing is None:
        return
    message = f"{missing}; install {install}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: a missing tool is a failure)")
    pytest.skip(message)
