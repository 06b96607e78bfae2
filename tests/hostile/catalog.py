"""Every RPC of the contracts: who calls it where, what to throw at it, what it may answer.

One :class:`RpcSpec` per (RPC, serving node). A spec names the caller (a
certificate of a role :data:`payment.authz.RPC_ROLES` admits, so the input
reaches validation), a hypothesis strategy of hostile requests aimed at the
world's real ids, the refusals (code, ErrorInfo reason) the RPC may answer
them with, whether it may succeed and what a success or a documented refusal
may write. :func:`specs` lists them; a test checks that it covers every RPC
of the generated descriptors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf.message import Message
from hypothesis import strategies as st
from interbank.v1 import (
    account_pb2,
    audit_pb2,
    cash_pb2,
    cheque_pb2,
    common_pb2,
    notification_pb2,
    order_pb2,
    settlement_pb2,
)
from interbank.v1 import authorization_pb2 as authz

from payment import envelope
from payment.batching import from_entry_error
from payment.clock import now, timestamp

from .harness import Allowance, Outcome, Tables, Target
from .strategies import (
    hostile_bytes,
    hostile_text,
    int64s,
    messages,
    money,
    one_of_or,
)
from .world import World

if TYPE_CHECKING:
    from .cash import CoinKit
    from .cheques import ChequeKit

__all__ = [
    "PROTO_MODULES",
    "SETTLEMENT_REJECTIONS",
    "Payer",
    "RpcSpec",
    "judge",
    "signed_instruction",
    "specs",
]

PROTO_MODULES = (
    account_pb2,
    audit_pb2,
    authz,
    cash_pb2,
    cheque_pb2,
    common_pb2,
    notification_pb2,
    order_pb2,
    settlement_pb2,
)
"""Every generated module of interbank.v1; their services are what must be covered."""

Refusal = tuple[str, str]
"""(status code name, ErrorInfo reason)."""

REQUEST_ID_MISSING: Refusal = ("INVALID_ARGUMENT", "REQUEST_ID_MISSING")
KEY_REUSED: Refusal = ("ALREADY_EXISTS", "IDEMPOTENCY_KEY_REUSED")
FIELD_INVALID: Refusal = ("INVALID_ARGUMENT", "FIELD_INVALID")

SETTLEMENT_REJECTIONS = frozenset(
    {
        "CREDITOR_ACCOUNT_UNKNOWN",
        "UNKNOWN_CREDITOR_AGENT",
        "CURRENCY_MISMATCH",
        "INSUFFICIENT_RESERVE",
        "NET_DEBIT_CAP_EXCEEDED",
        "ORIGINAL_TRANSFER_NOT_FOUND",
        "RETURN_EXCEEDS_ORIGINAL",
        "FIELD_INVALID",
    }
)
"""Reason codes of REJECTED transfers and returns (docs/flow-spec.md), plus FIELD_INVALID
which a receiving bank answers for a return in another currency."""

_NOTHING: Tables = frozenset()


def _reads_only(_world: World, _response: bytes) -> Tables:
    return _NOTHING


@dataclass(frozen=True)
class RpcSpec:
    """One RPC on one node, and what hostile input may get out of it."""

    target: Target
    """Where it is called, and as whom."""
    request_type: type[Message]
    """The request message class."""
    strategy: Callable[[World], st.SearchStrategy[Message]]
    """Hostile requests aimed at the world."""
    refusals: frozenset[Refusal]
    """Every (code, reason) it may refuse a generated request with."""
    may_succeed: bool = False
    """True if a generated request may be answered OK."""
    success_writes: Callable[[World, bytes], Tables | None] = _reads_only
    """What a success may write, given its response (raising if the response is wrong)."""
    refusal_writes: Mapping[str, Tables] = field(default_factory=dict)
    """Documented writes of a refusal, by reason (everything else writes nothing)."""
    defect_writes: Mapping[str, Tables] = field(default_factory=dict)
    """Writes of a refusal, by reason, that a known defect makes (none are known today)."""
    defect_success: Callable[[World, bytes], Tables] | None = None
    """For an RPC that may not succeed: a success a known defect gives instead of a
    refusal, checked to be that defect's (raising if not), and what it writes (counted in
    the summary; a strict xfail boundary case asserts the right answer)."""
    max_examples: int = 100
    """Generated cases per run."""

    @property
    def method(self) -> str:
        """The full method name."""
        return self.target.method

    @property
    def id(self) -> str:
        """A test id: Service/Method@node."""
        return f"{self.method.rsplit('.', 1)[-1]}@{self.target.node}"


def judge(spec: RpcSpec, world: World) -> Callable[[Outcome], Allowance]:
    """The check of an outcome of a generated request, returning what it may write."""

    def check(outcome: Outcome) -> Allowance:
        if outcome.ok:
            assert outcome.response is not None
            if not spec.may_succeed and spec.defect_success is not None:
                return Allowance(_NOTHING, spec.defect_success(world, outcome.response))
            assert spec.may_succeed, f"{spec.method}: a hostile request succeeded"
            return Allowance(spec.success_writes(world, outcome.response))
        refusal = (outcome.code.name, outcome.reason or "")
        if refusal == FIELD_INVALID and "limit" in outcome.metadata:
            # A field over its contract's bound (bounds.proto): every request may get it.
            return Allowance(_NOTHING)
        assert refusal in spec.refusals, f"{spec.method}: undocumented refusal {outcome}"
        return Allowance(
            spec.refusal_writes.get(refusal[1], _NOTHING),
            spec.defect_writes.get(refusal[1], _NOTHING),
        )

    return check


# -- shared strategies ----------------------------------------------------------------------


def _request_id() -> st.SearchStrategy[str]:
    return hostile_text(24)


def _ids(*real: str) -> st.SearchStrategy[str]:
    return one_of_or(tuple(real), hostile_text())


def _account_ref(*bank_codes: str) -> st.SearchStrategy[Message | None]:
    """A missing or hostile AccountRef, never naming a holder's real account."""
    return st.one_of(
        st.none(),
        messages(
            common_pb2.AccountRef.DESCRIPTOR,
            {
                "bank_code": one_of_or((*bank_codes, ""), hostile_text(12)),
                "account_id": one_of_or(("@reserve", "@suspense", "@central"), hostile_text()),
            },
        ),
    )


def signed_instruction(
    world: World,
    payer: Payer,
    *,
    order_id: str,
    digest: bytes,
    amount: int,
    currency: str | None = None,
    kind: int = common_pb2.INSTRUMENT_KIND_CARD,
    bank_code: str | None = None,
    merchant: str = "shop",
    customer: str = "alice",
) -> tuple[bytes, bytes]:
    """An instruction with the payer's real card, and its real dual signature.

    Used only by boundary cases, built in the test body: the card number never
    reaches hypothesis' reports.
    """
    instruction = common_pb2.PaymentInstruction(
        instrument=common_pb2.PaymentInstrument(
            kind=kind,  # type: ignore[arg-type]
            bank_code=world.alfa_code if bank_code is None else bank_code,
            number=payer.card_number,
        ),
        amount=common_pb2.Money(
            amount_minor=amount, currency_code=world.currency if currency is None else currency
        ),
        order_digest=digest,
        order_id=order_id,
        merchant_name=merchant,
        customer_name=customer,
        nonce=os.urandom(16),
        created_at=timestamp(now()),
    )
    data = instruction.SerializeToString()
    return data, envelope.sign_dual(payer.signing_key, digest, data)


class Payer:
    """A customer's card number and signing key, a kit writing fresh cheques and one
    withdrawing fresh coins. Secret: repr shows none of them."""

    def __init__(
        self,
        card_number: str,
        signing_key: ed25519.Ed25519PrivateKey,
        cheques: ChequeKit | None = None,
        coins: CoinKit | None = None,
    ) -> None:
        self.card_number = card_number
        self.signing_key = signing_key
        self._cheques = cheques
        self._coins = coins

    @property
    def cheques(self) -> ChequeKit:
        """The kit writing fresh cheques with the participants' keys."""
        assert self._cheques is not None, "this payer was made without a cheque kit"
        return self._cheques

    @property
    def coins(self) -> CoinKit:
        """The kit withdrawing fresh coins and spending them."""
        assert self._coins is not None, "this payer was made without a coin kit"
        return self._coins

    def __repr__(self) -> str:
        return "Payer(<redacted>)"


def _instructions(world: World, digest: bytes) -> st.SearchStrategy[Message]:
    """Hostile instructions for order B (never with a real instrument number)."""
    return messages(
        common_pb2.PaymentInstruction.DESCRIPTOR,
        {
            "instrument.bank_code": one_of_or((world.alfa_code, world.beta_code), hostile_text(12)),
            "amount": money(world.currency),
            "order_digest": one_of_or((digest,), hostile_bytes(40)),
            "order_id": _ids(world.orders["B"]),
            "merchant_name": _ids("shop"),
            "customer_name": _ids("alice", "bob"),
        },
    )


@st.composite
def _sealed_payments(draw: st.DrawFn, world: World, digest: bytes) -> common_pb2.SealedPayment:
    """A SealedPayment: hostile bytes, or a hostile instruction really sealed to the gateway."""
    key_id = draw(one_of_or((world.gateway_key_id,), hostile_text(20)))
    signature = draw(one_of_or((b"\x00" * 64,), hostile_bytes(80)))
    if draw(st.booleans()):
        sealed = draw(hostile_bytes(200))
    else:
        instruction = draw(st.one_of(_instructions(world, digest), st.none()))
        payload = b"" if instruction is None else instruction.SerializeToString()
        if instruction is None:
            payload = draw(hostile_bytes(64))
        public = envelope.load_x25519_public(world.gateway_public_key)
        # Sealing needs a 32-byte digest: a request with another digest gets one sealed for B.
        sealed = envelope.seal_instruction(
            payload, public, digest if len(digest) == 32 else world.b_digest
        )
    return common_pb2.SealedPayment(
        sealed_instruction=sealed, dual_signature=signature, gateway_key_id=key_id
    )


@st.composite
def _authorize_payments(draw: st.DrawFn, world: World) -> Message:
    digest = draw(one_of_or((world.b_digest,), hostile_bytes(40)))
    return authz.AuthorizePaymentRequest(
        request_id=draw(_request_id()),
        order_id=draw(_ids(*world.orders.values())),
        amount=draw(
            st.one_of(
                money(world.currency),
                st.just(common_pb2.Money(amount_minor=world.b_total, currency_code=world.currency)),
            )
        ),
        order_digest=digest,
        payment=draw(st.one_of(st.none(), _sealed_payments(world, digest))),
    )


def _refund_targets(
    world: World,
    build: Callable[[str, Message | None], Message],
    real: str,
    others: tuple[str, ...],
) -> st.SearchStrategy[Message]:
    """A refund of the real settled payment with an amount it can never take, or of others."""
    # Always with an amount: a RefundOrder without one refunds everything left.
    settled = st.builds(
        build, st.just(real), money(world.currency, above=world.total_a, missing=False)
    )
    anything = st.builds(build, _ids(*others), money(world.currency))
    return st.one_of(settled, anything)


# -- what successes may write ---------------------------------------------------------------


def _writes(*tables: tuple[str, str]) -> Callable[[World, bytes], Tables]:
    allowed = frozenset(tables)
    return lambda _world, _response: allowed


def _rejected_only(
    response_type: type[Message], tables: Tables, rejections: frozenset[str]
) -> Callable[[World, bytes], Tables]:
    """A transfer or return answered REJECTED with a known reason, writing only its record."""

    def check(_world: World, response: bytes) -> Tables:
        report = response_type.FromString(response)
        status = report.status  # type: ignore[attr-defined]
        reason = report.reason_code  # type: ignore[attr-defined]
        assert status == settlement_pb2.TRANSFER_STATUS_REJECTED, (
            f"a hostile {response_type.DESCRIPTOR.name} was "
            f"{settlement_pb2.TransferStatus.Name(status)}"
        )
        assert reason in rejections, f"undocumented rejection reason {reason!r}"
        return tables

    return check


# -- the catalog ----------------------------------------------------------------------------


def _spec(
    method: str,
    node: str,
    caller: str,
    request_type: type[Message],
    strategy: Callable[[World], st.SearchStrategy[Message]],
    refusals: set[Refusal],
    **options: object,
) -> RpcSpec:
    streaming = bool(options.pop("streaming", False))
    return RpcSpec(
        Target(f"/interbank.v1.{method}", node, caller, streaming),
        request_type,
        strategy,
        frozenset(refusals),
        **options,  # type: ignore[arg-type]
    )


BATCH_SIZE_INVALID: Refusal = ("INVALID_ARGUMENT", "BATCH_SIZE_INVALID")


def _batch_of(
    single: RpcSpec,
    method: str,
    request_type: type[Message],
    response_type: type[Message],
) -> RpcSpec:
    """The batch RPC of a single-entry RPC, on the same node and called by the same peer.

    A call carries up to four of the single RPC's hostile requests (or none,
    which is refused whole). Each result must be an answer the single RPC may
    give that entry, and the call may write what those answers may write.
    """

    def strategy(world: World) -> st.SearchStrategy[Message]:
        return st.builds(
            lambda entries: request_type(entries=entries),
            st.lists(single.strategy(world), max_size=4),
        )

    def success_writes(world: World, response: bytes) -> Tables:
        tables: Tables = _NOTHING
        for result in response_type.FromString(response).results:  # type: ignore[attr-defined]
            if result.WhichOneof("outcome") == "report":
                assert single.may_succeed, f"{method}: a hostile entry succeeded"
                tables |= single.success_writes(world, result.report.SerializeToString())
                continue
            error = from_entry_error(result.error)
            refusal = (error.code.name, error.reason)
            assert refusal in single.refusals, f"{method}: undocumented entry error {refusal}"
            tables |= single.refusal_writes.get(refusal[1], _NOTHING)
        return tables

    return RpcSpec(
        Target(f"/interbank.v1.{method}", single.target.node, single.target.caller),
        request_type,
        strategy,
        frozenset({BATCH_SIZE_INVALID}),
        may_succeed=True,
        success_writes=success_writes,
        max_examples=single.max_examples,
    )


def specs() -> list[RpcSpec]:
    """One spec per RPC and serving node; a batch RPC's is derived from its single one's."""
    from .cash_catalog import cash_specs  # built on this module's helpers

    singles = _single_specs()
    by_method = {spec.method: spec for spec in singles}
    s = settlement_pb2
    return [
        *singles,
        _batch_of(
            by_method["/interbank.v1.IssuerService/AuthorizeHold"],
            "IssuerService/AuthorizeHolds",
            authz.AuthorizeHoldsRequest,
            authz.AuthorizeHoldsResponse,
        ),
        _batch_of(
            by_method["/interbank.v1.SettlementService/SubmitCreditTransfer"],
            "SettlementService/SubmitCreditTransfers",
            s.SubmitCreditTransfersRequest,
            s.SubmitCreditTransfersResponse,
        ),
        _batch_of(
            by_method["/interbank.v1.ClearingService/ReceiveCreditTransfer"],
            "ClearingService/ReceiveCreditTransfers",
            s.ReceiveCreditTransfersRequest,
            s.ReceiveCreditTransfersResponse,
        ),
        *_cheque_specs(),
        *cash_specs(),
    ]


def _single_specs() -> list[RpcSpec]:
    o, a, s = order_pb2, authz, settlement_pb2
    shop_writes = (("shop", "orders"), ("shop", "outbox"), ("shop", "sqlite_sequence"))
    return [
        # -- OrderService at the shop, called by a customer --------------------------------
        _spec(
            "OrderService/ListProducts",
            "shop",
            "alice",
            o.ListProductsRequest,
            lambda w: messages(o.ListProductsRequest.DESCRIPTOR),
            set(),
            may_succeed=True,
            max_examples=25,
        ),
        _spec(
            "OrderService/CreateOrder",
            "shop",
            "alice",
            o.CreateOrderRequest,
            lambda w: messages(
                o.CreateOrderRequest.DESCRIPTOR,
                {
                    "request_id": _request_id(),
                    "lines": st.lists(
                        messages(
                            o.CreateOrderLine.DESCRIPTOR,
                            {"sku": _ids("book-001", "lamp-002", "bike-003")},
                        ),
                        max_size=5,
                    ),
                },
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                ("INVALID_ARGUMENT", "EMPTY_ORDER"),
                ("INVALID_ARGUMENT", "UNKNOWN_SKU"),
                ("INVALID_ARGUMENT", "DUPLICATE_SKU"),
                ("INVALID_ARGUMENT", "QUANTITY_INVALID"),
            },
            may_succeed=True,
            success_writes=_writes(*shop_writes, ("shop", "idempotency")),
        ),
        _spec(
            "OrderService/GetOrder",
            "shop",
            "alice",
            o.GetOrderRequest,
            lambda w: messages(
                o.GetOrderRequest.DESCRIPTOR, {"order_id": _ids(*w.orders.values())}
            ),
            {("NOT_FOUND", "ORDER_NOT_FOUND")},
            may_succeed=True,
        ),
        _spec(
            "OrderService/SubmitPayment",
            "shop",
            "alice",
            o.SubmitPaymentRequest,
            lambda w: st.builds(
                o.SubmitPaymentRequest,
                request_id=_request_id(),
                # Not B: a well-formed payment for a payable order goes to the gateway.
                order_id=_ids(*(w.orders[k] for k in "ACDEG")),
                payment=st.one_of(st.none(), _sealed_payments(w, w.b_digest)),
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                FIELD_INVALID,
                ("INVALID_ARGUMENT", "UNKNOWN_GATEWAY_KEY"),
                ("INVALID_ARGUMENT", "DUAL_SIGNATURE_INVALID"),
                ("NOT_FOUND", "ORDER_NOT_FOUND"),
                ("FAILED_PRECONDITION", "ORDER_ALREADY_PAID"),
                ("FAILED_PRECONDITION", "ORDER_NOT_PAYABLE"),
            },
        ),
        _spec(
            "OrderService/CompletePayment",
            "shop",
            "alice",
            o.CompletePaymentRequest,
            lambda w: messages(
                o.CompletePaymentRequest.DESCRIPTOR,
                {"request_id": _request_id(), "order_id": _ids(*w.orders.values())},
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                ("NOT_FOUND", "ORDER_NOT_FOUND"),
                ("FAILED_PRECONDITION", "ORDER_NOT_PAYABLE"),
                ("FAILED_PRECONDITION", "ORDER_NOT_AUTHORIZED"),
                ("FAILED_PRECONDITION", "CHALLENGE_NOT_ANSWERED"),
            },
            may_succeed=True,  # order A is delivered: completing it again answers the order
            success_writes=_writes(("shop", "idempotency")),
        ),
        _spec(
            "OrderService/CancelOrder",
            "shop",
            "alice",
            o.CancelOrderRequest,
            lambda w: messages(
                o.CancelOrderRequest.DESCRIPTOR,
                # Not B or D: those can still be canceled.
                {"request_id": _request_id(), "order_id": _ids(*(w.orders[k] for k in "ACEG"))},
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                ("NOT_FOUND", "ORDER_NOT_FOUND"),
                ("FAILED_PRECONDITION", "ORDER_NOT_CANCELABLE"),
            },
        ),
        # -- BackOfficeService at the shop, called with the shop's own certificate ---------
        _spec(
            "BackOfficeService/RefundOrder",
            "shop",
            "shop",
            o.RefundOrderRequest,
            lambda w: st.builds(
                lambda message, request_id: _with(message, request_id=request_id),
                _refund_targets(
                    w,
                    lambda order, amount: o.RefundOrderRequest(order_id=order, amount=amount),
                    w.orders["A"],
                    tuple(w.orders[k] for k in "BCDEG"),
                ),
                _request_id(),
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                FIELD_INVALID,
                ("NOT_FOUND", "ORDER_NOT_FOUND"),
                ("FAILED_PRECONDITION", "ORDER_NOT_REFUNDABLE"),
                ("FAILED_PRECONDITION", "REFUND_EXCEEDS_PAYMENT"),
            },
        ),
        # -- GatewayService, called by the merchant ----------------------------------------
        _spec(
            "GatewayService/AuthorizePayment",
            "gateway",
            "shop",
            a.AuthorizePaymentRequest,
            _authorize_payments,
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                FIELD_INVALID,
                *(
                    ("INVALID_ARGUMENT", reason)
                    for reason in (
                        "UNKNOWN_GATEWAY_KEY",
                        "INSTRUCTION_UNREADABLE",
                        "INSTRUCTION_MALFORMED",
                        "ORDER_DIGEST_MISMATCH",
                        "CURRENCY_MISMATCH",
                        "AMOUNT_MISMATCH",
                        "ORDER_MISMATCH",
                        "MERCHANT_MISMATCH",
                        "INSTRUMENT_KIND_UNSUPPORTED",
                        "UNKNOWN_BANK_CODE",
                        "DUAL_SIGNATURE_INVALID",
                    )
                ),
                # From the issuer: the gateway records the failed transaction.
                ("NOT_FOUND", "INSTRUMENT_NOT_FOUND"),
            },
            refusal_writes={
                "INSTRUMENT_NOT_FOUND": frozenset(
                    {("gateway", "payment_transaction"), ("gateway", "instruction_nonce")}
                )
            },
            max_examples=150,
        ),
        _spec(
            "GatewayService/CapturePayment",
            "gateway",
            "shop",
            a.CapturePaymentRequest,
            lambda w: messages(
                a.CapturePaymentRequest.DESCRIPTOR,
                {"request_id": _request_id(), "transaction_id": _ids(*w.transactions.values())},
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                FIELD_INVALID,
                ("NOT_FOUND", "TRANSACTION_NOT_FOUND"),
                ("FAILED_PRECONDITION", "HOLD_NOT_CAPTURABLE"),
                ("FAILED_PRECONDITION", "CHALLENGE_NOT_ANSWERED"),
                ("FAILED_PRECONDITION", "CHALLENGE_LOCKED"),
            },
            may_succeed=True,  # A is captured: capturing it again replays the capture
            success_writes=_writes(
                ("gateway", "payment_transaction"),
                ("gateway", "idempotency"),
                ("alfa", "idempotency"),
            ),
        ),
        _spec(
            "GatewayService/VoidPayment",
            "gateway",
            "shop",
            a.VoidPaymentRequest,
            lambda w: messages(
                a.VoidPaymentRequest.DESCRIPTOR,
                # Not D: its hold can still be voided.
                {
                    "request_id": _request_id(),
                    "transaction_id": _ids(*(w.transactions[k] for k in "ABE")),
                },
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                FIELD_INVALID,
                ("NOT_FOUND", "TRANSACTION_NOT_FOUND"),
                ("FAILED_PRECONDITION", "HOLD_NOT_VOIDABLE"),
            },
            may_succeed=True,  # E's hold is voided already: voiding it again is a no-op
            success_writes=_writes(
                ("gateway", "payment_transaction"),
                ("gateway", "idempotency"),
                ("alfa", "idempotency"),
            ),
        ),
        _spec(
            "GatewayService/RefundPayment",
            "gateway",
            "shop",
            a.RefundPaymentRequest,
            lambda w: st.builds(
                lambda message, request_id: _with(message, request_id=request_id),
                _refund_targets(
                    w,
                    lambda txn, amount: a.RefundPaymentRequest(transaction_id=txn, amount=amount),
                    w.transactions["A"],
                    tuple(w.transactions[k] for k in "BDE"),
                ),
                _request_id(),
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                FIELD_INVALID,
                ("NOT_FOUND", "TRANSACTION_NOT_FOUND"),
                ("FAILED_PRECONDITION", "PAYMENT_NOT_REFUNDABLE"),
                ("FAILED_PRECONDITION", "REFUND_EXCEEDS_PAYMENT"),
            },
        ),
        _spec(
            "GatewayService/GetPaymentTransaction",
            "gateway",
            "shop",
            a.GetPaymentTransactionRequest,
            lambda w: messages(
                a.GetPaymentTransactionRequest.DESCRIPTOR,
                {"transaction_id": _ids(*w.transactions.values())},
            ),
            {("NOT_FOUND", "TRANSACTION_NOT_FOUND")},
            may_succeed=True,
        ),
        # -- IssuerService at alfa, called by the gateway ----------------------------------
        _spec(
            "IssuerService/AuthorizeHold",
            "alfa",
            "gateway",
            a.AuthorizeHoldRequest,
            lambda w: messages(
                a.AuthorizeHoldRequest.DESCRIPTOR,
                {
                    "request_id": _request_id(),
                    "transaction_id": _ids(*w.transactions.values()),
                    "instruction": st.one_of(
                        hostile_bytes(200),
                        _instructions(w, w.b_digest).map(lambda m: m.SerializeToString()),
                    ),
                    "merchant_name": _ids("shop"),
                    "creditor_account": _account_ref(w.beta_code),
                },
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                ("INVALID_ARGUMENT", "INSTRUCTION_MALFORMED"),
                ("INVALID_ARGUMENT", "UNKNOWN_BANK_CODE"),
                ("INVALID_ARGUMENT", "INSTRUMENT_KIND_UNSUPPORTED"),
                ("NOT_FOUND", "INSTRUMENT_NOT_FOUND"),
            },
            max_examples=150,
        ),
        _spec(
            "IssuerService/CaptureHold",
            "alfa",
            "gateway",
            a.CaptureHoldRequest,
            lambda w: messages(
                a.CaptureHoldRequest.DESCRIPTOR,
                {"request_id": _request_id(), "hold_id": _ids(*w.holds.values())},
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                ("NOT_FOUND", "HOLD_NOT_FOUND"),
                ("FAILED_PRECONDITION", "CHALLENGE_NOT_ANSWERED"),
                ("FAILED_PRECONDITION", "CHALLENGE_LOCKED"),
            },
            may_succeed=True,  # A's hold is captured: a capture answers its settlement
            success_writes=_writes(("alfa", "idempotency")),
        ),
        _spec(
            "IssuerService/VoidHold",
            "alfa",
            "gateway",
            a.VoidHoldRequest,
            lambda w: messages(
                a.VoidHoldRequest.DESCRIPTOR,
                # Not D: its hold can still be voided.
                {"request_id": _request_id(), "hold_id": _ids(w.holds["A"], w.holds["E"])},
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                ("NOT_FOUND", "HOLD_NOT_FOUND"),
                ("FAILED_PRECONDITION", "HOLD_NOT_VOIDABLE"),
            },
            may_succeed=True,  # E's hold is voided: voiding it again is a no-op
            success_writes=_writes(("alfa", "idempotency")),
        ),
        _spec(
            "IssuerService/RefundCapture",
            "alfa",
            "gateway",
            a.RefundCaptureRequest,
            lambda w: messages(
                a.RefundCaptureRequest.DESCRIPTOR,
                {"hold_id": _ids(*w.holds.values()), "amount": money(w.currency)},
            ),
            {("FAILED_PRECONDITION", "REFUND_VIA_ACQUIRER")},
            max_examples=40,
        ),
        _spec(
            "IssuerService/GetHold",
            "alfa",
            "gateway",
            a.GetHoldRequest,
            lambda w: messages(
                a.GetHoldRequest.DESCRIPTOR,
                {
                    "hold_id": _ids(*w.holds.values()),
                    "transaction_id": _ids(*w.transactions.values()),
                },
            ),
            {("NOT_FOUND", "HOLD_NOT_FOUND")},
            may_succeed=True,
        ),
        # -- AcquirerService at beta, called by the gateway --------------------------------
        _spec(
            "AcquirerService/ReturnPayment",
            "beta",
            "gateway",
            a.ReturnPaymentRequest,
            lambda w: messages(
                a.ReturnPaymentRequest.DESCRIPTOR,
                {
                    "request_id": _request_id(),
                    "original_instruction_id": _ids(w.instruction_a),
                    "original_debtor_agent": _ids(w.alfa_code),
                    "amount": money(w.currency, above=w.total_a),
                    "merchant_name": _ids("shop"),
                    "reason_code": one_of_or(("", "CUST", "AC04"), hostile_text(8)),
                },
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                FIELD_INVALID,
                ("NOT_FOUND", "ORIGINAL_TRANSFER_NOT_FOUND"),
                ("FAILED_PRECONDITION", "REFUND_EXCEEDS_PAYMENT"),
            },
        ),
        # -- ChallengeService at alfa, called by the customer ------------------------------
        _spec(
            "ChallengeService/AnswerChallenge",
            "alfa",
            "alice",
            a.AnswerChallengeRequest,
            lambda w: messages(
                a.AnswerChallengeRequest.DESCRIPTOR,
                {
                    "request_id": _request_id(),
                    # Not D: a well-formed wrong code counts against its attempts.
                    "challenge_id": _ids(w.challenges["A"], w.challenges["E"]),
                    "code": st.one_of(hostile_text(12), st.from_regex(r"\A[0-9]{6}\Z")),
                },
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                FIELD_INVALID,
                ("NOT_FOUND", "CHALLENGE_NOT_FOUND"),
                ("FAILED_PRECONDITION", "CHALLENGE_LOCKED"),
            },
            may_succeed=True,  # A's challenge was passed: answering it again says so
            success_writes=_writes(("alfa", "idempotency")),
        ),
        # -- ClearingService at the banks, called by the settlement bank -------------------
        _spec(
            "ClearingService/ReceiveCreditTransfer",
            "beta",
            "settlement",
            s.ReceiveCreditTransferRequest,
            lambda w: messages(
                s.ReceiveCreditTransferRequest.DESCRIPTOR,
                {
                    "request_id": _request_id(),
                    "transfer.instruction_id": _ids(w.instruction_a),
                    "transfer.debtor_agent": _ids(w.alfa_code, w.beta_code),
                    "transfer.creditor_agent": _ids(w.beta_code),
                    "transfer.amount": money(w.currency),
                    "transfer.creditor_account": _account_ref(w.beta_code),
                    "transfer.debtor_account": _account_ref(w.alfa_code),
                },
            ),
            {
                REQUEST_ID_MISSING,
                FIELD_INVALID,
                KEY_REUSED,
                ("INVALID_ARGUMENT", "SAME_AGENT"),
                ("INVALID_ARGUMENT", "SELF_TRANSFER"),
            },
            may_succeed=True,
            success_writes=_rejected_only(
                s.ReceiveCreditTransferResponse,
                frozenset({("beta", "incoming_transfers"), ("beta", "idempotency")}),
                SETTLEMENT_REJECTIONS,
            ),
        ),
        _spec(
            "ClearingService/ReceivePaymentReturn",
            "alfa",
            "settlement",
            s.ReceivePaymentReturnRequest,
            lambda w: messages(
                s.ReceivePaymentReturnRequest.DESCRIPTOR,
                {
                    "request_id": _request_id(),
                    "payment_return.return_id": _ids(),
                    "payment_return.original_instruction_id": _ids(w.instruction_a),
                    "payment_return.returning_agent": _ids(w.beta_code),
                    "payment_return.receiving_agent": _ids(w.alfa_code),
                    "payment_return.amount": money(w.currency, above=w.total_a),
                },
            ),
            {REQUEST_ID_MISSING, FIELD_INVALID, KEY_REUSED, ("INVALID_ARGUMENT", "SAME_AGENT")},
            may_succeed=True,
            success_writes=_rejected_only(
                s.ReceivePaymentReturnResponse,
                frozenset({("alfa", "incoming_returns"), ("alfa", "idempotency")}),
                SETTLEMENT_REJECTIONS,
            ),
        ),
        # -- SettlementService, called by member banks and its operator --------------------
        _spec(
            "SettlementService/SubmitCreditTransfer",
            "settlement",
            "alfa",
            s.SubmitCreditTransferRequest,
            lambda w: messages(
                s.SubmitCreditTransferRequest.DESCRIPTOR,
                {
                    "request_id": _request_id(),
                    "transfer.instruction_id": _ids(w.instruction_a),
                    "transfer.debtor_agent": _ids(w.alfa_code),
                    "transfer.creditor_agent": _ids(w.beta_code, w.alfa_code),
                    "transfer.amount": st.one_of(
                        money(w.currency),
                        st.builds(
                            lambda n: common_pb2.Money(amount_minor=n, currency_code=w.currency),
                            st.integers(1, 5000),
                        ),
                    ),
                    "transfer.creditor_account": _account_ref(w.beta_code, w.alfa_code),
                    "transfer.debtor_account": _account_ref(w.alfa_code),
                },
            ),
            {
                REQUEST_ID_MISSING,
                FIELD_INVALID,
                KEY_REUSED,
                ("PERMISSION_DENIED", "DEBTOR_AGENT_NOT_CALLER"),
                ("INVALID_ARGUMENT", "SAME_AGENT"),
                ("INVALID_ARGUMENT", "SELF_TRANSFER"),
            },
            may_succeed=True,
            success_writes=_rejected_only(
                s.SubmitCreditTransferResponse,
                frozenset(
                    {
                        ("settlement", "settlement_transfers"),
                        ("settlement", "settlement_windows"),
                        ("settlement", "window_positions"),
                        ("settlement", "idempotency"),
                        ("beta", "incoming_transfers"),
                        ("beta", "idempotency"),
                    }
                ),
                SETTLEMENT_REJECTIONS,
            ),
        ),
        _spec(
            "SettlementService/SubmitPaymentReturn",
            "settlement",
            "beta",
            s.SubmitPaymentReturnRequest,
            lambda w: messages(
                s.SubmitPaymentReturnRequest.DESCRIPTOR,
                {
                    "request_id": _request_id(),
                    "payment_return.return_id": _ids(),
                    "payment_return.original_instruction_id": _ids(w.instruction_a),
                    "payment_return.returning_agent": _ids(w.beta_code),
                    "payment_return.receiving_agent": _ids(w.alfa_code, w.beta_code),
                    "payment_return.amount": money(w.currency, above=w.total_a),
                },
            ),
            {
                REQUEST_ID_MISSING,
                FIELD_INVALID,
                KEY_REUSED,
                ("PERMISSION_DENIED", "RETURNING_AGENT_NOT_CALLER"),
                ("INVALID_ARGUMENT", "SAME_AGENT"),
            },
            may_succeed=True,
            success_writes=_rejected_only(
                s.SubmitPaymentReturnResponse,
                frozenset({("settlement", "settlement_transfers"), ("settlement", "idempotency")}),
                SETTLEMENT_REJECTIONS,
            ),
        ),
        _spec(
            "SettlementService/GetTransferStatus",
            "settlement",
            "alfa",
            s.GetTransferStatusRequest,
            lambda w: messages(
                s.GetTransferStatusRequest.DESCRIPTOR, {"instruction_id": _ids(w.instruction_a)}
            ),
            {("NOT_FOUND", "TRANSACTION_NOT_FOUND")},
            may_succeed=True,
        ),
        _spec(
            "SettlementService/GetSettlementWindow",
            "settlement",
            "alfa",
            s.GetSettlementWindowRequest,
            lambda w: messages(
                s.GetSettlementWindowRequest.DESCRIPTOR,
                {"window_id": _ids("", w.settled_window)},
            ),
            {("NOT_FOUND", "SETTLEMENT_WINDOW_NOT_FOUND")},
            may_succeed=True,
        ),
        _spec(
            "SettlementService/CloseSettlementWindow",
            "settlement",
            "settlement",
            s.CloseSettlementWindowRequest,
            lambda w: messages(
                s.CloseSettlementWindowRequest.DESCRIPTOR, {"request_id": _request_id()}
            ),
            {REQUEST_ID_MISSING, KEY_REUSED},
            may_succeed=True,
            # A window holding the boundary cases' cheques moves reserves (then audited).
            success_writes=_writes(
                ("settlement", "settlement_windows"),
                ("settlement", "window_positions"),
                ("settlement", "idempotency"),
                ("settlement", "transfers"),
                ("settlement", "accounts"),
            ),
            max_examples=40,
        ),
        # -- AuditService, called by the settlement bank -----------------------------------
        *(
            _spec(
                "AuditService/GetBooks",
                node,
                "settlement",
                audit_pb2.GetBooksRequest,
                lambda w: messages(audit_pb2.GetBooksRequest.DESCRIPTOR),
                set(),
                may_succeed=True,
                max_examples=25,
            )
            for node in ("alfa", "settlement")
        ),
        # -- NotificationService at a bank and at the shop, called by a subscriber ---------
        *(
            _spec(
                "NotificationService/Subscribe",
                node,
                "alice",
                notification_pb2.SubscribeRequest,
                lambda w: messages(
                    notification_pb2.SubscribeRequest.DESCRIPTOR, {"after_sequence": int64s()}
                ),
                {FIELD_INVALID, ("OUT_OF_RANGE", "CURSOR_BEYOND_END")},
                may_succeed=True,
                streaming=True,
                max_examples=60,
            )
            for node in ("alfa", "shop")
        ),
        # -- AccountService at alfa, called by an account holder ---------------------------
        _spec(
            "AccountService/GetBalance",
            "alfa",
            "alice",
            account_pb2.GetBalanceRequest,
            lambda w: messages(
                account_pb2.GetBalanceRequest.DESCRIPTOR, {"account_id": _accounts(w)}
            ),
            {("PERMISSION_DENIED", "ACCOUNT_NOT_HELD_BY_CALLER")},
            may_succeed=True,
        ),
        _spec(
            "AccountService/ListStatement",
            "alfa",
            "alice",
            account_pb2.ListStatementRequest,
            lambda w: messages(
                account_pb2.ListStatementRequest.DESCRIPTOR, {"account_id": _accounts(w)}
            ),
            {
                ("PERMISSION_DENIED", "ACCOUNT_NOT_HELD_BY_CALLER"),
                ("INVALID_ARGUMENT", "PERIOD_INVALID"),
                FIELD_INVALID,
            },
            may_succeed=True,
            max_examples=150,
        ),
    ]


# -- cheques --------------------------------------------------------------------------------

CHEQUE_RETURN_REASONS = frozenset(
    {
        "INSUFFICIENT_FUNDS",
        "PAYMENT_STOPPED",
        "DUPLICATE_PRESENTMENT",
        "SIGNATURE_INVALID",
        "STALE_DATED",
        "POST_DATED",
        "ACCOUNT_CLOSED",
        "ENDORSEMENT_INVALID",
    }
)
"""The drawee's return reasons (cheque.proto ChequeReturnReason)."""

PRESENTMENT_REJECTIONS = CHEQUE_RETURN_REASONS | {
    "INSUFFICIENT_RESERVE",
    "NET_DEBIT_CAP_EXCEEDED",
    "UNKNOWN_CREDITOR_AGENT",
    # Not in ChequeReturnReason's list of the settlement bank's own reasons (reported).
    "UNKNOWN_DRAWEE_AGENT",
}
"""Reason codes of a presentment REJECTED through the settlement bank."""

_ENTRY_ONLY = "entry of a batch RPC, never called alone"


def _cheque_bytes(world: World) -> st.SearchStrategy[bytes]:
    """A world cheque (all deposited), one cut, extended or with a byte flipped, or noise."""
    real = tuple(c.signed_cheque for c in world.cheques)
    return st.one_of(st.sampled_from(real), _mangled(real), hostile_bytes(640))


def _certificate_bytes(world: World) -> st.SearchStrategy[bytes]:
    real = (world.alice_book.signed_certificate, world.bob_book.signed_certificate)
    return st.one_of(st.sampled_from(real), _mangled(real), hostile_bytes(400))


def _endorsement_bytes(world: World) -> st.SearchStrategy[bytes]:
    real = tuple(c.signed_endorsement for c in world.cheques)
    return st.one_of(st.sampled_from(real), _mangled(real), hostile_bytes(300))


def _mangled(real: tuple[bytes, ...]) -> st.SearchStrategy[bytes]:
    """Real signed documents cut short, with bytes after them, or with one byte changed."""

    def flip(document: bytes, at: int, value: int) -> bytes:
        at %= len(document)
        return document[:at] + bytes([value]) + document[at + 1 :]

    return st.one_of(
        st.builds(lambda d, n: d[: n % len(d)], st.sampled_from(real), st.integers(0, 1000)),
        st.builds(
            lambda d, extra: d + extra, st.sampled_from(real), st.binary(min_size=1, max_size=8)
        ),
        st.builds(flip, st.sampled_from(real), st.integers(0, 1000), st.integers(0, 255)),
    )


def _cheque_amounts(world: World) -> st.SearchStrategy[common_pb2.Money | None]:
    real = tuple(
        common_pb2.Money(amount_minor=c.amount_minor, currency_code=world.currency)
        for c in world.cheques
    )
    return st.one_of(money(world.currency), st.sampled_from(real))


def _presentments(
    world: World,
    ids: st.SearchStrategy[str],
    presenters: tuple[str, ...],
    drawees: tuple[str, ...],
    cleared_only: bool = False,
) -> st.SearchStrategy[Message]:
    """Presentments of the world's cheques (or noise): as beta presented them, under
    another id, or field by field. With cleared_only, only the ids of the presentments
    that went through the settlement bank (P's and S's) are named."""
    made = tuple(c.presented() for c in world.cheques)
    renamed = st.builds(
        lambda p, new_id: _with(_copy(p), presentment_id=new_id), st.sampled_from(made), ids
    )
    named = (world.paid_cheque, world.stopped_cheque) if cleared_only else world.cheques
    fields = messages(
        cheque_pb2.ChequePresentment.DESCRIPTOR,
        {
            "presentment_id": st.one_of(st.sampled_from(tuple(c.deposit_id for c in named)), ids),
            "presenting_agent": one_of_or(presenters, hostile_text(12)),
            "drawee_agent": one_of_or(drawees, hostile_text(12)),
            "amount": _cheque_amounts(world),
            "end_to_end_id": _ids(world.orders["H"]),
            "signed_cheque": _cheque_bytes(world),
            "signed_certificate": _certificate_bytes(world),
            "signed_endorsement": _endorsement_bytes(world),
        },
    )
    return st.one_of(st.sampled_from(made), renamed, fields)


def _copy(message: Message) -> Message:
    copied = type(message)()
    copied.CopyFrom(message)
    return copied


def _presentment_report(
    response_type: type[Message], tables: Tables, rejections: frozenset[str]
) -> Callable[[World, bytes], Tables]:
    """A presentment's report: REJECTED with a known reason, or the recorded answer of a
    world cheque's own presentment (ACCEPTED: P's, which was paid once). Never PENDING,
    never a new payment."""

    def check(world: World, response: bytes) -> Tables:
        report = response_type.FromString(response)
        status = settlement_pb2.TransferStatus.Name(report.status)  # type: ignore[attr-defined]
        reason = report.reason_code  # type: ignore[attr-defined]
        presentment_id = report.presentment_id  # type: ignore[attr-defined]
        if status == "TRANSFER_STATUS_ACCEPTED":
            assert presentment_id == world.paid_cheque.deposit_id, (
                f"a hostile presentment {presentment_id!r} was paid"
            )
            return tables
        assert status == "TRANSFER_STATUS_REJECTED", f"a hostile presentment was {status}"
        assert reason in rejections, f"undocumented return reason {reason!r}"
        return tables

    return check


def _world_deposit(world: World, response: bytes) -> Tables:
    """A deposit answered OK is a world cheque's deposit asked again: nothing written."""
    deposit = cheque_pb2.DepositChequeResponse.FromString(response).deposit
    known = {c.deposit_id: (c.state, c.return_reason) for c in world.cheques}
    assert deposit.deposit_id in known, f"a hostile request deposited a cheque: {deposit}"
    assert (deposit.state, deposit.return_reason) == known[deposit.deposit_id], deposit
    return _NOTHING


def _issued_book(world: World, response: bytes) -> Tables:
    book = cheque_pb2.IssueChequeBookResponse.FromString(response).book
    assert book.bank_code == world.alfa_code, book.bank_code
    assert book.account_reference == world.alice_book.account_reference
    assert 1 <= book.last_serial - book.first_serial + 1 <= 1000
    return frozenset(
        {("alfa", "cheque_books"), ("alfa", "cheque_accounts"), ("alfa", "idempotency")}
    )


def _stop_serials(world: World) -> st.SearchStrategy[int]:
    """P's (paid), S's (stopped already), the stop target, or any serial outside the world's
    books, whose spare serials the boundary cases write on."""
    book = world.alice_book
    real = (world.paid_cheque.serial, world.stopped_cheque.serial, world.stop_target)
    outside = int64s().filter(lambda n: not book.first_serial <= n <= book.last_serial)
    return one_of_or(real, outside)


def _references(world: World) -> st.SearchStrategy[bytes]:
    real = (
        world.alice_book.account_reference,
        world.bob_book.account_reference,
        world.carol_book.account_reference,
    )
    return one_of_or(real, hostile_bytes(80))


def _cheque_specs() -> list[RpcSpec]:
    c, s = cheque_pb2, settlement_pb2
    submitted = _spec(
        f"SettlementService/SubmitChequePresentment ({_ENTRY_ONLY})",
        "settlement",
        "beta",
        s.SubmitChequePresentmentRequest,
        lambda w: messages(
            s.SubmitChequePresentmentRequest.DESCRIPTOR,
            {
                "request_id": _request_id(),
                "presentment": st.one_of(
                    st.none(),
                    _presentments(
                        w, hostile_text(), (w.beta_code, w.alfa_code), (w.alfa_code, w.beta_code)
                    ),
                ),
            },
        ),
        {
            REQUEST_ID_MISSING,
            FIELD_INVALID,
            KEY_REUSED,
            ("PERMISSION_DENIED", "PRESENTING_AGENT_NOT_CALLER"),
            ("INVALID_ARGUMENT", "SAME_AGENT"),
        },
        may_succeed=True,
        success_writes=_presentment_report(
            s.SubmitChequePresentmentResponse,
            frozenset(
                {
                    ("settlement", "settlement_transfers"),
                    ("settlement", "settlement_windows"),
                    ("settlement", "window_positions"),
                    ("settlement", "idempotency"),
                    ("alfa", "cheque_presentments"),
                    ("alfa", "idempotency"),
                }
            ),
            PRESENTMENT_REJECTIONS,
        ),
    )
    received = _spec(
        f"ClearingService/ReceiveChequePresentment ({_ENTRY_ONLY})",
        "alfa",
        "settlement",
        s.ReceiveChequePresentmentRequest,
        lambda w: messages(
            s.ReceiveChequePresentmentRequest.DESCRIPTOR,
            {
                "request_id": _request_id(),
                "presentment": st.one_of(
                    st.none(),
                    _presentments(
                        w,
                        # Not ids the settlement bank may later deliver from beta's cash
                        # letters: a presentment id is beta's, once per content.
                        hostile_text().map(lambda text: f"direct-{text}"),
                        (w.beta_code, w.alfa_code, w.settlement_code),
                        (w.alfa_code, w.beta_code),
                        cleared_only=True,
                    ),
                ),
            },
        ),
        {REQUEST_ID_MISSING, FIELD_INVALID, KEY_REUSED, ("INVALID_ARGUMENT", "SAME_AGENT")},
        may_succeed=True,
        success_writes=_presentment_report(
            s.ReceiveChequePresentmentResponse,
            frozenset({("alfa", "cheque_presentments"), ("alfa", "idempotency")}),
            CHEQUE_RETURN_REASONS,
        ),
    )
    return [
        # -- ChequeService at alfa, called by its customers --------------------------------
        _spec(
            "ChequeService/IssueChequeBook",
            "alfa",
            "alice",
            c.IssueChequeBookRequest,
            lambda w: messages(
                c.IssueChequeBookRequest.DESCRIPTOR,
                {
                    "request_id": _request_id(),
                    "account_id": _accounts(w),
                    "book_size": st.one_of(
                        st.sampled_from((0, 1, 1000, 1001, -1)),
                        st.integers(1, 1000),
                        st.integers(-(2**31), 2**31 - 1),
                    ),
                },
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                FIELD_INVALID,
                ("PERMISSION_DENIED", "ACCOUNT_NOT_HELD_BY_CALLER"),
            },
            may_succeed=True,  # a new book of alice's: its own tables only
            success_writes=_issued_book,
        ),
        _spec(
            "ChequeService/StopCheque",
            "alfa",
            "alice",
            c.StopChequeRequest,
            lambda w: messages(
                c.StopChequeRequest.DESCRIPTOR,
                {
                    "request_id": _request_id(),
                    "account_reference": _references(w),
                    "serial": _stop_serials(w),
                },
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                ("NOT_FOUND", "CHEQUE_NOT_FOUND"),
                ("FAILED_PRECONDITION", "CHEQUE_ALREADY_PAID"),
            },
            may_succeed=True,  # S again, or the stop target: a stop-payment order, nothing else
            success_writes=_writes(("alfa", "cheque_stops"), ("alfa", "idempotency")),
        ),
        _spec(
            "ChequeService/CloseChequeAccount",
            "alfa",
            "carol",
            c.CloseChequeAccountRequest,
            lambda w: messages(
                c.CloseChequeAccountRequest.DESCRIPTOR,
                {"request_id": _request_id(), "account_reference": _references(w)},
            ),
            {REQUEST_ID_MISSING, KEY_REUSED, ("NOT_FOUND", "CHEQUE_NOT_FOUND")},
            may_succeed=True,  # carol's account is closed already: closing it again says when
            success_writes=_writes(("alfa", "idempotency")),
        ),
        # -- ChequeService at beta, called by the shop -------------------------------------
        _spec(
            "ChequeService/DepositCheque",
            "beta",
            "shop",
            c.DepositChequeRequest,
            lambda w: st.one_of(
                messages(
                    c.DepositChequeRequest.DESCRIPTOR,
                    {
                        "request_id": one_of_or(
                            tuple(cheque.request_id for cheque in w.cheques), _request_id()
                        ),
                        "signed_cheque": _cheque_bytes(w),
                        "signed_certificate": _certificate_bytes(w),
                        "signed_endorsement": _endorsement_bytes(w),
                    },
                ),
                st.builds(
                    lambda cheque, request_id: cheque.deposit_request(request_id),
                    st.sampled_from(w.cheques),
                    st.one_of(st.none(), _request_id()),
                ),
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                FIELD_INVALID,
                ("INVALID_ARGUMENT", "ENDORSEMENT_INVALID"),
                ("ALREADY_EXISTS", "CHEQUE_ALREADY_DEPOSITED"),
            },
            may_succeed=True,  # a world deposit asked again with its request_id: as it is now
            success_writes=_world_deposit,
            max_examples=150,
        ),
        # -- cash letters: beta -> settlement bank -> alfa ---------------------------------
        _batch_of(
            submitted,
            "SettlementService/SubmitChequePresentments",
            s.SubmitChequePresentmentsRequest,
            s.SubmitChequePresentmentsResponse,
        ),
        _batch_of(
            received,
            "ClearingService/ReceiveChequePresentments",
            s.ReceiveChequePresentmentsRequest,
            s.ReceiveChequePresentmentsResponse,
        ),
        # -- OrderService at the shop: paying an order with a cheque -----------------------
        _spec(
            "OrderService/SubmitCheque",
            "shop",
            "alice",
            order_pb2.SubmitChequeRequest,
            lambda w: st.one_of(
                messages(
                    order_pb2.SubmitChequeRequest.DESCRIPTOR,
                    {
                        "request_id": _request_id(),
                        "order_id": _ids(*w.orders.values()),
                        "signed_cheque": _cheque_bytes(w),
                        "signed_certificate": _certificate_bytes(w),
                    },
                ),
                st.builds(
                    lambda cheque, request_id: order_pb2.SubmitChequeRequest(
                        request_id=request_id,
                        order_id=w.orders["H"],
                        signed_cheque=cheque.signed_cheque,
                        signed_certificate=cheque.signed_certificate,
                    ),
                    st.sampled_from(w.cheques),
                    _request_id(),
                ),
            ),
            {
                REQUEST_ID_MISSING,
                KEY_REUSED,
                FIELD_INVALID,
                ("NOT_FOUND", "ORDER_NOT_FOUND"),
                ("FAILED_PRECONDITION", "ORDER_NOT_PAYABLE"),
                *(
                    ("INVALID_ARGUMENT", reason)
                    for reason in (
                        "DRAWEE_KEY_UNKNOWN",
                        "SIGNATURE_INVALID",
                        "PAYEE_MISMATCH",
                        "AMOUNT_MISMATCH",
                        "ORDER_REFERENCE_MISMATCH",
                        "POST_DATED",
                        "STALE_DATED",
                    )
                ),
                # Passed on from the acquirer: every world cheque was deposited already.
                ("ALREADY_EXISTS", "CHEQUE_ALREADY_DEPOSITED"),
            },
            # The refused deposit's record is dropped and the order reopened with the reason.
            refusal_writes={"CHEQUE_ALREADY_DEPOSITED": _SHOP_CHEQUE_TABLES},
        ),
    ]


_SHOP_CHEQUE_TABLES = frozenset(
    {
        ("shop", "orders"),
        ("shop", "outbox"),
        ("shop", "sqlite_sequence"),
        ("shop", "cheque_payments"),
        ("shop", "idempotency"),
    }
)


def _accounts(world: World) -> st.SearchStrategy[str]:
    return _ids(world.alice_account, world.bob_account, world.shop_account, "@reserve", "@suspense")


def _with(message: Message, **fields: object) -> Message:
    for name, value in fields.items():
        setattr(message, name, value)
    return message
