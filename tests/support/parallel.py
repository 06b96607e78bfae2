"""What a parallel (pytest-xdist) run needs: tests that share a network stay on
one worker, and the terminal summary still shows every section.

Scheduling: :class:`NetworkScopeScheduling` hands out whole modules, so a
module's network starts once; a package whose tests share session fixtures
(one network, one build of the clients) goes whole to one worker, so they
start once and its tallies are complete.

Summary: a conftest hands its section to :func:`publish` when the session
finishes. In a plain run it waits in the config's stash; on a worker, whose
output is never shown, it travels to the controller with the worker's output
(:func:`receive`, called from ``pytest_testnodedown``). The root conftest
prints every section with :func:`write_sections`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

__all__ = ["SESSION_PACKAGES", "NetworkScopeScheduling", "publish", "receive", "write_sections"]

SESSION_PACKAGES = ("tests/clients/", "tests/hostile/")
"""Packages whose tests share session fixtures: each runs whole on one worker."""

_SECTIONS = pytest.StashKey[dict[str, list[str]]]()
_WORKER_OUTPUT_KEY = "paynet_summary_sections"


class NetworkScopeScheduling(LoadScopeScheduling):  # type: ignore[misc]
    """xdist's load-by-module scheduling, with each of SESSION_PACKAGES as one scope."""

    def _split_scope(self, nodeid: str) -> str:
        for package in SESSION_PACKAGES:
            if nodeid.startswith(package):
                return package
        return nodeid.split("::", 1)[0]


def publish(config: pytest.Config, title: str, lines: Sequence[str]) -> None:
    """Add lines to the summary section title (sections of the same title are joined)."""
    if not lines:
        return
    workeroutput: dict[str, object] | None = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        sent = workeroutput.setdefault(_WORKER_OUTPUT_KEY, [])
        assert isinstance(sent, list)
        sent.append([title, list(lines)])
        return
    config.stash.setdefault(_SECTIONS, {}).setdefault(title, []).extend(lines)


def receive(config: pytest.Config, workeroutput: Mapping[str, object]) -> None:
    """On the controller: the sections a finished worker published."""
    sent = workeroutput.get(_WORKER_OUTPUT_KEY, [])
    assert isinstance(sent, list)
    for title, lines in sent:
        publish(config, title, lines)


def write_sections(config: pytest.Config, terminalreporter: pytest.TerminalReporter) -> None:
    """Print every published section."""
    for title, lines in config.stash.get(_SECTIONS, {}).items():
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line)
