"""Boundary requests to every RPC, each with its exact answer.

Where the generated cases accept any documented refusal, each case here
names the one status code and ErrorInfo reason it must get, and what it may
write (nothing, unless the flow documents a write). Cases marked ``defect``
assert the correct behaviour of a known defect in code this suite may not
change; they are strict xfails, so fixing the defect turns them into failures
that ask for the mark to go.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from interbank.v1 import (
    account_pb2,
    audit_pb2,
    common_pb2,
    notification_pb2,
    order_pb2,
    settlement_pb2,
)
from interbank.v1 import authorization_pb2 as authz

from payment import envelope
from payment.batching import MAX_BATCH, from_entry_error
from payment.money import MAX_AMOUNT_MINOR
from payment.pki import Pki

from .boundary import Boundary, Build
from .cash import CoinKit
from .cash_boundaries import CASH_BOUNDARIES
from .catalog import Payer, RpcSpec, signed_instruction, specs
from .cheque_boundaries import CHEQUE_BOUNDARIES
from .cheques import ChequeKit
from .harness import Allowance, Harness, Outcome
from .network import RunningNetwork
from .strategies import HUGE, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN
from .world import World


def _batch_size_refusal(count: int) -> dict[str, Any]:
    """An empty batch is refused BATCH_SIZE_INVALID by the RPC; one over the bound of its
    entries field (bounds.proto) FIELD_INVALID before the RPC reads it."""
    if count == 0:
        return {"reason": "BATCH_SIZE_INVALID", "metadata": {"field": "entries", "count": "0"}}
    return {"reason": "FIELD_INVALID", "metadata": {"field": "entries", "limit": str(MAX_BATCH)}}


def _rid() -> str:
    return str(uuid.uuid4())


def _eur(world: World, amount: int, currency: str | None = None) -> common_pb2.Money:
    return common_pb2.Money(
        amount_minor=amount, currency_code=world.currency if currency is None else currency
    )


def _shop_account(world: World) -> common_pb2.AccountRef:
    return common_pb2.AccountRef(bank_code=world.beta_code, account_id=world.shop_account)


def _authorize_payment(
    *,
    amount: int | None = None,
    currency: str | None = None,
    kind: int = common_pb2.INSTRUMENT_KIND_CARD,
    bank_code: str | None = None,
    merchant: str = "shop",
    digest: bytes | None = None,
    seal_digest: bytes | None = None,
    key_id: str | None = None,
    signature: bytes | None = None,
    plaintext: bytes | None = None,
) -> Build:
    """An AuthorizePaymentRequest for order B, really sealed and signed, with one thing off."""

    def build(world: World, payer: Payer) -> Message:
        total = world.b_total if amount is None else amount
        instruction, dual = signed_instruction(
            world,
            payer,
            order_id=world.orders["B"],
            digest=world.b_digest,
            amount=total,
            currency=currency,
            kind=kind,
            bank_code=bank_code,
            merchant=merchant,
        )
        public = envelope.load_x25519_public(world.gateway_public_key)
        sealed = envelope.seal_instruction(
            instruction if plaintext is None else plaintext, public, seal_digest or world.b_digest
        )
        return authz.AuthorizePaymentRequest(
            request_id=_rid(),
            order_id=world.orders["B"],
            amount=_eur(world, total, currency),
            order_digest=world.b_digest if digest is None else digest,
            payment=common_pb2.SealedPayment(
                sealed_instruction=sealed,
                dual_signature=dual if signature is None else signature,
                gateway_key_id=world.gateway_key_id if key_id is None else key_id,
            ),
        )

    return build


def _authorize_hold(
    *,
    amount: int | None = None,
    currency: str | None = None,
    kind: int = common_pb2.INSTRUMENT_KIND_CARD,
    bank_code: str | None = None,
    instruction_merchant: str = "shop",
    customer: str = "alice",
    transaction_id: Callable[[World], str] | None = None,
    creditor: bool = True,
    signature: bytes | None = None,
    truncate: bool = False,
    request_id: str | None = None,
) -> Build:
    """An AuthorizeHoldRequest with alice's real card and signature, with one thing off."""

    def build(world: World, payer: Payer) -> Message:
        instruction, dual = signed_instruction(
            world,
            payer,
            order_id=world.orders["B"],
            digest=world.b_digest,
            amount=world.b_total if amount is None else amount,
            currency=currency,
            kind=kind,
            bank_code=bank_code,
            merchant=instruction_merchant,
            customer=customer,
        )
        return authz.AuthorizeHoldRequest(
            request_id=_rid() if request_id is None else request_id,
            transaction_id=_rid() if transaction_id is None else transaction_id(world),
            instruction=instruction[:-3] if truncate else instruction,
            dual_signature=dual if signature is None else signature,
            merchant_name="shop",
            creditor_account=_shop_account(world) if creditor else None,
        )

    return build


def _authorize_holds(*entries: Build) -> Build:
    """An AuthorizeHoldsRequest of these AuthorizeHold requests, in order."""

    def build(world: World, payer: Payer) -> Message:
        return authz.AuthorizeHoldsRequest(entries=[entry(world, payer) for entry in entries])

    return build


def _sealed_for_b(**overrides: object) -> Build:
    """A SubmitPaymentRequest for order B (CREATED) with a well-formed payment, overridden."""

    def build(world: World, _payer: Payer) -> Message:
        payment = common_pb2.SealedPayment(
            sealed_instruction=b"\x01" * 200,
            dual_signature=b"\x02" * 64,
            gateway_key_id=world.gateway_key_id,
        )
        for name, value in overrides.items():
            setattr(payment, name, value)
        return order_pb2.SubmitPaymentRequest(
            request_id=_rid(), order_id=world.orders["B"], payment=payment
        )

    return build


def _transfer(
    *,
    instruction_id: str | None = None,
    debtor: str | None = None,
    creditor: str | None = None,
    amount: int = 100,
    currency: str | None = None,
    account: str = "no-such-account",
) -> Callable[[World], settlement_pb2.CreditTransfer]:
    def build(world: World) -> settlement_pb2.CreditTransfer:
        instruction = instruction_id or _rid()
        return settlement_pb2.CreditTransfer(
            instruction_id=instruction,
            end_to_end_id=f"order-of-{instruction}",
            amount=_eur(world, amount, currency),
            debtor_agent=world.alfa_code if debtor is None else debtor,
            debtor_account=common_pb2.AccountRef(
                bank_code=world.alfa_code, account_id=world.alice_account
            ),
            creditor_agent=world.beta_code if creditor is None else creditor,
            creditor_account=common_pb2.AccountRef(bank_code=world.beta_code, account_id=account),
        )

    return build


def _return(
    *,
    return_id: str | None = None,
    original: Callable[[World], str] | None = None,
    returning: str | None = None,
    receiving: str | None = None,
    amount: Callable[[World], int] = lambda w: w.total_a + 1,
) -> Callable[[World], settlement_pb2.PaymentReturn]:
    def build(world: World) -> settlement_pb2.PaymentReturn:
        return settlement_pb2.PaymentReturn(
            return_id=return_id or _rid(),
            original_instruction_id=(original or (lambda w: w.instruction_a))(world),
            original_end_to_end_id=world.orders["A"],
            amount=_eur(world, amount(world)),
            returning_agent=world.beta_code if returning is None else returning,
            receiving_agent=world.alfa_code if receiving is None else receiving,
            reason_code="CUST",
        )

    return build


def _rejected(reason: str) -> Callable[[bytes, World], None]:
    """A success that reports a transfer or return REJECTED for reason."""

    def check(response: bytes, _world: World) -> None:
        # Every transfer and return status report has status (2) and reason_code (3).
        report = settlement_pb2.ReceiveCreditTransferResponse.FromString(response)
        assert (settlement_pb2.TransferStatus.Name(report.status), report.reason_code) == (
            "TRANSFER_STATUS_REJECTED",
            reason,
        )

    return check


def _batch_results(
    response_type: type[Message], *expected: tuple[str, str]
) -> Callable[[bytes, World], None]:
    """A batch answer whose results are, in order, these (status or code name, reason)."""

    def check(response: bytes, _world: World) -> None:
        found = []
        for result in response_type.FromString(response).results:  # type: ignore[attr-defined]
            if result.WhichOneof("outcome") == "report":
                status = settlement_pb2.TransferStatus.Name(result.report.status)
                found.append((status, result.report.reason_code))
            else:
                error = from_entry_error(result.error)
                found.append((error.code.name, error.reason))
        assert found == list(expected)

    return check


def _order_status(status: int) -> Callable[[bytes, World], None]:
    def check(response: bytes, _world: World) -> None:
        order = order_pb2.GetOrderResponse.FromString(response).order
        assert order.status == status, order_pb2.OrderStatus.Name(order.status)

    return check


def _statement(
    account: Callable[[World], str] = lambda w: w.alice_account,
    *,
    from_time: tuple[int, int] | None = None,
    to_time: tuple[int, int] | None = None,
) -> Build:
    def build(world: World, _payer: Payer) -> Message:
        request = account_pb2.ListStatementRequest(account_id=account(world))
        if from_time is not None:
            request.from_time.seconds, request.from_time.nanos = from_time
        if to_time is not None:
            request.to_time.seconds, request.to_time.nanos = to_time
        return request

    return build


def _const(message: Callable[[World], Message]) -> Build:
    return lambda world, _payer: message(world)


def _credit(request_id: str, instruction_id: str, amount: int) -> Build:
    """A ReceiveCreditTransferRequest to the shop's account with fixed ids."""
    return _const(
        lambda w: S.ReceiveCreditTransferRequest(
            request_id=request_id,
            transfer=_transfer(
                instruction_id=instruction_id, amount=amount, account=w.shop_account
            )(w),
        )
    )


def _capped(instruction_id: str, amount: int) -> Build:
    """A SubmitCreditTransferRequest beyond the net debit cap, with a fixed instruction id."""
    return _const(
        lambda w: S.SubmitCreditTransferRequest(
            request_id=_rid(), transfer=_transfer(instruction_id=instruction_id, amount=amount)(w)
        )
    )


def _returned(message: type[Message], return_id: str, extra: int) -> Build:
    """A (Receive|Submit)PaymentReturnRequest of order A's transfer beyond its amount."""
    return _const(
        lambda w: message(
            request_id=_rid(),
            payment_return=_return(return_id=return_id, amount=lambda w: w.total_a + extra)(w),
        )
    )


def _hostile_id() -> str:
    return f"hostile-{uuid.uuid4()}"


_REPLAYED = (_hostile_id(), _hostile_id())
_REUSED_CREDIT = _hostile_id()
_REUSED_RETURN = _hostile_id()
_REUSED_TRANSFER = _hostile_id()
_REUSED_SUBMITTED_RETURN = _hostile_id()
_YEAR_1 = -62_135_596_800
_YEAR_9999_END = 253_402_300_799
_SHOP = (("shop", "orders"), ("shop", "outbox"), ("shop", "sqlite_sequence"))
A, S, AC = authz, settlement_pb2, account_pb2

BOUNDARIES: list[Boundary] = [
    # -- OrderService ---------------------------------------------------------------------
    Boundary(
        "products",
        "OrderService/ListProducts",
        "shop",
        _const(lambda w: order_pb2.ListProductsRequest()),
        "OK",
        response=lambda r, w: (
            None
            if len(order_pb2.ListProductsResponse.FromString(r).products) == 3
            else pytest.fail("the catalog has 3 products")
        ),
    ),
    Boundary(
        "no-lines",
        "OrderService/CreateOrder",
        "shop",
        _const(lambda w: order_pb2.CreateOrderRequest(request_id=_rid())),
        "INVALID_ARGUMENT",
        "EMPTY_ORDER",
    ),
    Boundary(
        "no-request-id",
        "OrderService/CreateOrder",
        "shop",
        _const(
            lambda w: order_pb2.CreateOrderRequest(
                lines=[order_pb2.CreateOrderLine(sku="book-001", quantity=1)]
            )
        ),
        "INVALID_ARGUMENT",
        "REQUEST_ID_MISSING",
    ),
    *(
        Boundary(
            f"quantity-{quantity}",
            "OrderService/CreateOrder",
            "shop",
            _const(
                lambda w, q=quantity: order_pb2.CreateOrderRequest(
                    request_id=_rid(), lines=[order_pb2.CreateOrderLine(sku="book-001", quantity=q)]
                )
            ),
            "INVALID_ARGUMENT",
            "QUANTITY_INVALID",
        )
        for quantity in (0, -1, 1001, INT32_MAX, INT32_MIN)
    ),
    *(
        Boundary(
            f"sku-{name}",
            "OrderService/CreateOrder",
            "shop",
            _const(
                lambda w, s=sku: order_pb2.CreateOrderRequest(
                    request_id=_rid(), lines=[order_pb2.CreateOrderLine(sku=s, quantity=1)]
                )
            ),
            "INVALID_ARGUMENT",
            "UNKNOWN_SKU",
        )
        for name, sku in (
            ("empty", ""),
            ("nul", "book-001\x00"),
            ("upper", "BOOK-001"),
            ("rtl", "\u202ebook-001"),
        )
    ),
    Boundary(
        "sku-huge",
        "OrderService/CreateOrder",
        "shop",
        _const(
            lambda w: order_pb2.CreateOrderRequest(
                request_id=_rid(), lines=[order_pb2.CreateOrderLine(sku="x" * HUGE, quantity=1)]
            )
        ),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
        metadata={"field": "lines[0].sku", "limit": "64"},
    ),
    Boundary(
        "duplicate-sku",
        "OrderService/CreateOrder",
        "shop",
        _const(
            lambda w: order_pb2.CreateOrderRequest(
                request_id=_rid(), lines=[order_pb2.CreateOrderLine(sku="lamp-002", quantity=1)] * 2
            )
        ),
        "INVALID_ARGUMENT",
        "DUPLICATE_SKU",
    ),
    Boundary(
        "10000-lines",
        "OrderService/CreateOrder",
        "shop",
        _const(
            lambda w: order_pb2.CreateOrderRequest(
                request_id=_rid(),
                lines=[order_pb2.CreateOrderLine(sku="book-001", quantity=1)] * 10_000,
            )
        ),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
        metadata={"field": "lines", "limit": "100"},
    ),
    Boundary(
        "most-units-odd-request-id",
        "OrderService/CreateOrder",
        "shop",
        _const(
            lambda w: order_pb2.CreateOrderRequest(
                request_id="\u202e\U0001f4b8" + _rid(),
                lines=[order_pb2.CreateOrderLine(sku="bike-003", quantity=1000)],
            )
        ),
        "OK",
        writes=frozenset({*_SHOP, ("shop", "idempotency")}),
        response=lambda r, w: (
            None
            if order_pb2.CreateOrderResponse.FromString(r).order.total.amount_minor == 72_000_000
            else pytest.fail("1000 bicycles are priced 720000.00")
        ),
    ),
    Boundary(
        "own",
        "OrderService/GetOrder",
        "shop",
        _const(lambda w: order_pb2.GetOrderRequest(order_id=w.orders["A"])),
        "OK",
        response=_order_status(order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED),
    ),
    *(
        Boundary(
            f"not-{name}",
            "OrderService/GetOrder",
            "shop",
            _const(lambda w, f=make: order_pb2.GetOrderRequest(order_id=f(w))),
            "NOT_FOUND",
            "ORDER_NOT_FOUND",
        )
        for name, make in (
            ("empty", lambda w: ""),
            ("someone-elses", lambda w: w.orders["G"]),
            ("upper-case", lambda w: w.orders["A"].upper()),
            ("with-nul", lambda w: w.orders["A"] + "\x00"),
        )
    ),
    Boundary(
        "no-payment",
        "OrderService/SubmitPayment",
        "shop",
        _const(lambda w: order_pb2.SubmitPaymentRequest(request_id=_rid(), order_id=w.orders["B"])),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
        metadata={"field": "payment.sealed_instruction"},
    ),
    Boundary(
        "sealed-too-short",
        "OrderService/SubmitPayment",
        "shop",
        _sealed_for_b(sealed_instruction=b"\x01" * 48),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
    ),
    *(
        Boundary(
            f"key-id-{name}",
            "OrderService/SubmitPayment",
            "shop",
            _sealed_for_b(gateway_key_id=key_id),
            "INVALID_ARGUMENT",
            "UNKNOWN_GATEWAY_KEY",
        )
        for name, key_id in (("empty", ""), ("upper-hex", "ABCDEF0123456789"))
    ),
    Boundary(
        "key-id-huge",
        "OrderService/SubmitPayment",
        "shop",
        _sealed_for_b(gateway_key_id="0" * HUGE),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
        metadata={"field": "payment.gateway_key_id", "limit": "64"},
    ),
    *(
        Boundary(
            f"signature-{len(signature)}-bytes",
            "OrderService/SubmitPayment",
            "shop",
            _sealed_for_b(dual_signature=signature),
            "INVALID_ARGUMENT",
            "DUAL_SIGNATURE_INVALID",
        )
        for signature in (b"", b"\x00" * 63, b"\x00" * 65, b"\x00" * 256)
    ),
    Boundary(
        f"signature-{HUGE}-bytes",
        "OrderService/SubmitPayment",
        "shop",
        _sealed_for_b(dual_signature=b"\x00" * HUGE),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
        metadata={"field": "payment.dual_signature", "limit": "256"},
    ),
    Boundary(
        # The merchant hands out the gateway's key id itself, so it can refuse another one
        # before touching the order; today the order goes PAYMENT_PENDING and back.
        "key-id-of-another-key",
        "OrderService/SubmitPayment",
        "shop",
        _sealed_for_b(gateway_key_id="0123456789abcdef"),
        "INVALID_ARGUMENT",
        "UNKNOWN_GATEWAY_KEY",
    ),
    Boundary(
        # Well-formed but sealed to nothing the gateway can open: the refusal comes from the
        # gateway, and the merchant records it on the order (back to CREATED, with the reason).
        "unreadable-recorded-on-order",
        "OrderService/SubmitPayment",
        "shop",
        _sealed_for_b(),
        "INVALID_ARGUMENT",
        "INSTRUCTION_UNREADABLE",
        writes=frozenset(_SHOP),
    ),
    *(
        Boundary(
            f"order-{letter}",
            "OrderService/SubmitPayment",
            "shop",
            lambda w, p, letter=letter: _with_order(_sealed_for_b()(w, p), w.orders[letter]),
            code,
            reason,
        )
        for letter, code, reason in (
            ("D", "FAILED_PRECONDITION", "ORDER_ALREADY_PAID"),
            ("A", "FAILED_PRECONDITION", "ORDER_ALREADY_PAID"),
            ("C", "FAILED_PRECONDITION", "ORDER_NOT_PAYABLE"),
            ("G", "NOT_FOUND", "ORDER_NOT_FOUND"),
        )
    ),
    *(
        Boundary(
            f"order-{letter}",
            "OrderService/CompletePayment",
            "shop",
            _const(
                lambda w, letter=letter: order_pb2.CompletePaymentRequest(
                    request_id=_rid(), order_id=w.orders[letter]
                )
            ),
            code,
            reason,
            writes=frozenset({("shop", "idempotency")}) if code == "OK" else frozenset(),
        )
        for letter, code, reason in (
            ("A", "OK", None),
            ("B", "FAILED_PRECONDITION", "ORDER_NOT_AUTHORIZED"),
            ("C", "FAILED_PRECONDITION", "ORDER_NOT_PAYABLE"),
            ("D", "FAILED_PRECONDITION", "CHALLENGE_NOT_ANSWERED"),
            ("E", "FAILED_PRECONDITION", "ORDER_NOT_PAYABLE"),
            ("G", "NOT_FOUND", "ORDER_NOT_FOUND"),
        )
    ),
    *(
        Boundary(
            f"order-{letter}",
            "OrderService/CancelOrder",
            "shop",
            _const(
                lambda w, letter=letter: order_pb2.CancelOrderRequest(
                    request_id=_rid(), order_id=w.orders[letter]
                )
            ),
            code,
            reason,
        )
        for letter, code, reason in (
            ("A", "FAILED_PRECONDITION", "ORDER_NOT_CANCELABLE"),
            ("C", "FAILED_PRECONDITION", "ORDER_NOT_CANCELABLE"),
            ("E", "FAILED_PRECONDITION", "ORDER_NOT_CANCELABLE"),
            ("G", "NOT_FOUND", "ORDER_NOT_FOUND"),
        )
    ),
    Boundary(
        "no-order-id",
        "OrderService/CancelOrder",
        "shop",
        _const(lambda w: order_pb2.CancelOrderRequest(request_id=_rid())),
        "NOT_FOUND",
        "ORDER_NOT_FOUND",
    ),
    # -- BackOfficeService ----------------------------------------------------------------
    *(
        Boundary(
            f"a-{name}",
            "BackOfficeService/RefundOrder",
            "shop",
            _const(
                lambda w, f=amount: order_pb2.RefundOrderRequest(
                    request_id=_rid(), order_id=w.orders["A"], amount=f(w)
                )
            ),
            code,
            reason,
        )
        for name, amount, code, reason in (
            ("minus-1", lambda w: _eur(w, -1), "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("zero", lambda w: _eur(w, 0), "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("int64-min", lambda w: _eur(w, INT64_MIN), "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("usd", lambda w: _eur(w, 100, "USD"), "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("rtl-eur", lambda w: _eur(w, 100, "\u202eEUR"), "INVALID_ARGUMENT", "FIELD_INVALID"),
            (
                "one-cent-too-much",
                lambda w: _eur(w, w.total_a + 1),
                "FAILED_PRECONDITION",
                "REFUND_EXCEEDS_PAYMENT",
            ),
            (
                "int64-max",
                lambda w: _eur(w, INT64_MAX),
                "FAILED_PRECONDITION",
                "REFUND_EXCEEDS_PAYMENT",
            ),
        )
    ),
    Boundary(
        "unsettled-order",
        "BackOfficeService/RefundOrder",
        "shop",
        _const(lambda w: order_pb2.RefundOrderRequest(request_id=_rid(), order_id=w.orders["B"])),
        "FAILED_PRECONDITION",
        "ORDER_NOT_REFUNDABLE",
    ),
    Boundary(
        "no-order",
        "BackOfficeService/RefundOrder",
        "shop",
        _const(lambda w: order_pb2.RefundOrderRequest(request_id=_rid(), order_id="\x00")),
        "NOT_FOUND",
        "ORDER_NOT_FOUND",
    ),
    # -- GatewayService -------------------------------------------------------------------
    *(
        Boundary(name, "GatewayService/AuthorizePayment", "gateway", build, code, reason)
        for name, build, code, reason in (
            ("amount-minus-1", _authorize_payment(amount=-1), "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("amount-zero", _authorize_payment(amount=0), "INVALID_ARGUMENT", "FIELD_INVALID"),
            (
                "amount-int64-min",
                _authorize_payment(amount=INT64_MIN),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            ("usd", _authorize_payment(currency="USD"), "INVALID_ARGUMENT", "CURRENCY_MISMATCH"),
            ("no-currency", _authorize_payment(currency=""), "INVALID_ARGUMENT", "FIELD_INVALID"),
            (
                "kind-999",
                _authorize_payment(kind=999),
                "INVALID_ARGUMENT",
                "INSTRUMENT_KIND_UNSUPPORTED",
            ),
            (
                "electronic-cash",
                _authorize_payment(kind=common_pb2.INSTRUMENT_KIND_ELECTRONIC_CASH),
                "INVALID_ARGUMENT",
                "INSTRUMENT_KIND_UNSUPPORTED",
            ),
            (
                "unknown-bank",
                _authorize_payment(bank_code="ZZZZXX99"),
                "INVALID_ARGUMENT",
                "UNKNOWN_BANK_CODE",
            ),
            (
                "settlement-bank",
                _authorize_payment(bank_code="SETLXX00"),
                "INVALID_ARGUMENT",
                "UNKNOWN_BANK_CODE",
            ),
            (
                "digest-31-bytes",
                _authorize_payment(digest=b"\x00" * 31),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "sealed-for-another-digest",
                _authorize_payment(seal_digest=b"\x07" * 32),
                "INVALID_ARGUMENT",
                "INSTRUCTION_UNREADABLE",
            ),
            (
                "unknown-key",
                _authorize_payment(key_id="0123456789abcdef"),
                "INVALID_ARGUMENT",
                "UNKNOWN_GATEWAY_KEY",
            ),
            (
                "signature-63-bytes",
                _authorize_payment(signature=b"\x00" * 63),
                "INVALID_ARGUMENT",
                "DUAL_SIGNATURE_INVALID",
            ),
            (
                "sealed-garbage",
                _authorize_payment(plaintext=b"\xff\xff\xff"),
                "INVALID_ARGUMENT",
                "INSTRUCTION_MALFORMED",
            ),
            (
                "other-merchant",
                _authorize_payment(merchant="shop\u202e"),
                "INVALID_ARGUMENT",
                "MERCHANT_MISMATCH",
            ),
        )
    ),
    Boundary(
        # Passes every gateway check; the issuer refuses it and the gateway records the failure.
        "amount-int64-max",
        "GatewayService/AuthorizePayment",
        "gateway",
        _authorize_payment(amount=INT64_MAX),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
        writes=frozenset({("gateway", "payment_transaction"), ("gateway", "instruction_nonce")}),
    ),
    *(
        Boundary(
            f"transaction-{letter}",
            "GatewayService/CapturePayment",
            "gateway",
            _const(
                lambda w, letter=letter: A.CapturePaymentRequest(
                    request_id=_rid(), transaction_id=w.transactions[letter]
                )
            ),
            code,
            reason,
        )
        for letter, code, reason in (
            ("B", "FAILED_PRECONDITION", "HOLD_NOT_CAPTURABLE"),
            ("D", "FAILED_PRECONDITION", "CHALLENGE_NOT_ANSWERED"),
            ("E", "FAILED_PRECONDITION", "CHALLENGE_LOCKED"),
        )
    ),
    Boundary(
        "no-transaction",
        "GatewayService/CapturePayment",
        "gateway",
        _const(lambda w: A.CapturePaymentRequest(request_id=_rid())),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
    ),
    Boundary(
        "unknown-transaction",
        "GatewayService/CapturePayment",
        "gateway",
        _const(lambda w: A.CapturePaymentRequest(request_id=_rid(), transaction_id=_rid())),
        "NOT_FOUND",
        "TRANSACTION_NOT_FOUND",
    ),
    *(
        Boundary(
            f"transaction-{letter}",
            "GatewayService/VoidPayment",
            "gateway",
            _const(
                lambda w, letter=letter: A.VoidPaymentRequest(
                    request_id=_rid(), transaction_id=w.transactions[letter]
                )
            ),
            "FAILED_PRECONDITION",
            "HOLD_NOT_VOIDABLE",
        )
        for letter in "AB"
    ),
    *(
        Boundary(
            f"a-{name}",
            "GatewayService/RefundPayment",
            "gateway",
            _const(
                lambda w, f=amount: A.RefundPaymentRequest(
                    request_id=_rid(), transaction_id=w.transactions["A"], amount=f(w)
                )
            ),
            code,
            reason,
        )
        for name, amount, code, reason in (
            ("minus-1", lambda w: _eur(w, -1), "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("missing", lambda w: None, "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("usd", lambda w: _eur(w, 1, "USD"), "INVALID_ARGUMENT", "FIELD_INVALID"),
            (
                "one-cent-too-much",
                lambda w: _eur(w, w.total_a + 1),
                "FAILED_PRECONDITION",
                "REFUND_EXCEEDS_PAYMENT",
            ),
            ("int64-max", lambda w: _eur(w, INT64_MAX), "INVALID_ARGUMENT", "FIELD_INVALID"),
        )
    ),
    Boundary(
        "uncaptured",
        "GatewayService/RefundPayment",
        "gateway",
        _const(
            lambda w: A.RefundPaymentRequest(
                request_id=_rid(), transaction_id=w.transactions["D"], amount=_eur(w, 1)
            )
        ),
        "FAILED_PRECONDITION",
        "PAYMENT_NOT_REFUNDABLE",
    ),
    Boundary(
        "captured",
        "GatewayService/GetPaymentTransaction",
        "gateway",
        _const(lambda w: A.GetPaymentTransactionRequest(transaction_id=w.transactions["A"])),
        "OK",
    ),
    Boundary(
        "empty",
        "GatewayService/GetPaymentTransaction",
        "gateway",
        _const(lambda w: A.GetPaymentTransactionRequest()),
        "NOT_FOUND",
        "TRANSACTION_NOT_FOUND",
    ),
    # -- IssuerService --------------------------------------------------------------------
    *(
        Boundary(name, "IssuerService/AuthorizeHold", "alfa", build, code, reason)
        for name, build, code, reason in (
            ("amount-minus-1", _authorize_hold(amount=-1), "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("amount-zero", _authorize_hold(amount=0), "INVALID_ARGUMENT", "FIELD_INVALID"),
            (
                "amount-int64-min",
                _authorize_hold(amount=INT64_MIN),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "amount-int64-max",
                _authorize_hold(amount=INT64_MAX),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "amount-over-the-maximum",
                _authorize_hold(amount=MAX_AMOUNT_MINOR + 1),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "amount-maximum",
                _authorize_hold(amount=MAX_AMOUNT_MINOR),
                "FAILED_PRECONDITION",
                "INSUFFICIENT_FUNDS",
            ),
            ("usd", _authorize_hold(currency="USD"), "INVALID_ARGUMENT", "CURRENCY_MISMATCH"),
            ("no-currency", _authorize_hold(currency=""), "INVALID_ARGUMENT", "CURRENCY_MISMATCH"),
            (
                "merchant-mismatch",
                _authorize_hold(instruction_merchant="shop\x00"),
                "INVALID_ARGUMENT",
                "MERCHANT_MISMATCH",
            ),
            (
                "no-transaction-id",
                _authorize_hold(transaction_id=lambda w: ""),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "no-creditor",
                _authorize_hold(creditor=False),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "transaction-with-a-hold",
                _authorize_hold(transaction_id=lambda w: w.transactions["A"]),
                "ALREADY_EXISTS",
                "IDEMPOTENCY_KEY_REUSED",
            ),
            (
                "someone-elses-card",
                _authorize_hold(customer="bob"),
                "PERMISSION_DENIED",
                "INSTRUMENT_HOLDER_MISMATCH",
            ),
            (
                "zero-signature",
                _authorize_hold(signature=b"\x00" * 64),
                "INVALID_ARGUMENT",
                "DUAL_SIGNATURE_INVALID",
            ),
            (
                "longest-signature",
                _authorize_hold(signature=b"\x00" * 256),
                "INVALID_ARGUMENT",
                "DUAL_SIGNATURE_INVALID",
            ),
            (
                "huge-signature",
                _authorize_hold(signature=b"\x00" * HUGE),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "truncated",
                _authorize_hold(truncate=True),
                "INVALID_ARGUMENT",
                "INSTRUCTION_MALFORMED",
            ),
            (
                "kind-999",
                _authorize_hold(kind=999),
                "INVALID_ARGUMENT",
                "INSTRUMENT_KIND_UNSUPPORTED",
            ),
            (
                "other-bank",
                _authorize_hold(bank_code="BETAXX02"),
                "INVALID_ARGUMENT",
                "UNKNOWN_BANK_CODE",
            ),
            (
                "no-request-id",
                _authorize_hold(request_id=""),
                "INVALID_ARGUMENT",
                "REQUEST_ID_MISSING",
            ),
        )
    ),
    Boundary(
        "captured",
        "IssuerService/CaptureHold",
        "alfa",
        _const(lambda w: A.CaptureHoldRequest(request_id=_rid(), hold_id=w.holds["A"])),
        "OK",
        writes=frozenset({("alfa", "idempotency")}),
    ),
    Boundary(
        "no-request-id",
        "IssuerService/CaptureHold",
        "alfa",
        _const(lambda w: A.CaptureHoldRequest(hold_id=w.holds["A"])),
        "INVALID_ARGUMENT",
        "REQUEST_ID_MISSING",
    ),
    Boundary(
        "unknown-hold",
        "IssuerService/CaptureHold",
        "alfa",
        _const(lambda w: A.CaptureHoldRequest(request_id=_rid(), hold_id=_rid())),
        "NOT_FOUND",
        "HOLD_NOT_FOUND",
    ),
    Boundary(
        "captured",
        "IssuerService/VoidHold",
        "alfa",
        _const(lambda w: A.VoidHoldRequest(request_id=_rid(), hold_id=w.holds["A"])),
        "FAILED_PRECONDITION",
        "HOLD_NOT_VOIDABLE",
    ),
    Boundary(
        "unknown-hold",
        "IssuerService/VoidHold",
        "alfa",
        _const(lambda w: A.VoidHoldRequest(request_id=_rid(), hold_id="\U0010ffff")),
        "NOT_FOUND",
        "HOLD_NOT_FOUND",
    ),
    Boundary(
        "int64-max",
        "IssuerService/RefundCapture",
        "alfa",
        _const(
            lambda w: A.RefundCaptureRequest(
                request_id=_rid(), hold_id=w.holds["A"], amount=_eur(w, INT64_MAX)
            )
        ),
        "FAILED_PRECONDITION",
        "REFUND_VIA_ACQUIRER",
    ),
    Boundary(
        "by-transaction",
        "IssuerService/GetHold",
        "alfa",
        _const(lambda w: A.GetHoldRequest(transaction_id=w.transactions["A"])),
        "OK",
        response=lambda r, w: (
            None
            if A.GetHoldResponse.FromString(r).status == A.HOLD_STATUS_CAPTURED
            else pytest.fail("A's hold is captured")
        ),
    ),
    Boundary(
        "nothing",
        "IssuerService/GetHold",
        "alfa",
        _const(lambda w: A.GetHoldRequest()),
        "NOT_FOUND",
        "HOLD_NOT_FOUND",
    ),
    # -- AcquirerService ------------------------------------------------------------------
    *(
        Boundary(
            name,
            "AcquirerService/ReturnPayment",
            "beta",
            _const(
                lambda w, f=fields: A.ReturnPaymentRequest(
                    **{
                        "request_id": _rid(),
                        "original_instruction_id": w.instruction_a,
                        "original_debtor_agent": w.alfa_code,
                        "amount": _eur(w, w.total_a + 1),
                        "merchant_name": "shop",
                        **f(w),
                    }
                )
            ),
            code,
            reason,
        )
        for name, fields, code, reason in (
            ("minus-1", lambda w: {"amount": _eur(w, -1)}, "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("usd", lambda w: {"amount": _eur(w, 1, "USD")}, "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("one-cent-too-much", lambda w: {}, "FAILED_PRECONDITION", "REFUND_EXCEEDS_PAYMENT"),
            (
                "int64-max",
                lambda w: {"amount": _eur(w, INT64_MAX)},
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "other-debtor-agent",
                lambda w: {"original_debtor_agent": w.beta_code},
                "NOT_FOUND",
                "ORIGINAL_TRANSFER_NOT_FOUND",
            ),
            (
                "other-merchant",
                lambda w: {"merchant_name": "shop\u202e"},
                "NOT_FOUND",
                "ORIGINAL_TRANSFER_NOT_FOUND",
            ),
            (
                "huge-reason-code",
                lambda w: {"reason_code": "CUST" * (HUGE // 4)},
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "nul-reason-code",
                lambda w: {"reason_code": "\x00"},
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "no-request-id",
                lambda w: {"request_id": ""},
                "INVALID_ARGUMENT",
                "REQUEST_ID_MISSING",
            ),
        )
    ),
    # -- ChallengeService -----------------------------------------------------------------
    *(
        Boundary(
            f"pending-code-{name}",
            "ChallengeService/AnswerChallenge",
            "alfa",
            _const(
                lambda w, c=code: A.AnswerChallengeRequest(
                    request_id=_rid(), challenge_id=w.challenges["D"], code=c
                )
            ),
            "INVALID_ARGUMENT",
            "FIELD_INVALID",
            metadata={"field": "code"},
        )
        for name, code in (
            ("empty", ""),
            ("5-digits", "12345"),
            ("7-digits", "1234567"),
            ("letters", "abcdef"),
            ("arabic-indic-digits", "\u0661\u0662\u0663\u0664\u0665\u0666"),
            ("full-width-digits", "\uff11\uff12\uff13\uff14\uff15\uff16"),
            ("trailing-nul", "12345\x00"),
            ("signed", "+12345"),
            ("trailing-newline", "123456\n"),
            ("huge", "1" * HUGE),
        )
    ),
    Boundary(
        # A well-formed wrong code counts against the challenge, by design.
        "pending-wrong-code",
        "ChallengeService/AnswerChallenge",
        "alfa",
        _const(
            lambda w: A.AnswerChallengeRequest(
                request_id=_rid(), challenge_id=w.challenges["D"], code=w.d_wrong_code
            )
        ),
        "INVALID_ARGUMENT",
        "CHALLENGE_CODE_WRONG",
        writes=frozenset({("alfa", "challenges")}),
        metadata={"attempts_left": "2"},
    ),
    Boundary(
        "locked",
        "ChallengeService/AnswerChallenge",
        "alfa",
        _const(
            lambda w: A.AnswerChallengeRequest(
                request_id=_rid(), challenge_id=w.challenges["E"], code="123456"
            )
        ),
        "FAILED_PRECONDITION",
        "CHALLENGE_LOCKED",
    ),
    Boundary(
        "unknown",
        "ChallengeService/AnswerChallenge",
        "alfa",
        _const(
            lambda w: A.AnswerChallengeRequest(
                request_id=_rid(), challenge_id=_rid(), code="123456"
            )
        ),
        "NOT_FOUND",
        "CHALLENGE_NOT_FOUND",
    ),
    # -- ClearingService ------------------------------------------------------------------
    Boundary(
        "no-transfer",
        "ClearingService/ReceiveCreditTransfer",
        "beta",
        _const(lambda w: S.ReceiveCreditTransferRequest(request_id=_rid())),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
    ),
    Boundary(
        "no-request-id",
        "ClearingService/ReceiveCreditTransfer",
        "beta",
        _const(lambda w: S.ReceiveCreditTransferRequest(transfer=_transfer()(w))),
        "INVALID_ARGUMENT",
        "REQUEST_ID_MISSING",
    ),
    *(
        # Refused before anything is read or written, so sent again it gets the same answer.
        Boundary(
            f"{name}{again}",
            "ClearingService/ReceiveCreditTransfer",
            "beta",
            _credit(*ids, amount),
            "INVALID_ARGUMENT",
            "FIELD_INVALID",
            metadata={"field": "transfer.amount", "limit": str(MAX_AMOUNT_MINOR)},
            before=_credit(*ids, amount) if again else None,
        )
        for name, amount, ids in (
            ("amount-minus-1", -1, _REPLAYED),
            ("amount-int64-max", INT64_MAX, (_hostile_id(), _hostile_id())),
            ("amount-int64-min", INT64_MIN, (_hostile_id(), _hostile_id())),
            ("amount-over-the-maximum", MAX_AMOUNT_MINOR + 1, (_hostile_id(), _hostile_id())),
        )
        for again in ("", "-again")
    ),
    Boundary(
        "from-itself",
        "ClearingService/ReceiveCreditTransfer",
        "beta",
        _const(
            lambda w: S.ReceiveCreditTransferRequest(
                request_id=_rid(), transfer=_transfer(debtor=w.beta_code, account=w.shop_account)(w)
            )
        ),
        "INVALID_ARGUMENT",
        "SAME_AGENT",
    ),
    Boundary(
        "same-instruction-other-content",
        "ClearingService/ReceiveCreditTransfer",
        "beta",
        _const(
            lambda w: S.ReceiveCreditTransferRequest(
                request_id=_rid(), transfer=_transfer(instruction_id=_REUSED_CREDIT, amount=2)(w)
            )
        ),
        "ALREADY_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
        before=_const(
            lambda w: S.ReceiveCreditTransferRequest(
                request_id=_rid(), transfer=_transfer(instruction_id=_REUSED_CREDIT, amount=1)(w)
            )
        ),
    ),
    *(
        Boundary(
            name,
            "ClearingService/ReceiveCreditTransfer",
            "beta",
            _const(
                lambda w, f=transfer: S.ReceiveCreditTransferRequest(
                    request_id=_rid(), transfer=f(w)
                )
            ),
            "OK",
            writes=frozenset({("beta", "incoming_transfers"), ("beta", "idempotency")}),
            response=_rejected(reason),
        )
        for name, transfer, reason in (
            (
                "usd",
                lambda w: _transfer(currency="USD", account=w.shop_account)(w),
                "CURRENCY_MISMATCH",
            ),
            ("other-agent", _transfer(creditor="ZZZZXX99"), "UNKNOWN_CREDITOR_AGENT"),
            ("reserve-account", _transfer(account="@reserve"), "CREDITOR_ACCOUNT_UNKNOWN"),
            (
                "maximum-to-suspense",
                _transfer(amount=MAX_AMOUNT_MINOR, account="@suspense"),
                "CREDITOR_ACCOUNT_UNKNOWN",
            ),
        )
    ),
    Boundary(
        "no-return",
        "ClearingService/ReceivePaymentReturn",
        "alfa",
        _const(lambda w: S.ReceivePaymentReturnRequest(request_id=_rid())),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
    ),
    Boundary(
        "exceeds-original",
        "ClearingService/ReceivePaymentReturn",
        "alfa",
        _returned(S.ReceivePaymentReturnRequest, _hostile_id(), 1),
        "OK",
        writes=frozenset({("alfa", "incoming_returns"), ("alfa", "idempotency")}),
        response=_rejected("RETURN_EXCEEDS_ORIGINAL"),
    ),
    Boundary(
        "same-return-other-content",
        "ClearingService/ReceivePaymentReturn",
        "alfa",
        _returned(S.ReceivePaymentReturnRequest, _REUSED_RETURN, 2),
        "ALREADY_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
        before=_returned(S.ReceivePaymentReturnRequest, _REUSED_RETURN, 1),
    ),
    *(
        Boundary(
            name,
            "ClearingService/ReceivePaymentReturn",
            "alfa",
            _const(
                lambda w, f=payment_return: S.ReceivePaymentReturnRequest(
                    request_id=_rid(), payment_return=f(w)
                )
            ),
            "OK",
            writes=frozenset({("alfa", "incoming_returns"), ("alfa", "idempotency")}),
            response=_rejected(reason),
        )
        for name, payment_return, reason in (
            ("unknown-original", _return(original=lambda w: _rid()), "ORIGINAL_TRANSFER_NOT_FOUND"),
            ("to-another-bank", _return(receiving="ZZZZXX99"), "UNKNOWN_CREDITOR_AGENT"),
        )
    ),
    *(
        Boundary(
            name,
            "ClearingService/ReceivePaymentReturn",
            "alfa",
            _const(
                lambda w, f=payment_return: S.ReceivePaymentReturnRequest(
                    request_id=_rid(), payment_return=f(w)
                )
            ),
            "INVALID_ARGUMENT",
            reason,
        )
        for name, payment_return, reason in (
            ("zero", _return(amount=lambda w: 0), "FIELD_INVALID"),
            ("int64-max", _return(amount=lambda w: INT64_MAX), "FIELD_INVALID"),
            ("to-the-returning-bank", _return(receiving="BETAXX02"), "SAME_AGENT"),
        )
    ),
    # -- SettlementService ----------------------------------------------------------------
    *(
        Boundary(
            name,
            "SettlementService/SubmitCreditTransfer",
            "settlement",
            _const(
                lambda w, f=transfer, r=request_id: S.SubmitCreditTransferRequest(
                    request_id=r, transfer=f(w)
                )
            ),
            code,
            reason,
        )
        for name, transfer, request_id, code, reason in (
            (
                "debtor-not-caller",
                _transfer(debtor="BETAXX02"),
                "r",
                "PERMISSION_DENIED",
                "DEBTOR_AGENT_NOT_CALLER",
            ),
            ("minus-1", _transfer(amount=-1), "r", "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("usd", _transfer(currency="USD"), "r", "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("no-creditor-agent", _transfer(creditor=""), "r", "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("no-request-id", _transfer(), "", "INVALID_ARGUMENT", "REQUEST_ID_MISSING"),
            ("to-itself", _transfer(creditor="ALFAXX01"), "r", "INVALID_ARGUMENT", "SAME_AGENT"),
            ("int64-max", _transfer(amount=INT64_MAX), "r", "INVALID_ARGUMENT", "FIELD_INVALID"),
        )
    ),
    Boundary(
        "maximum",
        "SettlementService/SubmitCreditTransfer",
        "settlement",
        _capped(_hostile_id(), MAX_AMOUNT_MINOR),
        "OK",
        writes=frozenset({("settlement", "settlement_transfers"), ("settlement", "idempotency")}),
        response=_rejected("NET_DEBIT_CAP_EXCEEDED"),
    ),
    Boundary(
        "same-instruction-other-content",
        "SettlementService/SubmitCreditTransfer",
        "settlement",
        _capped(_REUSED_TRANSFER, MAX_AMOUNT_MINOR - 1),
        "ALREADY_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
        before=_capped(_REUSED_TRANSFER, MAX_AMOUNT_MINOR),
    ),
    *(
        Boundary(
            name,
            "SettlementService/SubmitCreditTransfer",
            "settlement",
            _const(
                lambda w, c=creditor: S.SubmitCreditTransferRequest(
                    request_id=_rid(), transfer=_transfer(creditor=c)(w)
                )
            ),
            "OK",
            writes=frozenset(
                {("settlement", "settlement_transfers"), ("settlement", "idempotency")}
            ),
            response=_rejected("UNKNOWN_CREDITOR_AGENT"),
        )
        for name, creditor in (("unknown-agent", "ZZZZXX99"), ("settlement-bank", "SETLXX00"))
    ),
    Boundary(
        "returning-not-caller",
        "SettlementService/SubmitPaymentReturn",
        "settlement",
        _const(
            lambda w: S.SubmitPaymentReturnRequest(
                request_id=_rid(), payment_return=_return(returning=w.alfa_code)(w)
            )
        ),
        "PERMISSION_DENIED",
        "RETURNING_AGENT_NOT_CALLER",
    ),
    Boundary(
        "no-original",
        "SettlementService/SubmitPaymentReturn",
        "settlement",
        _const(
            lambda w: S.SubmitPaymentReturnRequest(
                request_id=_rid(), payment_return=_return(original=lambda w: "")(w)
            )
        ),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
    ),
    Boundary(
        "exceeds-original",
        "SettlementService/SubmitPaymentReturn",
        "settlement",
        _returned(S.SubmitPaymentReturnRequest, _hostile_id(), 1),
        "OK",
        writes=frozenset({("settlement", "settlement_transfers"), ("settlement", "idempotency")}),
        response=_rejected("RETURN_EXCEEDS_ORIGINAL"),
    ),
    Boundary(
        "unknown-original",
        "SettlementService/SubmitPaymentReturn",
        "settlement",
        _const(
            lambda w: S.SubmitPaymentReturnRequest(
                request_id=_rid(), payment_return=_return(original=lambda w: _rid())(w)
            )
        ),
        "OK",
        writes=frozenset({("settlement", "settlement_transfers"), ("settlement", "idempotency")}),
        response=_rejected("ORIGINAL_TRANSFER_NOT_FOUND"),
    ),
    Boundary(
        "same-return-other-content",
        "SettlementService/SubmitPaymentReturn",
        "settlement",
        _returned(S.SubmitPaymentReturnRequest, _REUSED_SUBMITTED_RETURN, 2),
        "ALREADY_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
        before=_returned(S.SubmitPaymentReturnRequest, _REUSED_SUBMITTED_RETURN, 1),
    ),
    Boundary(
        "a",
        "SettlementService/GetTransferStatus",
        "settlement",
        _const(lambda w: S.GetTransferStatusRequest(instruction_id=w.instruction_a)),
        "OK",
    ),
    Boundary(
        "empty",
        "SettlementService/GetTransferStatus",
        "settlement",
        _const(lambda w: S.GetTransferStatusRequest()),
        "NOT_FOUND",
        "TRANSACTION_NOT_FOUND",
    ),
    Boundary(
        "open",
        "SettlementService/GetSettlementWindow",
        "settlement",
        _const(lambda w: S.GetSettlementWindowRequest()),
        "OK",
    ),
    Boundary(
        "settled",
        "SettlementService/GetSettlementWindow",
        "settlement",
        _const(lambda w: S.GetSettlementWindowRequest(window_id=w.settled_window)),
        "OK",
        response=lambda r, w: (
            None
            if S.GetSettlementWindowResponse.FromString(r).window.status
            == S.SETTLEMENT_WINDOW_STATUS_SETTLED
            else pytest.fail("the window closed in setup is settled")
        ),
    ),
    Boundary(
        "unknown",
        "SettlementService/GetSettlementWindow",
        "settlement",
        _const(lambda w: S.GetSettlementWindowRequest(window_id="\u202e" + w.settled_window)),
        "NOT_FOUND",
        "SETTLEMENT_WINDOW_NOT_FOUND",
    ),
    Boundary(
        "no-request-id",
        "SettlementService/CloseSettlementWindow",
        "settlement",
        _const(lambda w: S.CloseSettlementWindowRequest()),
        "INVALID_ARGUMENT",
        "REQUEST_ID_MISSING",
    ),
    # -- AuditService ---------------------------------------------------------------------
    *(
        Boundary(
            node,
            "AuditService/GetBooks",
            node,
            _const(lambda w: audit_pb2.GetBooksRequest()),
            "OK",
            response=lambda r, w, kind=kind: (
                None
                if audit_pb2.GetBooksResponse.FromString(r).WhichOneof("books") == kind
                else pytest.fail(f"{kind} books expected")
            ),
        )
        for node, kind in (("alfa", "member"), ("settlement", "settlement"))
    ),
    # -- NotificationService --------------------------------------------------------------
    *(
        Boundary(
            f"{node}-after-{name}",
            "NotificationService/Subscribe",
            node,
            _const(lambda w, s=sequence: notification_pb2.SubscribeRequest(after_sequence=s)),
            code,
            reason,
        )
        for node in ("alfa", "shop")
        for name, sequence, code, reason in (
            ("minus-1", -1, "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("int64-min", INT64_MIN, "INVALID_ARGUMENT", "FIELD_INVALID"),
            ("zero", 0, "OK", None),
            ("int64-max", INT64_MAX, "OUT_OF_RANGE", "CURSOR_BEYOND_END"),
        )
    ),
    # -- AccountService -------------------------------------------------------------------
    Boundary(
        "own",
        "AccountService/GetBalance",
        "alfa",
        _const(lambda w: AC.GetBalanceRequest(account_id=w.alice_account)),
        "OK",
    ),
    *(
        Boundary(
            f"not-{name}",
            "AccountService/GetBalance",
            "alfa",
            _const(lambda w, f=account: AC.GetBalanceRequest(account_id=f(w))),
            "PERMISSION_DENIED",
            "ACCOUNT_NOT_HELD_BY_CALLER",
        )
        for name, account in (
            ("empty", lambda w: ""),
            ("reserve", lambda w: "@reserve"),
            ("suspense", lambda w: "@suspense"),
            ("someone-elses", lambda w: w.bob_account),
        )
    ),
    Boundary(
        "not-huge",
        "AccountService/GetBalance",
        "alfa",
        _const(lambda w: AC.GetBalanceRequest(account_id=w.alice_account * (HUGE // 13))),
        "INVALID_ARGUMENT",
        "FIELD_INVALID",
        metadata={"field": "account_id", "limit": "64"},
    ),
    *(
        Boundary(name, "AccountService/ListStatement", "alfa", build, code, reason)
        for name, build, code, reason in (
            (
                "from-2-pow-62",
                _statement(from_time=(2**62, 0)),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "from-nanos-minus-1",
                _statement(from_time=(0, -1)),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "to-nanos-10-pow-9",
                _statement(to_time=(0, 10**9)),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "to-int64-min",
                _statement(to_time=(INT64_MIN, 0)),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "before-year-1",
                _statement(from_time=(_YEAR_1 - 1, 999_999_999)),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "after-year-9999",
                _statement(to_time=(_YEAR_9999_END + 1, 0)),
                "INVALID_ARGUMENT",
                "FIELD_INVALID",
            ),
            (
                "year-1-to-9999",
                _statement(from_time=(_YEAR_1, 0), to_time=(_YEAR_9999_END, 999_999_999)),
                "OK",
                None,
            ),
            ("empty-period", _statement(from_time=(0, 0), to_time=(0, 0)), "OK", None),
            (
                "from-after-to",
                _statement(from_time=(1, 0), to_time=(0, 999_999_999)),
                "INVALID_ARGUMENT",
                "PERIOD_INVALID",
            ),
            (
                "someone-elses",
                _statement(lambda w: w.bob_account),
                "PERMISSION_DENIED",
                "ACCOUNT_NOT_HELD_BY_CALLER",
            ),
        )
    ),
    # -- batch RPCs: the batch is refused whole only for its size; each entry is answered
    # as the single RPC would answer it alone -----------------------------------------------
    *(
        Boundary(
            f"{count}-entries",
            rpc,
            node,
            _const(lambda w, m=message, n=count, e=entry: m(entries=[e(w) for _ in range(n)])),
            "INVALID_ARGUMENT",
            **_batch_size_refusal(count),
        )
        for rpc, node, message, entry in (
            (
                "SettlementService/SubmitCreditTransfers",
                "settlement",
                S.SubmitCreditTransfersRequest,
                lambda w: S.SubmitCreditTransferRequest(
                    request_id=_rid(), transfer=_transfer(amount=INT64_MAX)(w)
                ),
            ),
            (
                "ClearingService/ReceiveCreditTransfers",
                "beta",
                S.ReceiveCreditTransfersRequest,
                lambda w: S.ReceiveCreditTransferRequest(
                    request_id=_rid(), transfer=_transfer(amount=-1)(w)
                ),
            ),
        )
        for count in (0, MAX_BATCH + 1)
    ),
    *(
        Boundary(
            f"{count}-entries",
            "IssuerService/AuthorizeHolds",
            "alfa",
            _authorize_holds(*[_authorize_hold(amount=-1)] * count),
            "INVALID_ARGUMENT",
            **_batch_size_refusal(count),
        )
        for count in (0, MAX_BATCH + 1)
    ),
    Boundary(
        "each-entry-alone",
        "IssuerService/AuthorizeHolds",
        "alfa",
        _authorize_holds(
            _authorize_hold(amount=INT64_MAX),
            _authorize_hold(customer="bob"),
            _authorize_hold(request_id=""),
            _authorize_hold(truncate=True),
        ),
        "OK",
        response=_batch_results(
            A.AuthorizeHoldsResponse,
            ("INVALID_ARGUMENT", "FIELD_INVALID"),
            ("PERMISSION_DENIED", "INSTRUMENT_HOLDER_MISMATCH"),
            ("INVALID_ARGUMENT", "REQUEST_ID_MISSING"),
            ("INVALID_ARGUMENT", "INSTRUCTION_MALFORMED"),
        ),
    ),
    Boundary(
        "each-entry-alone",
        "SettlementService/SubmitCreditTransfers",
        "settlement",
        _const(
            lambda w: S.SubmitCreditTransfersRequest(
                entries=[
                    S.SubmitCreditTransferRequest(
                        request_id=_rid(), transfer=_transfer(debtor="BETAXX02")(w)
                    ),
                    S.SubmitCreditTransferRequest(
                        request_id=_rid(), transfer=_transfer(amount=INT64_MAX)(w)
                    ),
                    S.SubmitCreditTransferRequest(transfer=_transfer()(w)),
                ]
            )
        ),
        "OK",
        response=_batch_results(
            S.SubmitCreditTransfersResponse,
            ("PERMISSION_DENIED", "DEBTOR_AGENT_NOT_CALLER"),
            ("INVALID_ARGUMENT", "FIELD_INVALID"),
            ("INVALID_ARGUMENT", "REQUEST_ID_MISSING"),
        ),
    ),
    Boundary(
        "each-entry-alone",
        "ClearingService/ReceiveCreditTransfers",
        "beta",
        _const(
            lambda w: S.ReceiveCreditTransfersRequest(
                entries=[
                    S.ReceiveCreditTransferRequest(
                        request_id=_rid(),
                        transfer=_transfer(amount=-1, account=w.shop_account)(w),
                    ),
                    S.ReceiveCreditTransferRequest(request_id=_rid()),
                    S.ReceiveCreditTransferRequest(
                        request_id=_rid(),
                        transfer=_transfer(currency="USD", account=w.shop_account)(w),
                    ),
                ]
            )
        ),
        "OK",
        writes=frozenset({("beta", "incoming_transfers"), ("beta", "idempotency")}),
        response=_batch_results(
            S.ReceiveCreditTransfersResponse,
            ("INVALID_ARGUMENT", "FIELD_INVALID"),
            ("INVALID_ARGUMENT", "FIELD_INVALID"),
            ("TRANSFER_STATUS_REJECTED", "CURRENCY_MISMATCH"),
        ),
    ),
    *CHEQUE_BOUNDARIES,
    *CASH_BOUNDARIES,
]


def _serialized(request: Message | bytes) -> bytes:
    return request if isinstance(request, bytes) else request.SerializeToString()


def _with_order(request: Message | bytes, order_id: str) -> Message:
    assert isinstance(request, order_pb2.SubmitPaymentRequest)
    request.order_id = order_id
    return request


def _spec(boundary: Boundary) -> RpcSpec:
    for spec in SPECS:
        if spec.method == f"/interbank.v1.{boundary.rpc}" and spec.target.node == boundary.node:
            return spec
    raise LookupError(f"no spec for {boundary.rpc} at {boundary.node}")


SPECS = specs()


def _param(boundary: Boundary) -> object:
    marks = (
        [pytest.mark.xfail(reason=boundary.defect, strict=True, raises=AssertionError)]
        if boundary.defect
        else []
    )
    return pytest.param(boundary, id=f"{boundary.rpc}:{boundary.id}@{boundary.node}", marks=marks)


@pytest.fixture(scope="session")
def payer(hostile_net: RunningNetwork, world: World) -> Payer:
    """alice's card and signing key, for boundary cases that must get past the issuer's
    checks, the kit writing fresh cheques and the one withdrawing fresh coins."""
    network = hostile_net.network
    return Payer(
        network.customer("alice").card_number,
        envelope.load_ed25519_private(Pki(network.pki_dir).signing_key("alice").read_bytes()),
        ChequeKit(network, world),
        CoinKit(network),
    )


def test_every_rpc_has_boundary_cases() -> None:
    covered = {f"/interbank.v1.{b.rpc}" for b in BOUNDARIES}
    assert covered == {spec.method for spec in SPECS}


@pytest.mark.parametrize("boundary", [_param(b) for b in BOUNDARIES])
def test_boundary_request_gets_its_exact_answer(
    boundary: Boundary, harness: Harness, world: World, payer: Payer
) -> None:
    target = _spec(boundary).target
    if boundary.caller is not None:
        target = replace(target, caller=boundary.caller)
    if boundary.before is not None:
        first = harness.invoke(target, _serialized(boundary.before(world, payer)))
        assert first.code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), first
    payload = _serialized(boundary.build(world, payer))
    metadata = boundary.metadata(world) if callable(boundary.metadata) else boundary.metadata

    def exact(outcome: Outcome) -> Allowance:
        assert outcome.code.name == boundary.code, f"{boundary.id}: got {outcome}"
        if outcome.code is grpc.StatusCode.OK:
            assert outcome.response is not None
            if boundary.response is not None:
                boundary.response(outcome.response, world)
        else:
            assert outcome.reason == boundary.reason, f"{boundary.id}: got {outcome}"
            for key, value in metadata.items():
                assert outcome.metadata.get(key) == value, f"{boundary.id}: {outcome.metadata}"
        return Allowance(boundary.writes, boundary.defects)

    harness.check(target, payload, kind="boundary", judge=exact)
    if boundary.settled is None:
        return
    settled = boundary.settled
    harness.settle(f"{target.method} ({boundary.id}, settled)")

    def repeat(outcome: Outcome) -> Allowance:
        assert outcome.ok and outcome.response is not None, f"{boundary.id} again: {outcome}"
        settled(outcome.response, world)
        return Allowance(frozenset())

    harness.check(target, payload, kind="boundary", judge=repeat)
