"""Ids two roles derive from the same inputs, so that either can name the same thing."""

from __future__ import annotations

import uuid

__all__ = ["transaction_id"]


def transaction_id(merchant_name: str, request_id: str) -> str:
    """The gateway's transaction id for a merchant's AuthorizePayment request_id.

    Derived, not drawn: a retried request, even after a crash of the gateway,
    reuses the transaction; and a merchant whose answer was lost can still
    ask the gateway about it (GetPaymentTransaction).
    """
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{merchant_name}|{request_id}"))
