"""The two interbank messages that settle, and what every bank reads off either of them.

A credit transfer (after pacs.008, issuer -> acquirer) and a payment return
(after pacs.004, acquirer -> issuer) travel the same way: the paying bank
records and sends it, the settlement bank settles it, the receiving bank
credits it. :func:`fields` gives the parts that path needs, whichever it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from interbank.v1 import settlement_pb2 as pb

__all__ = [
    "RETURN",
    "TRANSFER",
    "Deliver",
    "MessageFields",
    "SettlementMessage",
    "StatusAnswer",
    "fields",
    "parse",
]

TRANSFER, RETURN = "transfer", "return"
"""The kinds, as stored."""

SettlementMessage = pb.CreditTransfer | pb.PaymentReturn
"""What settles: a credit transfer or a payment return."""

StatusAnswer = tuple[str, str]
"""A bank's answer about a message: (ACCEPTED, REJECTED or PENDING, reason code)."""

Deliver = Callable[[str, SettlementMessage], Awaitable[StatusAnswer | None]]
"""Delivers a message to the bank with a code; None when the outcome is unknown."""


@dataclass(frozen=True)
class MessageFields:
    """The settlement-relevant fields of either kind of message."""

    kind: str
    """TRANSFER or RETURN."""
    message_id: str
    """The instruction id of a transfer, the return id of a return."""
    payer: str
    """Code of the bank the money leaves: debtor agent, or returning agent."""
    payee: str
    """Code of the bank the money reaches: creditor agent, or receiving agent."""
    amount: int
    """Amount in minor units."""
    currency: str
    """ISO 4217 code of the amount."""
    end_to_end_id: str
    """The order the money belongs to."""
    original_instruction_id: str | None
    """For a return, the transfer it returns."""

    @property
    def delivery_request_id(self) -> str:
        """The request_id the settlement bank delivers the message with.

        Ids are unique per paying bank, not across banks, so the paying bank's
        code is part of it: two banks' messages that share an id are two
        deliveries, not a reuse of one idempotency key.
        """
        return f"{self.payer}/{self.message_id}"


def fields(message: SettlementMessage) -> MessageFields:
    """The fields of a transfer or a return, under common names."""
    if isinstance(message, pb.CreditTransfer):
        return MessageFields(
            TRANSFER,
            message.instruction_id,
            message.debtor_agent,
            message.creditor_agent,
            message.amount.amount_minor,
            message.amount.currency_code,
            message.end_to_end_id,
            None,
        )
    return MessageFields(
        RETURN,
        message.return_id,
        message.returning_agent,
        message.receiving_agent,
        message.amount.amount_minor,
        message.amount.currency_code,
        message.original_end_to_end_id,
        message.original_instruction_id,
    )


def parse(kind: str, blob: bytes) -> SettlementMessage:
    """A stored message back from its kind and serialized bytes."""
    if kind == TRANSFER:
        return pb.CreditTransfer.FromString(blob)
    return pb.PaymentReturn.FromString(blob)
