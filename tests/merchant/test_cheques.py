"""The merchant's side of electronic cheques, over a real network on mTLS.

SubmitCheque: the payee's offline checks of docs/cheque.md section 6 (each
refusal leaves the order as it was), the endorsement and the deposit at the
shop's bank (beta), the order settled or failed by the acquirer's answer or
its ChequeNotice, retries by request_id, a refused deposit, a deposit whose
answer is lost, and a refund the merchant does not make for cheques yet.

alice banks at alfa (her cheques clear through the settlement bank), bob at
beta, the shop's own bank (his are decided at deposit). The last tests apply
the acquirer's ChequeNotices to the shop's own store, as its settlement
listener receives them, and run its resolver there (the conftest's fixtures).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from interbank.v1 import (
    account_pb2,
    account_pb2_grpc,
    cheque_pb2,
    cheque_pb2_grpc,
    notification_pb2,
    order_pb2,
)
from interbank.v1 import order_pb2_grpc as order_grpc

from customer.client import Customer
from merchant import orders
from merchant.cheque_deposits import DEPOSITING, ChequePayment, apply_deposit, insert_cheque_payment
from merchant.settlement_listener import Outcome
from ops.audit import audit_network
from ops.launcher import wait_until_serving
from ops.reconcile import reconcile, render_table
from payment import cheque
from payment.cheque_trust import ChequeKeys
from payment.clock import now_iso
from payment.envelope import load_ed25519_private
from payment.errors import error_info
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel
from tests.support import RunningNetwork, launch_node, start_network, stop
from tests.support.cheques import Book, issue_book, write

S = order_pb2.OrderStatus
SHOP = "shop"
BOOK_PRICE = 4500
WAIT_S = 20.0


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The dev network, shared by this module's tests."""
    running = start_network(tmp_path_factory.mktemp("merchant-cheques"))
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


# -- writing cheques ------------------------------------------------------------------------


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _test_book(
    net: RunningNetwork,
    customer: str,
    *,
    key_id: str | None = None,
    bank_key: ed25519.Ed25519PrivateKey | None = None,
) -> Book:
    """A cheque book certified in-test with the bank's published cheque-signing key (or
    another key, or another key id): good enough for the payee's checks, which never ask
    the bank; the bank itself never issued it."""
    network = net.network
    bank = network.node(network.customer(customer).bank)
    assert bank.bank_code is not None
    published_id, signing = ChequeKeys(network).signing_key(bank.name)
    holder = load_ed25519_private(Pki(network.pki_dir).signing_key(customer).read_bytes())
    certificate = cheque.AccountCertificate(
        bank_code=bank.bank_code,
        bank_key_id=key_id or published_id,
        account_reference=os.urandom(16),
        holder_public_key=holder.public_key().public_bytes_raw(),
        first_serial=1,
        last_serial=100,
        not_before=_today() - dt.timedelta(days=400),
        not_after=_today() + dt.timedelta(days=400),
    )
    return Book(
        customer,
        bank.bank_code,
        certificate.account_reference,
        1,
        100,
        cheque.sign(bank_key or signing, certificate),
    )


def _cheque_for(net: RunningNetwork, book: Book, order: order_pb2.Order, **change: Any) -> bytes:
    """A cheque from book paying exactly order, with fields changed as given."""
    fields: dict[str, Any] = {
        "serial": book.first_serial,
        "payee": order.merchant_name,
        "amount_minor": order.total.amount_minor,
        "order_id": order.order_id,
        "memo": "paid by cheque",
        **change,
    }
    serial = fields.pop("serial")
    assert isinstance(serial, int)
    return write(net.network, book, serial, **fields)


def _altered(signed_cheque: bytes) -> bytes:
    """The cheque with one byte of its memo changed after signing (still well-formed)."""
    at = len(signed_cheque) - cheque.SIGNATURE_BYTES - 1
    return signed_cheque[:at] + bytes([signed_cheque[at] ^ 0x01]) + signed_cheque[at + 1 :]


# -- calling the shop -----------------------------------------------------------------------


async def _order(customer: Customer, *lines: tuple[str, int]) -> order_pb2.Order:
    placed = await customer.create_order(SHOP, list(lines) or [("book-001", 1)])
    return placed.order


async def _submit(
    customer: Customer,
    order_id: str,
    signed_cheque: bytes,
    signed_certificate: bytes,
    request_id: str | None = None,
) -> order_pb2.Order:
    stub = order_grpc.OrderServiceStub(customer.channel(SHOP))
    reply = await stub.SubmitCheque(
        order_pb2.SubmitChequeRequest(
            request_id=request_id or str(uuid.uuid4()),
            order_id=order_id,
            signed_cheque=signed_cheque,
            signed_certificate=signed_certificate,
        ),
        timeout=WAIT_S,
    )
    assert isinstance(reply, order_pb2.SubmitChequeResponse)
    return reply.order


async def _refused(
    customer: Customer, order_id: str, signed_cheque: bytes, signed_certificate: bytes
) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _submit(customer, order_id, signed_cheque, signed_certificate)
    info = error_info(err.value)
    assert info is not None, err.value
    return err.value.code(), info.reason


async def _settled_or_failed(customer: Customer, order_id: str) -> order_pb2.Order:
    return await customer.wait_for_order(
        SHOP, order_id, S.ORDER_STATUS_DELIVERY_CONFIRMED, WAIT_S, or_else=(S.ORDER_STATUS_FAILED,)
    )


async def _booked(net: RunningNetwork, holder: str) -> int:
    network = net.network
    try:
        config = network.customer(holder)
        bank, account_id = config.bank, config.account_id
    except KeyError:
        merchant = network.merchant(holder)
        bank, account_id = merchant.bank, merchant.account_id
    identity = TlsIdentity.load(Pki(network.pki_dir), holder)
    async with secure_channel(network.node(bank).address, identity) as channel:
        reply = await account_pb2_grpc.AccountServiceStub(channel).GetBalance(
            account_pb2.GetBalanceRequest(account_id=account_id)
        )
    assert isinstance(reply, account_pb2.GetBalanceResponse)
    return reply.booked.amount_minor


# -- the payee's checks: nothing moves ------------------------------------------------------

_STALE_DAYS = 180  # [limits] cheque_stale_days of the dev network (the default)

REFUSALS: dict[str, dict[str, Any]] = {
    "PAYEE_MISMATCH": {"payee": "another-shop"},
    "AMOUNT_MISMATCH": {"amount_minor": BOOK_PRICE + 1},
    "ORDER_REFERENCE_MISMATCH": {"order_id": str(uuid.uuid4())},
    "POST_DATED": {"date": _today() + dt.timedelta(days=1)},
    "STALE_DATED": {"date": _today() - dt.timedelta(days=_STALE_DAYS + 1)},
}


@pytest.mark.parametrize("reason", sorted(REFUSALS))
async def test_a_cheque_failing_a_payee_check_is_refused_with_the_order_unchanged(
    net: RunningNetwork, reason: str
) -> None:
    assert net.network.limits.cheque_stale_days == _STALE_DAYS
    async with Customer(net.network, "alice") as alice:
        order = await _order(alice)
        book = _test_book(net, "alice")
        signed = _cheque_for(net, book, order, **REFUSALS[reason])
        code, got = await _refused(alice, order.order_id, signed, book.signed_certificate)
        assert (code, got) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
        assert await alice.get_order(SHOP, order.order_id) == order


async def test_a_cheque_altered_after_signing_is_refused_signature_invalid(
    net: RunningNetwork,
) -> None:
    async with Customer(net.network, "alice") as alice:
        order = await _order(alice)
        book = _test_book(net, "alice")
        signed = _altered(_cheque_for(net, book, order))
        code, reason = await _refused(alice, order.order_id, signed, book.signed_certificate)
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "SIGNATURE_INVALID")
        assert await alice.get_order(SHOP, order.order_id) == order


async def test_a_certificate_not_signed_by_the_drawee_is_refused_signature_invalid(
    net: RunningNetwork,
) -> None:
    async with Customer(net.network, "alice") as alice:
        order = await _order(alice)
        book = _test_book(net, "alice", bank_key=ed25519.Ed25519PrivateKey.generate())
        signed = _cheque_for(net, book, order)
        code, reason = await _refused(alice, order.order_id, signed, book.signed_certificate)
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "SIGNATURE_INVALID")
        assert await alice.get_order(SHOP, order.order_id) == order


async def test_a_certificate_under_a_key_the_drawee_never_published_is_drawee_key_unknown(
    net: RunningNetwork,
) -> None:
    async with Customer(net.network, "alice") as alice:
        order = await _order(alice)
        book = _test_book(
            net,
            "alice",
            key_id="ALFAXX01-9999",
            bank_key=ed25519.Ed25519PrivateKey.generate(),
        )
        signed = _cheque_for(net, book, order)
        code, reason = await _refused(alice, order.order_id, signed, book.signed_certificate)
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "DRAWEE_KEY_UNKNOWN")
        assert await alice.get_order(SHOP, order.order_id) == order


@pytest.mark.parametrize("field", ["signed_cheque", "signed_certificate"])
async def test_a_document_that_does_not_parse_is_field_invalid_naming_it(
    net: RunningNetwork, field: str
) -> None:
    async with Customer(net.network, "alice") as alice:
        order = await _order(alice)
        book = _test_book(net, "alice")
        documents = {
            "signed_cheque": _cheque_for(net, book, order),
            "signed_certificate": book.signed_certificate,
        }
        documents[field] = documents[field] + b"\x00"  # a byte after the signature
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _submit(
                alice, order.order_id, documents["signed_cheque"], documents["signed_certificate"]
            )
        info = error_info(err.value)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info is not None and info.reason == "FIELD_INVALID"
        assert info.metadata["field"] == field
        assert await alice.get_order(SHOP, order.order_id) == order


async def test_an_order_that_is_not_created_is_not_payable_and_anothers_is_not_found(
    net: RunningNetwork,
) -> None:
    async with Customer(net.network, "alice") as alice, Customer(net.network, "bob") as bob:
        order = await _order(alice)
        book = _test_book(net, "alice")
        signed = _cheque_for(net, book, order)
        stub = order_grpc.OrderServiceStub(alice.channel(SHOP))
        await stub.CancelOrder(
            order_pb2.CancelOrderRequest(request_id=str(uuid.uuid4()), order_id=order.order_id)
        )
        code, reason = await _refused(alice, order.order_id, signed, book.signed_certificate)
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ORDER_NOT_PAYABLE")
        other = await _order(alice)
        code, reason = await _refused(
            bob, other.order_id, _cheque_for(net, book, other), book.signed_certificate
        )
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")


# -- deposits at the shop's bank ------------------------------------------------------------


async def test_a_cheque_on_another_bank_is_deposited_pending_then_settled_and_delivered(
    net: RunningNetwork,
) -> None:
    network = net.network
    async with Customer(network, "alice") as alice:
        order = await _order(alice, ("book-001", 2), ("lamp-002", 1))
        total = order.total.amount_minor
        book = await issue_book(network, "alice")
        signed = _cheque_for(net, book, order)
        before = (await _booked(net, "alice"), await _booked(net, SHOP))
        request_id = str(uuid.uuid4())
        pending = await _submit(alice, order.order_id, signed, book.signed_certificate, request_id)
        assert pending.status in (S.ORDER_STATUS_PAYMENT_PENDING, S.ORDER_STATUS_DELIVERY_CONFIRMED)
        delivered = await _settled_or_failed(alice, order.order_id)
        assert delivered.status == S.ORDER_STATUS_DELIVERY_CONFIRMED, delivered
        assert delivered.delivery.tracking_reference.startswith("TRK-")
        assert (await _booked(net, "alice"), await _booked(net, SHOP)) == (
            before[0] - total,
            before[1] + total,
        )
        # The same request again answers the order as it is now; the cheque is not paid twice.
        again = await _submit(alice, order.order_id, signed, book.signed_certificate, request_id)
        assert again.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
        # The same cheque under another request_id: the order as it is, nothing deposited again.
        other = await _submit(alice, order.order_id, signed, book.signed_certificate)
        assert other.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
        assert (await _booked(net, "alice"), await _booked(net, SHOP)) == (
            before[0] - total,
            before[1] + total,
        )
        # The same request_id for another cheque is a reused key.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _submit(
                alice,
                order.order_id,
                _cheque_for(net, book, order, serial=book.first_serial + 1),
                book.signed_certificate,
                request_id,
            )
        info = error_info(err.value)
        assert info is not None and info.reason == "IDEMPOTENCY_KEY_REUSED"


async def test_a_cheque_on_the_shops_own_bank_is_decided_in_the_deposits_answer(
    net: RunningNetwork,
) -> None:
    network = net.network
    async with Customer(network, "bob") as bob:
        order = await _order(bob)
        book = await issue_book(network, "bob")
        answered = await _submit(
            bob, order.order_id, _cheque_for(net, book, order), book.signed_certificate
        )
        assert answered.status == S.ORDER_STATUS_DELIVERY_CONFIRMED, answered


async def test_a_returned_cheque_fails_its_order_with_the_return_reason(
    net: RunningNetwork,
) -> None:
    network = net.network
    async with Customer(network, "alice") as alice, Customer(network, "bob") as bob:
        # Through clearing: alice stops her cheque before the shop deposits it.
        order = await _order(alice)
        book = await issue_book(network, "alice")
        signed = _cheque_for(net, book, order)
        async with secure_channel(
            network.node("alfa").address, TlsIdentity.load(Pki(network.pki_dir), "alice")
        ) as channel:
            await cheque_pb2_grpc.ChequeServiceStub(channel).StopCheque(
                cheque_pb2.StopChequeRequest(
                    request_id=str(uuid.uuid4()),
                    account_reference=book.account_reference,
                    serial=book.first_serial,
                )
            )
        await _submit(alice, order.order_id, signed, book.signed_certificate)
        failed = await _settled_or_failed(alice, order.order_id)
        assert (failed.status, failed.failure_reason) == (S.ORDER_STATUS_FAILED, "PAYMENT_STOPPED")
        # On the shop's own bank, in the deposit's answer: more than bob has.
        big = await _order(bob, ("bike-003", 2))
        assert big.total.amount_minor > await _booked(net, "bob")
        bob_book = await issue_book(network, "bob")
        answered = await _submit(
            bob, big.order_id, _cheque_for(net, bob_book, big), bob_book.signed_certificate
        )
        assert (answered.status, answered.failure_reason) == (
            S.ORDER_STATUS_FAILED,
            "INSUFFICIENT_FUNDS",
        )


async def test_a_cheque_dated_on_the_stale_periods_last_day_is_taken_and_the_drawee_decides(
    net: RunningNetwork,
) -> None:
    # The payee's checks pass (the shop endorses and deposits); the drawee, which never
    # issued this in-test book, returns it, and the order fails with its reason.
    async with Customer(net.network, "alice") as alice:
        order = await _order(alice)
        book = _test_book(net, "alice")
        last_day = _today() - dt.timedelta(days=_STALE_DAYS)
        signed = _cheque_for(net, book, order, date=last_day)
        taken = await _submit(alice, order.order_id, signed, book.signed_certificate)
        assert taken.status in (S.ORDER_STATUS_PAYMENT_PENDING, S.ORDER_STATUS_FAILED)
        failed = await _settled_or_failed(alice, order.order_id)
        assert (failed.status, failed.failure_reason) == (
            S.ORDER_STATUS_FAILED,
            "SIGNATURE_INVALID",
        )


async def test_a_cheque_paid_order_is_not_refunded_yet(net: RunningNetwork) -> None:
    network = net.network
    async with Customer(network, "bob") as bob:
        order = await _order(bob)
        book = await issue_book(network, "bob")
        await _submit(bob, order.order_id, _cheque_for(net, book, order), book.signed_certificate)
    identity = TlsIdentity.load(Pki(network.pki_dir), SHOP)
    async with secure_channel(network.node(SHOP).address, identity) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await order_grpc.BackOfficeServiceStub(channel).RefundOrder(
                order_pb2.RefundOrderRequest(request_id=str(uuid.uuid4()), order_id=order.order_id)
            )
    info = error_info(err.value)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info is not None and info.reason == "REFUND_NOT_SUPPORTED"


async def test_a_deposit_the_acquirer_refuses_is_relayed_and_the_order_can_be_paid_again(
    net: RunningNetwork,
) -> None:
    # The acquirer reads the shop's published key on each deposit: without it, the shop's
    # endorsement cannot be verified there, which the shop cannot know offline.
    network = net.network
    published = Pki(network.pki_dir).signing_public_key(SHOP)
    hidden = published.with_name("signing.pub.hidden")
    async with Customer(network, "alice") as alice:
        order = await _order(alice)
        book = await issue_book(network, "alice")
        signed = _cheque_for(net, book, order)
        request_id = str(uuid.uuid4())
        published.rename(hidden)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _submit(alice, order.order_id, signed, book.signed_certificate, request_id)
        finally:
            hidden.rename(published)
        info = error_info(err.value)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info is not None and info.reason == "ENDORSEMENT_INVALID"
        reopened = await alice.get_order(SHOP, order.order_id)
        assert (reopened.status, reopened.failure_reason) == (
            S.ORDER_STATUS_CREATED,
            "ENDORSEMENT_INVALID",
        )
        # A refusal is not kept: the same request, once the key is back, deposits the cheque.
        await _submit(alice, order.order_id, signed, book.signed_certificate, request_id)
        delivered = await _settled_or_failed(alice, order.order_id)
        assert delivered.status == S.ORDER_STATUS_DELIVERY_CONFIRMED


async def test_a_deposit_whose_answer_is_lost_stays_pending_and_a_retry_deposits_it_once(
    net: RunningNetwork,
) -> None:
    network = net.network
    beta = network.node("beta")
    async with Customer(network, "alice") as alice:
        order = await _order(alice)
        book = await issue_book(network, "alice")
        signed = _cheque_for(net, book, order)
        before = (await _booked(net, "alice"), await _booked(net, SHOP))
        request_id = str(uuid.uuid4())
        stop({"beta": net.procs["beta"]})
        try:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _submit(alice, order.order_id, signed, book.signed_certificate, request_id)
            info = error_info(err.value)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert info is not None and info.reason == "PAYMENT_OUTCOME_UNKNOWN"
            pending = await alice.get_order(SHOP, order.order_id)
            assert pending.status == S.ORDER_STATUS_PAYMENT_PENDING
        finally:
            net.procs["beta"] = launch_node(net.path, beta, net.workdir)
            await wait_until_serving(dataclasses.replace(network, nodes=(beta,)), 30.0, net.dead)
        # The customer retries the same request until the shop reaches its bank again (its
        # channel backs off after the failure).
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while True:
            try:
                await _submit(alice, order.order_id, signed, book.signed_certificate, request_id)
                break
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                assert asyncio.get_running_loop().time() < deadline, "beta is not reachable"
                await asyncio.sleep(0.2)
        delivered = await _settled_or_failed(alice, order.order_id)
        assert delivered.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
        assert (await _booked(net, "alice"), await _booked(net, SHOP)) == (
            before[0] - order.total.amount_minor,
            before[1] + order.total.amount_minor,
        )


# -- the acquirer's notices and the resolver, on the shop's own store -----------------------
# (the conftest's store, storefront and listener: no network; the notices are applied as
# the listener receives them from the acquirer's stream)


async def _taken_by_cheque(shopper: Any, store: Any, *, serial: int = 7) -> order_pb2.Order:
    """An order PAYMENT_PENDING on a recorded cheque deposit (as SubmitCheque leaves it)."""
    order = await shopper.order()
    payment = ChequePayment(
        order_id=order.order_id,
        deposit_request_id=f"deposit:{order.order_id}:r-1",
        cheque_digest=bytes(32),
        signed_cheque=b"cheque",
        signed_certificate=b"certificate",
        signed_endorsement=b"endorsement",
        drawee_bank_code="ALFAXX01",
        serial=serial,
        deposit_id="",
        state=DEPOSITING,
        return_reason="",
        submitted_at=now_iso(),
    )

    def take(conn: Any) -> order_pb2.Order:
        record = orders.load_order(conn, order.order_id)
        assert record is not None
        pending = orders.transition(conn, "paynet.test", record, orders.PAYMENT_PENDING)
        insert_cheque_payment(conn, payment)
        return pending.order

    taken: order_pb2.Order = await store.transaction(take)
    return taken


def _cheque_notice(
    order: order_pb2.Order,
    state: int,
    *,
    deposit_id: str = "deposit-1",
    reason: str = "",
    event_id: str | None = None,
    serial: int = 7,
) -> notification_pb2.SubscribeResponse:
    return notification_pb2.SubscribeResponse(
        sequence=1,
        event_id=event_id or str(uuid.uuid4()),
        cheque=notification_pb2.ChequeNotice(
            deposit=cheque_pb2.ChequeDeposit(
                deposit_id=deposit_id,
                drawee_bank_code="ALFAXX01",
                serial=serial,
                amount=order.total,
                order_id=order.order_id,
                state=state,  # type: ignore[arg-type]
                return_reason=reason,
            )
        ),
    )


async def test_a_paid_notice_settles_and_delivers_once_and_a_redelivery_changes_nothing(
    shopper: Any, store: Any, storefront: Any, listener: Any
) -> None:
    order = await _taken_by_cheque(shopper, store)
    paid = _cheque_notice(order, cheque_pb2.CHEQUE_STATE_PAID)
    assert await listener.apply(paid) is Outcome.SETTLED
    assert await listener.apply(paid) is Outcome.DUPLICATE
    again = _cheque_notice(order, cheque_pb2.CHEQUE_STATE_PAID)  # another event, same decision
    assert await listener.apply(again) is Outcome.DUPLICATE
    delivered = await storefront.get_order("alice", order.order_id)
    assert delivered.status == S.ORDER_STATUS_DELIVERY_CONFIRMED


async def test_a_returned_notice_fails_the_order_with_the_return_reason(
    shopper: Any, store: Any, storefront: Any, listener: Any
) -> None:
    order = await _taken_by_cheque(shopper, store)
    returned = _cheque_notice(order, cheque_pb2.CHEQUE_STATE_RETURNED, reason="ACCOUNT_CLOSED")
    assert await listener.apply(returned) is Outcome.RETURNED
    failed = await storefront.get_order("alice", order.order_id)
    assert (failed.status, failed.failure_reason) == (S.ORDER_STATUS_FAILED, "ACCOUNT_CLOSED")
    paid = _cheque_notice(order, cheque_pb2.CHEQUE_STATE_PAID)
    assert await listener.apply(paid) is Outcome.DUPLICATE


async def test_a_notice_of_another_deposit_or_cheque_for_the_order_moves_nothing(
    shopper: Any, store: Any, storefront: Any, listener: Any
) -> None:
    order = await _taken_by_cheque(shopper, store)
    answered = _cheque_notice(order, cheque_pb2.CHEQUE_STATE_IN_CLEARING, deposit_id="d-1")
    await store.transaction(
        lambda conn: apply_deposit(conn, "paynet.test", answered.cheque.deposit)
    )
    other_deposit = _cheque_notice(order, cheque_pb2.CHEQUE_STATE_PAID, deposit_id="d-2")
    assert await listener.apply(other_deposit) is Outcome.SKIPPED
    other_serial = _cheque_notice(order, cheque_pb2.CHEQUE_STATE_PAID, deposit_id="d-1", serial=8)
    assert await listener.apply(other_serial) is Outcome.SKIPPED
    assert (await storefront.get_order("alice", order.order_id)).status == (
        S.ORDER_STATUS_PAYMENT_PENDING
    )
    paid = _cheque_notice(order, cheque_pb2.CHEQUE_STATE_PAID, deposit_id="d-1")
    assert await listener.apply(paid) is Outcome.SETTLED


async def test_the_credit_entry_of_a_paid_cheque_is_left_to_its_cheque_notice(
    shopper: Any, store: Any, storefront: Any, listener: Any, notice: Any
) -> None:
    order = await _taken_by_cheque(shopper, store)
    assert await listener.apply(notice(order)) is Outcome.IGNORED
    assert (await storefront.get_order("alice", order.order_id)).status == (
        S.ORDER_STATUS_PAYMENT_PENDING
    )


async def test_the_resolver_leaves_a_pending_cheque_to_its_deposit_not_to_the_gateway(
    shopper: Any, store: Any, storefront: Any, gateway: Any
) -> None:
    order = await _taken_by_cheque(shopper, store)
    # No cheque desk in this storefront: the deposit is not sent again, and the gateway,
    # which never saw the cheque, is not asked about it.
    assert await storefront.resolve_pending(not_received_after_s=0, older_than_s=0) == 0
    assert gateway.methods() == []
    assert (await storefront.get_order("alice", order.order_id)).status == (
        S.ORDER_STATUS_PAYMENT_PENDING
    )


async def test_every_cheque_order_above_reconciles_and_the_network_audits(
    net: RunningNetwork,
) -> None:
    """Paid, returned, refused and retried cheque orders: each order matches its deposit,
    the drawee's paid serial and the settlement bank's presentment; money is whole."""
    report = await asyncio.to_thread(reconcile, net.network)
    assert report.ok, render_table(report)
    audit = await audit_network(net.network)
    assert audit.ok, audit.to_json()
    assert audit.to_json()["checks"]["cheques_cleared"]["paid_out"] > 0
