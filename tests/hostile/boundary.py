"""One boundary case: a request built from the world, and the one answer it must get.

Shared by :mod:`tests.hostile.test_boundaries` (which runs every case) and the
modules that list cases for a part of the contracts
(:mod:`tests.hostile.cheque_boundaries`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from google.protobuf.message import Message

from .catalog import Payer
from .harness import Tables
from .world import World

__all__ = ["Boundary", "Build"]

Build = Callable[[World, Payer], Message | bytes]
"""A request (or raw bytes), from the world and alice's card, signing key and cheque kit."""


@dataclass(frozen=True)
class Boundary:
    """One boundary request and its exact answer."""

    id: str
    """The test id."""
    rpc: str
    """Service/Method."""
    node: str
    """The serving node (the spec gives the caller, unless caller is set)."""
    build: Build
    """The request, from the world and alice's card and signing key."""
    code: str
    """The status code name, or OK."""
    reason: str | None = None
    """The ErrorInfo reason of a refusal."""
    writes: Tables = frozenset()
    """What the answer may change (documented writes of the flow)."""
    defects: Tables = frozenset()
    """What it may change because of a known defect (counted in the summary)."""
    metadata: Mapping[str, str] | Callable[[World], Mapping[str, str]] = field(default_factory=dict)
    """ErrorInfo metadata the refusal must carry (or a function of the world giving it)."""
    response: Callable[[bytes, World], None] | None = None
    """Checks the response of a success."""
    defect: str | None = None
    """A known defect that makes the case fail today: a strict xfail."""
    before: Build | None = None
    """A request sent first, unchecked (the one a replay or a reused id refers to)."""
    caller: str | None = None
    """Who calls, when not the spec's caller (a participant of a role the RPC admits)."""
    settled: Callable[[bytes, World], None] | None = None
    """For a case whose effect goes on after its answer (a cash letter, a notice): the
    network is left to settle, the audit must pass, and the same request sent again
    (a repeat) must succeed, writing nothing, with a response this checks."""
