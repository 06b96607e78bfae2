"""What a case of the idempotency table is: a prepared request, its observations and its
one effect (:class:`Prepared`), and how an RPC is exercised (:class:`Case`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from .harness import Net, Refusal

__all__ = ["Case", "Prepare", "Prepared", "Repeat", "Snapshot", "delta"]

Snapshot = dict[str, Any]
"""Named observations of the network; two snapshots compare equal when nothing changed."""


@dataclass(repr=False)
class Prepared:
    """A valid request in a prepared network, how to observe it and what its effect is."""

    request: Message
    """The request, with the case's request_id."""
    observe: Callable[[], Awaitable[Snapshot]]
    """Everything the request (or a variant) could change, as its parties see it."""
    effect: Callable[[Snapshot, Snapshot, Any], Awaitable[None]]
    """Asserts that (before, after, response) show the effect exactly once."""
    variants: Sequence[Message] = ()
    """Same request_id, other content: each would have an effect if it ran (rule 2)."""
    intervene: Callable[[], Awaitable[None]] | None = None
    """Another request (new request_id) changing the same state, before a replay (rule 1)."""
    caller: str | None = None
    """Who calls, when not the case's caller: a participant of the same role whose state
    this request may change only once (a cheque account is closed once)."""

    def __repr__(self) -> str:
        # Requests may hold a one-time code or a signed instruction: never shown.
        return f"Prepared({type(self.request).__name__}, {len(self.variants)} variant(s))"


Prepare = Callable[[Net, str, bool], Awaitable[Prepared]]
"""(net, request_id, with_variants) -> Prepared."""

Repeat = Callable[[Message, Message, bool], str | None]
"""(first answer, a repeat's answer, whether the network had come to rest before the
repeat) -> what is wrong with the repeat's answer, or None."""


@dataclass(frozen=True)
class Case:
    """How to exercise one mutating RPC."""

    caller: str
    """Whose certificate calls it."""
    node: str
    """The node that serves it."""
    prepare: Prepare
    """Builds the request and its preconditions."""
    refusal: Refusal | None = None
    """For a deprecated RPC: the refusal every call gets instead of rules 1-4."""
    no_variant: str = ""
    """Why rule 2 cannot be exercised, when it cannot."""
    repeat: Repeat | None = None
    """For an RPC whose repeat answers its subject as it is now (a deposit, an order)
    rather than the stored first answer: judges a repeat's answer against the first.
    Unset: a repeat must answer exactly the first answer."""

    def who(self, prepared: Prepared) -> str:
        """Who calls for this prepared request."""
        return prepared.caller or self.caller

    def same_answer(self, first: Message, again: Message, *, at_rest: bool) -> str | None:
        """None if again is a right answer to a repeat of the request first answered."""
        if self.repeat is not None:
            return self.repeat(first, again, at_rest)
        return None if again == first else "not the first answer"


def delta(before: Snapshot, after: Snapshot, key: str) -> tuple[int, ...] | int:
    """after - before of an int or a tuple of ints observation."""
    old, new = before[key], after[key]
    if isinstance(old, int):
        return int(new) - old
    return tuple(n - o for n, o in zip(new, old, strict=True))
