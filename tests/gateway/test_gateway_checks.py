"""The gateway opens and checks a sealed payment before it records or calls anything."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from interbank.v1 import common_pb2

from gateway.checks import check_payment
from gateway.store import claim_nonce
from payment import errors
from payment.clock import now, to_iso


async def transaction_count(store) -> int:
    return await store.read(
        lambda conn: conn.execute("SELECT count(*) FROM payment_transaction").fetchone()[0]
    )


async def assert_refused(
    payment_gateway, store, issuer, request, reason: str, merchant: str = "shop"
) -> None:
    with pytest.raises(errors.InvalidArgument) as raised:
        await payment_gateway.authorize(request, merchant)
    assert raised.value.reason == reason
    assert await transaction_count(store) == 0
    assert issuer.calls == []


def test_a_well_formed_payment_is_routed_to_the_instrument_issuer_and_pays_the_acquirer_account(
    network, gateway_key, customer
) -> None:
    request = customer.request()
    checked = check_payment(request, "shop", network, gateway_key)
    assert checked.issuer.name == "alfa"
    assert checked.creditor_account == common_pb2.AccountRef(
        bank_code="BETAXX02", account_id="shop-sales"
    )
    assert checked.amount_minor == 9000
    assert "4000001234567899" not in repr(checked)


async def test_an_amount_other_than_the_order_total_is_refused(
    payment_gateway, store, issuer, customer
) -> None:
    request = customer.request(instruction_amount=8999)
    await assert_refused(payment_gateway, store, issuer, request, "AMOUNT_MISMATCH")


async def test_a_currency_other_than_the_order_currency_is_refused(
    payment_gateway, store, issuer, customer
) -> None:
    request = customer.request(instruction_currency="USD")
    await assert_refused(payment_gateway, store, issuer, request, "CURRENCY_MISMATCH")


async def test_an_instruction_carrying_another_digest_is_refused(
    payment_gateway, store, issuer, customer
) -> None:
    request = customer.request(instruction_digest=os.urandom(32))
    await assert_refused(payment_gateway, store, issuer, request, "ORDER_DIGEST_MISMATCH")


async def test_a_tampered_ciphertext_cannot_be_opened(
    payment_gateway, store, issuer, customer
) -> None:
    request = customer.request(tamper=True)
    await assert_refused(payment_gateway, store, issuer, request, "INSTRUCTION_UNREADABLE")


async def test_a_payment_sealed_for_another_orders_digest_cannot_be_opened(
    payment_gateway, store, issuer, customer
) -> None:
    other_digest = customer.order_digest("another-order")
    request = customer.request(sealed_for_digest=other_digest)
    await assert_refused(payment_gateway, store, issuer, request, "INSTRUCTION_UNREADABLE")


async def test_an_instrument_of_an_unknown_bank_code_is_refused(
    payment_gateway, store, issuer, customer
) -> None:
    request = customer.request(bank_code="ZZZZXX99")
    await assert_refused(payment_gateway, store, issuer, request, "UNKNOWN_BANK_CODE")


async def test_the_settlement_bank_is_not_an_issuer(
    payment_gateway, store, issuer, customer
) -> None:
    request = customer.request(bank_code="SETLXX00")
    await assert_refused(payment_gateway, store, issuer, request, "UNKNOWN_BANK_CODE")


async def test_a_payment_sealed_to_another_gateway_key_is_refused(
    payment_gateway, store, issuer, customer
) -> None:
    request = customer.request(key_id="0123456789abcdef")
    await assert_refused(payment_gateway, store, issuer, request, "UNKNOWN_GATEWAY_KEY")


async def test_an_instruction_for_another_order_is_refused(
    payment_gateway, store, issuer, customer
) -> None:
    request = customer.request(instruction_order_id="some-other-order")
    await assert_refused(payment_gateway, store, issuer, request, "ORDER_MISMATCH")


async def test_an_instruction_paying_another_merchant_is_refused(
    payment_gateway, store, issuer, customer
) -> None:
    request = customer.request(merchant="shop")
    await assert_refused(
        payment_gateway, store, issuer, request, "MERCHANT_MISMATCH", merchant="kiosk"
    )


async def test_electronic_cash_is_not_accepted_in_the_account_based_flow(
    payment_gateway, store, issuer, customer
) -> None:
    request = customer.request(kind=common_pb2.INSTRUMENT_KIND_ELECTRONIC_CASH)
    await assert_refused(payment_gateway, store, issuer, request, "INSTRUMENT_KIND_UNSUPPORTED")


@pytest.mark.parametrize("field", ["order_id", "amount", "order_digest", "sealed_instruction"])
async def test_a_request_missing_a_required_field_is_refused(
    payment_gateway, store, issuer, customer, field: str
) -> None:
    request = customer.request()
    if field == "sealed_instruction":
        request.payment.ClearField("sealed_instruction")
    elif field == "order_digest":
        request.order_digest = request.order_digest[:31]
    else:
        request.ClearField(field)
    await assert_refused(payment_gateway, store, issuer, request, "FIELD_INVALID")


async def test_an_instruction_with_a_short_nonce_is_refused(
    payment_gateway, store, issuer, customer
) -> None:
    request = customer.request(nonce=os.urandom(15))
    await assert_refused(payment_gateway, store, issuer, request, "INSTRUCTION_NONCE_INVALID")


async def test_an_instruction_without_its_creation_time_is_refused(
    payment_gateway, store, issuer, customer
) -> None:
    request = customer.request(timeless=True)
    await assert_refused(payment_gateway, store, issuer, request, "INSTRUCTION_TIME_MISSING")


@pytest.mark.parametrize(
    ("shift", "reason"),
    [(-301, "INSTRUCTION_EXPIRED"), (301, "INSTRUCTION_FROM_FUTURE")],
)
async def test_an_instruction_outside_its_window_is_refused(
    payment_gateway, store, issuer, customer, shift: int, reason: str
) -> None:
    request = customer.request(created_at=now() + dt.timedelta(seconds=shift))
    await assert_refused(payment_gateway, store, issuer, request, reason)


async def test_a_sealed_instruction_under_a_second_request_is_a_replay_and_writes_nothing(
    payment_gateway, store, issuer, customer
) -> None:
    request = customer.request()
    first = await payment_gateway.authorize(request, "shop")
    again = await payment_gateway.authorize(request, "shop")  # a retry of the same request
    assert again.transaction_id == first.transaction_id

    request.request_id = "authorize:someone-else"
    with pytest.raises(errors.AlreadyExists) as raised:
        await payment_gateway.authorize(request, "shop")
    assert raised.value.reason == "INSTRUCTION_REPLAYED"
    assert await transaction_count(store) == 1
    assert [name for name, *_ in issuer.calls] == ["AuthorizeHolds", "AuthorizeHolds"]


async def test_a_nonce_is_forgotten_once_its_window_has_passed(store) -> None:
    past = to_iso(now() - dt.timedelta(seconds=1))
    future = to_iso(now() + dt.timedelta(seconds=300))
    await store.transaction(lambda conn: claim_nonce(conn, b"a" * 16, "t-1", past))
    await store.transaction(lambda conn: claim_nonce(conn, b"b" * 16, "t-2", future))
    # "a" is past its window: it may be claimed again (its instruction is refused as expired).
    await store.transaction(lambda conn: claim_nonce(conn, b"a" * 16, "t-3", future))
    rows = await store.read(
        lambda conn: conn.execute(
            "SELECT nonce, transaction_id FROM instruction_nonce ORDER BY nonce"
        ).fetchall()
    )
    assert rows == [(b"a" * 16, "t-3"), (b"b" * 16, "t-2")]
