"""The three interbank messages that settle, and what every bank reads off any of them.

A credit transfer (after pacs.008, issuer -> acquirer) and a payment return
(after pacs.004, acquirer -> issuer) travel the same way: the paying bank
records and sends it, the settlement bank settles it, the receiving bank
credits it. A cheque presentment travels the other way round, as a debit
does: the bank to be paid (the acquirer) sends it, the settlement bank
settles it, the paying bank (the drawee) decides it. :func:`fields` gives the
parts that path needs, whichever it is: who sends it, who receives it, and
which way the money goes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from interbank.v1 import cash_pb2, cheque_pb2, common_pb2
from interbank.v1 import settlement_pb2 as pb

from payment import errors, money

__all__ = [
    "CHEQUE",
    "COINS",
    "RETURN",
    "TRANSFER",
    "Deliver",
    "MessageFields",
    "SettlementMessage",
    "StatusAnswer",
    "fields",
    "is_on_us",
    "parse",
    "refuse_malformed",
]

TRANSFER, RETURN, CHEQUE, COINS = "transfer", "return", "cheque", "coins"
"""The kinds, as stored."""

SettlementMessage = (
    pb.CreditTransfer | pb.PaymentReturn | cheque_pb2.ChequePresentment | cash_pb2.CoinDeposit
)
"""What settles: a credit transfer, a payment return, a cheque presentment or a coin
deposit."""

_PULLED = frozenset({"cheque", "coins"})
"""Kinds the bank paid sends, to the bank that pays (a debit, as it were)."""

StatusAnswer = tuple[str, str]
"""A bank's answer about a message: (ACCEPTED, REJECTED or PENDING, reason code)."""

Deliver = Callable[[str, SettlementMessage], Awaitable[StatusAnswer | None]]
"""Delivers a message to the bank with a code; None when the outcome is unknown."""


@dataclass(frozen=True)
class MessageFields:
    """The settlement-relevant fields of either kind of message."""

    kind: str
    """TRANSFER, RETURN, CHEQUE or COINS."""
    message_id: str
    """The instruction id of a transfer, the return id of a return, the presentment id."""
    payer: str
    """Code of the bank the money leaves: debtor agent, returning agent, drawee agent."""
    payee: str
    """Code of the bank the money reaches: creditor agent, receiving agent, presenting
    agent."""
    amount: int
    """Amount in minor units."""
    currency: str
    """ISO 4217 code of the amount."""
    end_to_end_id: str
    """The order the money belongs to."""
    original_instruction_id: str | None
    """For a return, the transfer it returns."""

    @property
    def path(self) -> str:
        """The message's field in the requests that carry it."""
        return {
            TRANSFER: "transfer",
            RETURN: "payment_return",
            CHEQUE: "presentment",
            COINS: "deposit",
        }[self.kind]

    @property
    def sender(self) -> str:
        """Code of the bank that sends the message to the settlement bank: the payer of a
        transfer or return, the payee (presenting agent) of a cheque presentment."""
        return self.payee if self.kind in _PULLED else self.payer

    @property
    def receiver(self) -> str:
        """Code of the bank the settlement bank delivers the message to."""
        return self.payer if self.kind in _PULLED else self.payee

    @property
    def delivery_request_id(self) -> str:
        """The request_id the settlement bank delivers the message with.

        Ids are unique per sending bank, not across banks, so the sender's
        code is part of it: two banks' messages that share an id are two
        deliveries, not a reuse of one idempotency key.
        """
        return f"{self.sender}/{self.message_id}"


def fields(message: SettlementMessage) -> MessageFields:
    """The fields of a transfer, a return or a presentment, under common names."""
    if isinstance(message, cash_pb2.CoinDeposit):
        return MessageFields(
            COINS,
            message.deposit_id,
            message.issuing_agent,
            message.presenting_agent,
            message.amount.amount_minor,
            message.amount.currency_code,
            message.contract.order_id,
            None,
        )
    if isinstance(message, cheque_pb2.ChequePresentment):
        return MessageFields(
            CHEQUE,
            message.presentment_id,
            message.drawee_agent,
            message.presenting_agent,
            message.amount.amount_minor,
            message.amount.currency_code,
            message.end_to_end_id,
            None,
        )
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
    if kind == CHEQUE:
        return cheque_pb2.ChequePresentment.FromString(blob)
    if kind == COINS:
        return cash_pb2.CoinDeposit.FromString(blob)
    return pb.PaymentReturn.FromString(blob)


def is_on_us(message: SettlementMessage) -> bool:
    """True if the money stays at one bank (the paying bank is the bank paid)."""
    sent = fields(message)
    return sent.payer == sent.payee


def refuse_malformed(message: SettlementMessage) -> None:
    """Refuse, INVALID_ARGUMENT, a message no hop may settle or credit.

    FIELD_INVALID (metadata field, limit) for an amount outside 1 to
    MAX_AMOUNT_MINOR; SAME_AGENT when the bank paid is the paying bank;
    SELF_TRANSFER when a transfer names one account as debtor and creditor.
    """
    sent = fields(message)
    money.require_amount(sent.amount, f"{sent.path}.amount")
    if sent.payer == sent.payee:
        payee_field = {
            TRANSFER: "creditor_agent",
            RETURN: "receiving_agent",
            CHEQUE: "drawee_agent",
            COINS: "issuing_agent",
        }[sent.kind]
        raise errors.InvalidArgument(
            "SAME_AGENT",
            f"the {sent.kind} pays the bank it comes from ({sent.payer}): a bank's own holders"
            " pay each other inside the bank, never through the settlement bank",
            field=f"{sent.path}.{payee_field}",
            agent=sent.payer,
        )
    if isinstance(message, pb.CreditTransfer) and _same_account(
        (message.debtor_agent, message.debtor_account),
        (message.creditor_agent, message.creditor_account),
    ):
        raise errors.InvalidArgument(
            "SELF_TRANSFER",
            "debtor_account and creditor_account name the same account: a transfer moves money"
            " between two accounts",
            field="transfer.creditor_account",
        )


def _same_account(
    debtor: tuple[str, common_pb2.AccountRef], creditor: tuple[str, common_pb2.AccountRef]
) -> bool:
    """True if both refs name one account; a ref without a bank code is at its agent."""
    (debtor_agent, debtor_ref), (creditor_agent, creditor_ref) = debtor, creditor
    return bool(debtor_ref.account_id) and (
        debtor_ref.bank_code or debtor_agent,
        debtor_ref.account_id,
    ) == (creditor_ref.bank_code or creditor_agent, creditor_ref.account_id)
