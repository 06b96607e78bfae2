"""Ids two roles derive from the same inputs, so that either can name the same thing."""

from __future__ import annotations

import uuid

__all__ = ["MAX_REQUEST_ID_BYTES", "derived_request_id", "transaction_id"]

MAX_REQUEST_ID_BYTES = 128
"""The bound of every request_id field (bounds.proto): a derived id must stay within it."""


def transaction_id(merchant_name: str, request_id: str) -> str:
    """The gateway's transaction id for a merchant's AuthorizePayment request_id.

    Derived, not drawn: a retried request, even after a crash of the gateway,
    reuses the transaction; and a merchant whose answer was lost can still
    ask the gateway about it (GetPaymentTransaction).
    """
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{merchant_name}|{request_id}"))


def derived_request_id(kind: str, *parts: str) -> str:
    """The request_id a node sends a peer for a step of its own request: ``kind:part:...``.

    Derived, so a retry of the node's request sends the same id. Parts are the
    caller's ids, each up to the bound themselves, so the joined id can exceed
    it; then it is ``kind:`` and a digest of the joined id: still one per input,
    and within the bound.
    """
    joined = ":".join((kind, *parts))
    if len(joined.encode("utf-8")) <= MAX_REQUEST_ID_BYTES:
        return joined
    return f"{kind}:{uuid.uuid5(uuid.NAMESPACE_URL, joined)}"
