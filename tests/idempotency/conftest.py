"""One real network for the idempotency tests: every node its own process, on mutual TLS.

The dev network is copied with free ports, then tuned so that many payments in a
few seconds stay frictionless and settle: no velocity challenge, windows closed
by command only, a rich payer (alice) and a net debit cap that does not bind; and
customers at alfa whose cheque accounts may be closed (:data:`CHEQUE_CLOSERS`).
It is started by :mod:`tests.support.network`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.devnet import add_customers
from tests.support import RunningNetwork, make_pki, start_nodes, stop, write_network

__all__ = [
    "CHEQUE_CLOSERS",
    "PAYER_OPENING_MINOR",
    "RunningNetwork",
    "start_tuned_network",
    "write_tuned_network",
]

PAYER_OPENING_MINOR = 10_000_000
"""alice's opening balance (100 000.00 EUR): enough for every case's purchases and holds."""
CHEQUE_CLOSERS = ("carol", "dave", "erin", "frank")
"""Customers at alfa whose cheque accounts the CloseChequeAccount case closes, one per rule
(a cheque account is closed once)."""


def write_tuned_network(workdir: Path) -> Path:
    """The dev network file, tuned for the idempotency tests, written under workdir."""
    path = write_network(
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
    add_customers(path, CHEQUE_CLOSERS, 0, banks=("alfa",))
    return path


def start_tuned_network(workdir: Path) -> RunningNetwork:
    """Write the tuned network and its PKI, start every node and wait until all are SERVING."""
    path = write_tuned_network(workdir)
    return start_nodes(path, make_pki(path), workdir)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The tuned dev network, shared by a module's tests; every node must stop cleanly."""
    started = start_tuned_network(tmp_path_factory.mktemp("idempotency"))
    yield started
    codes = stop(started.procs)
    assert all(code == 0 for code in codes.values()), codes
