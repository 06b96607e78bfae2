"""One running network for the whole hostile suite, the world inside it, and the case counts.

The counts of cases sent to each RPC are printed in the terminal summary, one
line per RPC, so they show in a plain ``pytest -q`` run and in a parallel one
(:mod:`tests.support.parallel` keeps this package on one worker and carries
its summary to the controller).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.support.parallel import publish

from .harness import AUDITS, CASES, DEFECTS, Harness
from .network import HOSTILE_BUYERS, RunningNetwork, start_network
from .world import World, build_world

settings.register_profile(
    "hostile",
    deadline=None,
    database=None,  # nothing written into the checkout; failures print their reproduction
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)
settings.load_profile("hostile")


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis warns that a ~100 KB example has a large repr: that is the point here."""
    config.addinivalue_line(
        "filterwarnings", "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
    )


@pytest.fixture(scope="session")
def hostile_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The dev network and carol (alice's bank), windows closed by command only (no
    background writes)."""
    # Hostile cases are sent by the hundred on purpose; the rate limits have tests of their own.
    running = start_network(
        tmp_path_factory.mktemp("hostile"),
        buyers=HOSTILE_BUYERS,
        window_seconds=0,
        challenge_answers_per_minute=1_000_000,
        failed_authentications_per_minute=1_000_000,
    )
    yield running
    codes = running.stop()
    assert all(code == 0 for code in codes.values()), codes


@pytest.fixture(scope="session")
def world(hostile_net: RunningNetwork) -> World:
    """Real orders, holds, challenges and transfers to aim hostile requests at."""
    return asyncio.run(build_world(hostile_net))


@pytest.fixture(scope="session")
def harness(hostile_net: RunningNetwork, world: World) -> Iterator[Harness]:
    """Channels and store watchers, opened once the world is built."""
    opened = Harness(hostile_net)
    yield opened
    # Every case that changed a bank's ledger was audited as it ran; the books must also
    # balance, total money included, after the whole suite.
    opened.assert_audit_passes("/the-whole-hostile-suite")
    opened.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """One line per RPC: how many hostile cases were sent to it, and of which kinds."""
    if not CASES:
        return
    methods = sorted({method for method, _kind in CASES})
    lines = []
    for method in methods:
        kinds = {kind: n for (m, kind), n in CASES.items() if m == method}
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
        lines.append(f"hostile-input cases: {method} {sum(kinds.values())} ({detail})")
    total = sum(CASES.values())
    lines.append(f"hostile-input cases: {total} in all, over {len(methods)} RPCs")
    detail = ", ".join(f"{method} {n}" for method, n in sorted(AUDITS.items()))
    lines.append(f"paynet audit passed after: {detail or 'nothing yet'}")
    publish(session.config, "hostile-input cases per RPC", lines)
    publish(
        session.config,
        "known defects seen (writes on refusal; see the xfail tests)",
        [
            f"known defect: {method} {reason} wrote {table} x{n}"
            for (method, reason, table), n in sorted(DEFECTS.items())
        ],
    )
