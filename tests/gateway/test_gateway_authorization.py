"""Authorize, capture and void through the issuer; the record never holds the instrument."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from interbank.v1 import authorization_pb2, common_pb2

from gateway.store import TransactionState
from payment import errors, ids


async def test_an_approved_payment_is_recorded_with_its_hold_and_sent_to_the_issuer_unchanged(
    payment_gateway, issuer, customer, gateway_key
) -> None:
    request = customer.request()
    response = await payment_gateway.authorize(request, "shop")

    assert response.decision == authorization_pb2.AUTHORIZATION_DECISION_APPROVED
    assert issuer.routed_to == ["alfa"]
    name, hold_request, _ = issuer.calls[0]
    assert name == "AuthorizeHolds"
    assert hold_request.request_id == f"authorize:{response.transaction_id}"
    assert hold_request.merchant_name == "shop"
    assert hold_request.creditor_account == common_pb2.AccountRef(
        bank_code="BETAXX02", account_id="shop-sales"
    )
    assert hold_request.dual_signature == request.payment.dual_signature
    opened = common_pb2.PaymentInstruction.FromString(hold_request.instruction)
    assert opened.order_id == request.order_id

    record = await payment_gateway.transaction(response.transaction_id, "shop")
    assert record.state is TransactionState.HELD
    assert record.hold_status == authorization_pb2.HOLD_STATUS_AUTHORIZED
    assert record.to_proto().amount == common_pb2.Money(amount_minor=9000, currency_code="EUR")
    assert record.issuer_bank_code == "ALFAXX01"


async def test_authorizations_queued_for_one_issuer_go_in_one_batch_each_answered_alone(
    payment_gateway, issuer, customer, store
) -> None:
    issuer.gate = asyncio.Event()
    requests = [customer.request() for _ in range(5)]
    issuer.refuse(requests[3].order_id, grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_FUNDS")
    first = asyncio.ensure_future(payment_gateway.authorize(requests[0], "shop"))
    while not issuer.batches:  # the first goes at once, alone
        await asyncio.sleep(0.001)
    rest = [asyncio.ensure_future(payment_gateway.authorize(r, "shop")) for r in requests[1:]]
    while not all([await _recorded(store, r.order_id) for r in requests]):
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.05)  # each recorded authorization then joins the issuer's queue
    issuer.gate.set()
    answers = await asyncio.gather(first, *rest, return_exceptions=True)

    assert issuer.batches == [1, 4]  # the four queued behind the first went together
    assert [name for name, *_ in issuer.calls] == ["AuthorizeHolds"] * 5
    refused = answers[3]
    assert isinstance(refused, errors.FailedPrecondition)
    assert refused.reason == "INSUFFICIENT_FUNDS"
    for answer in answers[:3] + answers[4:]:
        assert isinstance(answer, authorization_pb2.AuthorizePaymentResponse)
        assert answer.decision == authorization_pb2.AUTHORIZATION_DECISION_APPROVED
        record = await payment_gateway.transaction(answer.transaction_id, "shop")
        assert record.state is TransactionState.HELD
    states = await store.read(
        lambda conn: conn.execute(
            "SELECT order_id, state, failure_reason FROM payment_transaction"
        ).fetchall()
    )
    assert sorted(states) == sorted(
        (r.order_id, "failed", "INSUFFICIENT_FUNDS")
        if r is requests[3]
        else (r.order_id, "held", "")
        for r in requests
    )


async def _recorded(store, order_id: str) -> bool:
    """Whether the gateway has recorded the order's transaction (it then asks the issuer)."""
    found = await store.read(
        lambda conn: conn.execute(
            "SELECT 1 FROM payment_transaction WHERE order_id = ?", (order_id,)
        ).fetchone()
    )
    return found is not None


async def test_a_challenged_payment_relays_the_challenge_and_keeps_the_hold_pending(
    payment_gateway, issuer, customer
) -> None:
    issuer.decision = authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
    response = await payment_gateway.authorize(customer.request(), "shop")

    assert response.decision == authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
    assert response.challenge.challenge_id == "challenge-1"
    record = await payment_gateway.transaction(response.transaction_id, "shop")
    assert record.hold_status == authorization_pb2.HOLD_STATUS_CHALLENGE_PENDING


async def test_an_issuer_refusal_is_relayed_with_its_reason_and_the_transaction_failed(
    payment_gateway, issuer, customer, store
) -> None:
    issuer.fail_with(grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_FUNDS")
    with pytest.raises(errors.FailedPrecondition) as raised:
        await payment_gateway.authorize(customer.request(), "shop")
    assert raised.value.reason == "INSUFFICIENT_FUNDS"

    rows = await store.read(
        lambda conn: conn.execute(
            "SELECT state, failure_reason FROM payment_transaction"
        ).fetchall()
    )
    assert rows == [("failed", "INSUFFICIENT_FUNDS")]


async def test_a_merchant_whose_answer_was_lost_finds_the_refusal_by_its_request(
    payment_gateway, issuer, customer
) -> None:
    issuer.fail_with(grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_FUNDS")
    request = customer.request()
    with pytest.raises(errors.FailedPrecondition):
        await payment_gateway.authorize(request, "shop")
    # The merchant derives the id from its own request_id, without the lost answer.
    derived = ids.transaction_id("shop", request.request_id)
    found = (await payment_gateway.transaction(derived, "shop")).to_proto()
    assert found.order_id == request.order_id
    assert found.failure_reason == "INSUFFICIENT_FUNDS"
    assert found.hold_status == authorization_pb2.HOLD_STATUS_UNSPECIFIED
    assert not found.hold_id


async def test_a_held_transaction_has_no_failure_reason_and_its_id_is_the_derived_one(
    payment_gateway, customer
) -> None:
    request = customer.request()
    response = await payment_gateway.authorize(request, "shop")
    assert response.transaction_id == ids.transaction_id("shop", request.request_id)
    found = (await payment_gateway.transaction(response.transaction_id, "shop")).to_proto()
    assert found.failure_reason == ""
    assert found.hold_status == authorization_pb2.HOLD_STATUS_AUTHORIZED


async def test_capture_and_void_relay_to_the_issuer_and_update_the_hold_status(
    payment_gateway, issuer, customer
) -> None:
    captured = await payment_gateway.authorize(customer.request(), "shop")
    voided = await payment_gateway.authorize(customer.request(), "shop")

    capture = await payment_gateway.capture(captured.transaction_id, "shop")
    void = await payment_gateway.void(voided.transaction_id, "shop")

    assert capture.hold_status == authorization_pb2.HOLD_STATUS_CAPTURED
    assert capture.instruction_id == "instr-1"
    assert void.hold_status == authorization_pb2.HOLD_STATUS_VOIDED
    assert [c[1].request_id for c in issuer.calls if c[0] != "AuthorizeHolds"] == [
        f"capture:{captured.transaction_id}",
        f"void:{voided.transaction_id}",
    ]
    record = await payment_gateway.transaction(captured.transaction_id, "shop")
    assert record.hold_status == authorization_pb2.HOLD_STATUS_CAPTURED
    record = await payment_gateway.transaction(voided.transaction_id, "shop")
    assert record.hold_status == authorization_pb2.HOLD_STATUS_VOIDED


async def test_a_merchant_cannot_see_capture_or_void_another_merchants_transaction(
    payment_gateway, issuer, customer
) -> None:
    response = await payment_gateway.authorize(customer.request(), "shop")
    for attempt in (payment_gateway.capture, payment_gateway.void, payment_gateway.transaction):
        with pytest.raises(errors.NotFound) as raised:
            await attempt(response.transaction_id, "kiosk")
        assert raised.value.reason == "TRANSACTION_NOT_FOUND"
    assert [c[0] for c in issuer.calls] == ["AuthorizeHolds"]


async def test_a_failed_authorization_cannot_be_captured(
    payment_gateway, issuer, customer, store
) -> None:
    issuer.fail_with(grpc.StatusCode.INVALID_ARGUMENT, "DUAL_SIGNATURE_INVALID")
    with pytest.raises(errors.InvalidArgument):
        await payment_gateway.authorize(customer.request(), "shop")
    transaction_id = (
        await store.read(
            lambda conn: conn.execute("SELECT transaction_id FROM payment_transaction").fetchone()
        )
    )[0]
    issuer.failure = None
    with pytest.raises(errors.FailedPrecondition) as raised:
        await payment_gateway.capture(transaction_id, "shop")
    assert raised.value.reason == "HOLD_NOT_CAPTURABLE"


async def test_the_gateway_store_never_holds_the_instrument_or_the_instruction(
    payment_gateway, customer, store, tmp_path: Path
) -> None:
    request = customer.request()
    await payment_gateway.authorize(request, "shop")
    await store.close()

    stored = b"".join(p.read_bytes() for p in (tmp_path / "gateway").iterdir() if p.is_file())
    assert customer.card_number.encode() not in stored
    assert request.payment.sealed_instruction not in stored


async def test_a_sale_asks_the_issuer_to_capture_and_records_the_capture_with_the_hold(
    payment_gateway, issuer, customer
) -> None:
    request = customer.request()
    request.capture = True
    response = await payment_gateway.authorize(request, "shop")

    assert response.decision == authorization_pb2.AUTHORIZATION_DECISION_APPROVED
    assert response.capture == authorization_pb2.CapturePaymentResponse(
        hold_status=authorization_pb2.HOLD_STATUS_CAPTURED,
        instruction_id="instr-sale",
        settlement_state=authorization_pb2.SETTLEMENT_STATE_SETTLED,
    )
    assert [(name, call.capture) for name, call, _ in issuer.calls] == [("AuthorizeHolds", True)]
    record = await payment_gateway.transaction(response.transaction_id, "shop")
    assert record.state is TransactionState.HELD
    assert record.hold_status == authorization_pb2.HOLD_STATUS_CAPTURED
    assert record.instruction_id == "instr-sale"


async def test_a_challenged_sale_is_held_without_a_capture(
    payment_gateway, issuer, customer
) -> None:
    issuer.decision = authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
    request = customer.request()
    request.capture = True
    response = await payment_gateway.authorize(request, "shop")

    assert response.decision == authorization_pb2.AUTHORIZATION_DECISION_CHALLENGE_REQUIRED
    assert not response.HasField("capture")
    record = await payment_gateway.transaction(response.transaction_id, "shop")
    assert record.hold_status == authorization_pb2.HOLD_STATUS_CHALLENGE_PENDING
    assert record.instruction_id == ""
