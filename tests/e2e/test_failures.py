"""Every failure path of the payment flow, with its status code and ErrorInfo reason.

Each test also checks that nothing was written where nothing should be: the
payer's balances and holds are unchanged.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from interbank.v1 import (
    authorization_pb2,
    authorization_pb2_grpc,
    order_pb2,
)

from customer.client import Customer, Instrument, PlacedOrder
from payment.errors import PaynetError
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

S = order_pb2.OrderStatus
PAID = (S.ORDER_STATUS_CAPTURED, S.ORDER_STATUS_SETTLED, S.ORDER_STATUS_DELIVERY_CONFIRMED)


async def refused(call) -> PaynetError:
    with pytest.raises(PaynetError) as err:
        await call
    return err.value


async def snapshot(customer: Customer) -> tuple[int, int, int]:
    balance = await customer.balance()
    return balance.booked.amount_minor, balance.available.amount_minor, balance.held.amount_minor


async def test_paying_an_unknown_order_is_not_found(net) -> None:
    async with Customer(net.network, "alice") as alice:
        placed = await alice.create_order("shop", [("book-001", 1)])
        payment = alice.seal_payment(placed, alice.instrument())
        ghost = order_pb2.Order()
        ghost.CopyFrom(placed.order)
        ghost.order_id = str(uuid.uuid4())
        error = await refused(alice.submit_payment(PlacedOrder(ghost, b"", ""), payment))
    assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")


async def test_paying_an_order_twice_is_refused_and_debits_once(net) -> None:
    async with Customer(net.network, "alice") as alice:
        placed = await alice.create_order("shop", [("book-001", 1)])
        order = await alice.submit_payment(placed, alice.seal_payment(placed, alice.instrument()))
        # The acquirer's credit notice may already have settled and delivered it.
        assert order.status in PAID
        before = await snapshot(alice)
        error = await refused(
            alice.submit_payment(placed, alice.seal_payment(placed, alice.instrument()))
        )
        assert (error.code, error.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "ORDER_ALREADY_PAID",
        )
        assert await snapshot(alice) == before


async def test_the_same_request_id_replays_the_payment_instead_of_paying_again(net) -> None:
    async with Customer(net.network, "alice") as alice:
        placed = await alice.create_order("shop", [("lamp-002", 1)])
        payment = alice.seal_payment(placed, alice.instrument())
        first = await alice.submit_payment(
            placed, payment, request_id="retry-1-" + placed.order.order_id
        )
        before = await snapshot(alice)
        again = await alice.submit_payment(
            placed, payment, request_id="retry-1-" + placed.order.order_id
        )
        assert again.order_id == first.order_id and again.status == first.status
        assert await snapshot(alice) == before
        other = alice.seal_payment(placed, alice.instrument(kind="account"))
        error = await refused(
            alice.submit_payment(placed, other, request_id="retry-1-" + placed.order.order_id)
        )
        assert error.reason == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize(
    ("tamper", "code", "reason"),
    [
        pytest.param(
            {"amount_minor": 1}, grpc.StatusCode.INVALID_ARGUMENT, "AMOUNT_MISMATCH", id="amount"
        ),
        pytest.param(
            {"currency_code": "USD"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "CURRENCY_MISMATCH",
            id="currency",
        ),
        pytest.param(
            {"signing_key": "other"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "DUAL_SIGNATURE_INVALID",
            id="signature-from-another-key",
        ),
    ],
)
async def test_a_wrong_instruction_is_refused_with_its_reason_and_moves_nothing(
    net, tamper, code, reason
) -> None:
    async with Customer(net.network, "alice") as alice:
        placed = await alice.create_order("shop", [("book-001", 1)])
        before = await snapshot(alice)
        if tamper.get("signing_key") == "other":
            tamper = {"signing_key": ed25519.Ed25519PrivateKey.generate()}
        payment = alice.seal_payment(placed, alice.instrument(), **tamper)
        error = await refused(alice.submit_payment(placed, payment))
        assert (error.code, error.reason) == (code, reason)
        assert await snapshot(alice) == before
        order = await alice.get_order("shop", placed.order.order_id)
        assert order.status == S.ORDER_STATUS_CREATED
        # The order can still be paid properly afterwards.
        paid = await alice.submit_payment(placed, alice.seal_payment(placed, alice.instrument()))
        assert paid.status in PAID


async def test_tampered_ciphertext_is_unreadable(net) -> None:
    async with Customer(net.network, "alice") as alice:
        placed = await alice.create_order("shop", [("book-001", 1)])
        payment = alice.seal_payment(placed, alice.instrument())
        sealed = bytearray(payment.sealed_instruction)
        sealed[-5] ^= 0x01
        payment.sealed_instruction = bytes(sealed)
        error = await refused(alice.submit_payment(placed, payment))
    assert (error.code, error.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INSTRUCTION_UNREADABLE",
    )


async def test_an_instruction_sealed_for_another_order_is_unreadable(net) -> None:
    async with Customer(net.network, "alice") as alice:
        first = await alice.create_order("shop", [("book-001", 1)])
        second = await alice.create_order("shop", [("book-001", 1)])
        payment = alice.seal_payment(first, alice.instrument())
        error = await refused(alice.submit_payment(second, payment))
    assert error.reason == "INSTRUCTION_UNREADABLE"


async def test_an_unknown_bank_code_is_refused(net) -> None:
    async with Customer(net.network, "alice") as alice:
        placed = await alice.create_order("shop", [("book-001", 1)])
        card = alice.instrument()
        wrong = Instrument(card.kind, "NOPEXX99", card.number)
        error = await refused(alice.submit_payment(placed, alice.seal_payment(placed, wrong)))
    assert (error.code, error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_BANK_CODE")


async def test_insufficient_funds_is_declined_and_places_no_hold(net) -> None:
    async with Customer(net.network, "bob") as bob:
        before = await snapshot(bob)
        placed = await bob.create_order("shop", [("bike-003", 2)])
        error = await refused(
            bob.submit_payment(placed, bob.seal_payment(placed, bob.instrument()))
        )
        assert (error.code, error.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "INSUFFICIENT_FUNDS",
        )
        assert await snapshot(bob) == before


async def test_three_wrong_codes_lock_the_challenge_decline_and_release_the_hold(net) -> None:
    async with Customer(net.network, "alice") as alice:
        before = await snapshot(alice)
        placed = await alice.create_order("shop", [("bike-003", 1)])
        order = await alice.submit_payment(placed, alice.seal_payment(placed, alice.instrument()))
        assert order.status == S.ORDER_STATUS_CHALLENGE_REQUIRED
        challenge_id = order.challenge.challenge_id
        code = await alice.read_one_time_code(challenge_id)
        held = await snapshot(alice)
        assert held[2] == before[2] + 72000 and held[1] == before[1] - 72000
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        reasons = []
        for _ in range(3):
            reasons.append((await refused(alice.answer_challenge(challenge_id, wrong))).reason)
        assert reasons == ["CHALLENGE_CODE_WRONG", "CHALLENGE_CODE_WRONG", "CHALLENGE_LOCKED"]
        assert await snapshot(alice) == before
        late = await refused(alice.answer_challenge(challenge_id, code))
        assert late.reason == "CHALLENGE_LOCKED"
        error = await refused(alice.complete_payment("shop", placed.order.order_id))
        assert error.reason == "CHALLENGE_LOCKED"
        order = await alice.get_order("shop", placed.order.order_id)
        assert order.status == S.ORDER_STATUS_FAILED
        assert order.failure_reason == "CHALLENGE_LOCKED"


async def test_a_customer_cannot_answer_another_customers_challenge(net) -> None:
    async with Customer(net.network, "alice") as alice, Customer(net.network, "bob") as bob:
        placed = await alice.create_order("shop", [("bike-003", 1)])
        order = await alice.submit_payment(placed, alice.seal_payment(placed, alice.instrument()))
        error = await refused(bob.answer_challenge(order.challenge.challenge_id, "000000"))
        assert error.reason in ("CHALLENGE_NOT_FOUND", "ROLE_NOT_ALLOWED")


async def test_a_customer_cannot_read_another_customers_balance(net) -> None:
    async with Customer(net.network, "alice") as alice:
        error = await refused(alice.balance("bob-current"))
    assert (error.code, error.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ACCOUNT_NOT_HELD_BY_CALLER",
    )


async def test_a_merchant_calling_an_issuer_only_rpc_is_permission_denied(net) -> None:
    pki = Pki(net.network.pki_dir)
    alfa = net.network.node("alfa")
    async with secure_channel(alfa.address, TlsIdentity.load(pki, "shop")) as channel:
        stub = authorization_pb2_grpc.IssuerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.CaptureHold(
                authorization_pb2.CaptureHoldRequest(request_id="x", hold_id="h"), timeout=5
            )
    from payment.errors import error_info

    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error_info(err.value).reason == "ROLE_NOT_ALLOWED"


async def test_an_expired_code_is_refused_and_the_payment_declined(short_lived_net) -> None:
    async with Customer(short_lived_net.network, "alice") as alice:
        before = await snapshot(alice)
        placed = await alice.create_order("shop", [("bike-003", 1)])
        order = await alice.submit_payment(placed, alice.seal_payment(placed, alice.instrument()))
        code = await alice.read_one_time_code(order.challenge.challenge_id)
        await asyncio.sleep(1.5)
        error = await refused(alice.answer_challenge(order.challenge.challenge_id, code))
        assert (error.code, error.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "CHALLENGE_EXPIRED",
        )
        assert await snapshot(alice) == before


async def test_a_hold_that_expires_unposted_releases_the_funds(short_lived_net) -> None:
    async with Customer(short_lived_net.network, "bob") as bob:
        before = await snapshot(bob)
        placed = await bob.create_order("shop", [("bike-003", 1)])
        order = await bob.submit_payment(placed, bob.seal_payment(placed, bob.instrument()))
        assert order.status == S.ORDER_STATUS_CHALLENGE_REQUIRED
        assert (await snapshot(bob))[2] == 72000
        for _ in range(50):
            await asyncio.sleep(0.2)
            if await snapshot(bob) == before:
                break
        assert await snapshot(bob) == before
        error = await refused(bob.complete_payment("shop", placed.order.order_id))
        assert error.reason == "HOLD_EXPIRED"
