"""Opening a sealed payment and checking it against the order, before any outbound call.

:func:`check_payment` is pure: it reads the request, the network and the
gateway's key and either returns a :class:`CheckedPayment` ready to send to
the issuer or raises an InvalidArgument whose reason says what is wrong.
Nothing is recorded and no peer is called until it has passed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import x25519
from google.protobuf.message import DecodeError
from interbank.v1 import authorization_pb2, common_pb2

from payment import errors
from payment.config import NetworkConfig, NodeConfig, Role
from payment.envelope import EnvelopeError, open_instruction

__all__ = [
    "ACCOUNT_BASED_KINDS",
    "MIN_NONCE_BYTES",
    "CheckedPayment",
    "GatewayKey",
    "check_fresh",
    "check_payment",
    "creditor_account",
]

_DIGEST_LEN = 32
_SIGNATURE_LEN = 64
MIN_NONCE_BYTES = 16
"""The shortest nonce a sealed instruction may carry."""
ACCOUNT_BASED_KINDS = frozenset(
    {common_pb2.INSTRUMENT_KIND_BANK_ACCOUNT, common_pb2.INSTRUMENT_KIND_CARD}
)
"""The instrument kinds AuthorizePayment takes: account-based instruments, routed by their
bank code to the issuer, which holds the money (gateway.authorization). Electronic cheques
and electronic cash have flows of their own, beside that one; AuthorizePayment refuses
them with INSTRUMENT_KIND_UNSUPPORTED."""


@dataclass(frozen=True, repr=False)
class GatewayKey:
    """The gateway's HPKE private key and the id customers echo when sealing to it."""

    private_key: x25519.X25519PrivateKey
    """The X25519 private key. Secret: repr hides it."""
    key_id: str
    """payment.pki.key_id of the public key."""

    def __repr__(self) -> str:
        return f"GatewayKey(key_id={self.key_id!r})"


@dataclass(frozen=True)
class CheckedPayment:
    """A payment that passed every gateway check, routed to its issuer."""

    order_id: str
    """The order paid."""
    merchant_name: str
    """The merchant paid (the caller)."""
    amount_minor: int
    """Amount in minor units."""
    currency_code: str
    """Currency of the amount."""
    issuer: NodeConfig
    """The issuing bank, found by the instrument's bank code."""
    creditor_account: common_pb2.AccountRef
    """The merchant's account at its acquirer."""
    instruction: bytes = field(repr=False)
    """The opened instruction bytes, unchanged (the issuer hashes them). Secret."""
    dual_signature: bytes = field(repr=False)
    """The customer's dual signature, unchanged."""
    nonce: bytes = field(repr=False)
    """The instruction's nonce: one sealed instruction pays at most one transaction."""
    created_at: dt.datetime
    """When the customer built the instruction (UTC)."""


def _require(condition: bool, field_name: str, what: str) -> None:
    if not condition:
        raise errors.InvalidArgument("FIELD_INVALID", f"{field_name} {what}", field=field_name)


def check_payment(
    request: authorization_pb2.AuthorizePaymentRequest,
    merchant_name: str,
    network: NetworkConfig,
    key: GatewayKey,
) -> CheckedPayment:
    """Open the sealed instruction, check it matches the order and route it.

    Raises InvalidArgument with reason FIELD_INVALID, CURRENCY_MISMATCH (the
    amount is not in the network's currency, or the instruction's is another),
    DUAL_SIGNATURE_INVALID (not 64 bytes), UNKNOWN_GATEWAY_KEY,
    INSTRUCTION_UNREADABLE, INSTRUCTION_MALFORMED, ORDER_DIGEST_MISMATCH,
    AMOUNT_MISMATCH, ORDER_MISMATCH, MERCHANT_MISMATCH,
    INSTRUMENT_KIND_UNSUPPORTED, UNKNOWN_BANK_CODE, or INSTRUCTION_NONCE_INVALID /
    INSTRUCTION_TIME_MISSING (the instruction has no usable nonce or created_at).
    The clock is not read here: :func:`check_fresh` judges created_at.
    Everything the gateway can tell without the issuer is checked here, so a
    payment refused for it leaves no transaction record. Messages never quote
    the instrument.
    """
    _require(bool(request.order_id), "order_id", "is required")
    _require(
        request.HasField("amount")
        and request.amount.amount_minor > 0
        and bool(request.amount.currency_code),
        "amount",
        "must be a positive amount with a currency code",
    )
    _require(
        len(request.order_digest) == _DIGEST_LEN,
        "order_digest",
        "must be the 32-byte SHA-256 order digest",
    )
    if request.amount.currency_code != network.currency:
        raise errors.InvalidArgument(
            "CURRENCY_MISMATCH",
            f"the network settles in {network.currency}: the amount must be in it",
            field="amount",
        )
    _require(bool(request.payment.sealed_instruction), "payment.sealed_instruction", "is required")
    if len(request.payment.dual_signature) != _SIGNATURE_LEN:
        raise errors.InvalidArgument(
            "DUAL_SIGNATURE_INVALID",
            f"payment.dual_signature must be a {_SIGNATURE_LEN}-byte Ed25519 signature",
        )
    if request.payment.gateway_key_id != key.key_id:
        raise errors.InvalidArgument(
            "UNKNOWN_GATEWAY_KEY",
            "the payment is sealed to a gateway key this gateway does not hold; "
            "seal it to the key returned by CreateOrder",
            gateway_key_id=request.payment.gateway_key_id,
        )

    try:
        opened = open_instruction(
            request.payment.sealed_instruction, key.private_key, request.order_digest
        )
    except EnvelopeError:
        # A tampered ciphertext and one sealed for another order's digest fail alike.
        raise errors.InvalidArgument(
            "INSTRUCTION_UNREADABLE", "the sealed instruction cannot be opened for this order"
        ) from None
    try:
        instruction = common_pb2.PaymentInstruction.FromString(opened)
    except DecodeError:
        raise errors.InvalidArgument(
            "INSTRUCTION_MALFORMED", "the opened instruction is not a PaymentInstruction"
        ) from None

    _match(
        instruction.order_digest == request.order_digest,
        "ORDER_DIGEST_MISMATCH",
        "the instruction is for a different order digest",
    )
    _match(
        instruction.amount.currency_code == request.amount.currency_code,
        "CURRENCY_MISMATCH",
        "the instruction's currency differs from the order's",
    )
    _match(
        instruction.amount.amount_minor == request.amount.amount_minor,
        "AMOUNT_MISMATCH",
        "the instruction's amount differs from the order total",
    )
    _match(
        instruction.order_id == request.order_id,
        "ORDER_MISMATCH",
        "the instruction is for a different order",
    )
    _match(
        instruction.merchant_name == merchant_name,
        "MERCHANT_MISMATCH",
        "the instruction pays a different merchant",
    )

    if len(instruction.nonce) < MIN_NONCE_BYTES:
        raise errors.InvalidArgument(
            "INSTRUCTION_NONCE_INVALID",
            f"the instruction's nonce must be {MIN_NONCE_BYTES} or more random bytes",
        )
    if not instruction.HasField("created_at"):
        raise errors.InvalidArgument(
            "INSTRUCTION_TIME_MISSING",
            "the instruction has no created_at; set it to the time it was built",
        )

    instrument = instruction.instrument
    if instrument.kind not in ACCOUNT_BASED_KINDS:
        raise errors.InvalidArgument(
            "INSTRUMENT_KIND_UNSUPPORTED",
            "only bank-account and card instruments are accepted in this flow",
            kind=common_pb2.InstrumentKind.Name(instrument.kind)
            if instrument.kind in common_pb2.InstrumentKind.values()
            else str(instrument.kind),
        )
    issuer = network.bank_by_code(instrument.bank_code)
    if issuer is None or issuer.role is not Role.BANK:
        raise errors.InvalidArgument(
            "UNKNOWN_BANK_CODE",
            "the instrument's bank code names no bank of this network",
            bank_code=instrument.bank_code,
        )

    return CheckedPayment(
        order_id=request.order_id,
        merchant_name=merchant_name,
        amount_minor=request.amount.amount_minor,
        currency_code=request.amount.currency_code,
        issuer=issuer,
        creditor_account=creditor_account(network, merchant_name),
        instruction=opened,
        dual_signature=request.payment.dual_signature,
        nonce=instruction.nonce,
        created_at=instruction.created_at.ToDatetime(dt.UTC),
    )


def check_fresh(checked: CheckedPayment, now: dt.datetime, window_s: float) -> None:
    """Refuse an instruction built more than window_s from now, either way.

    Raises InvalidArgument INSTRUCTION_EXPIRED (older: build a new one) or
    INSTRUCTION_FROM_FUTURE (the customer's clock is ahead).
    """
    age_s = (now - checked.created_at).total_seconds()
    if age_s > window_s:
        raise errors.InvalidArgument(
            "INSTRUCTION_EXPIRED",
            f"the instruction was built more than {window_s:g} s ago; seal a new one",
            window_seconds=f"{window_s:g}",
        )
    if -age_s > window_s:
        raise errors.InvalidArgument(
            "INSTRUCTION_FROM_FUTURE",
            f"the instruction's created_at is more than {window_s:g} s ahead of the "
            "gateway's clock; check the customer's clock",
            window_seconds=f"{window_s:g}",
        )


def creditor_account(network: NetworkConfig, merchant_name: str) -> common_pb2.AccountRef:
    """The merchant's account at its acquirer, from the network file."""
    try:
        merchant = network.merchant(merchant_name)
        acquirer = network.node(merchant.bank)
    except KeyError:
        # The interceptor admits only known merchant nodes, and the network file
        # gives each one an account; this guards a file edited under a running node.
        raise errors.FailedPrecondition(
            "MERCHANT_ACCOUNT_UNKNOWN",
            "the network file names no account for this merchant",
            merchant=merchant_name,
        ) from None
    return common_pb2.AccountRef(bank_code=acquirer.bank_code or "", account_id=merchant.account_id)


def _match(condition: bool, reason: str, message: str) -> None:
    if not condition:
        raise errors.InvalidArgument(reason, message)
