"""Cheque clearing between real banks over mTLS: deposit, provisional credit, the cash
letter through the settlement bank, and every return reason, at the bank level (the
merchant deposits directly with its own certificate; its storefront is tested apart).

alice and carol bank at alfa, bob and the shop at beta: alice's cheques to the shop
clear through the settlement bank, bob's are drawn on the shop's own bank.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import uuid
from collections.abc import Iterator

import grpc
import pytest
from interbank.v1 import (
    account_pb2,
    account_pb2_grpc,
    cheque_pb2,
    cheque_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
)

from ops.audit import audit_network
from ops.launcher import wait_until_serving
from payment import cheque
from payment.clock import TIME_TRAVEL_ENV
from payment.errors import error_info
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel
from tests.e2e.conftest import RunningNetwork, launch_node, start_network, stop
from tests.support.cheques import Book, deposit, endorse, issue_book, wait_decided, write

STATE = cheque_pb2.ChequeState


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = start_network(
        tmp_path_factory.mktemp("cheques"), buyers=("carol",), net_debit_cap_minor=10**12
    )
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


def _balance(net: RunningNetwork, holder: str) -> account_pb2.GetBalanceResponse:
    network = net.network
    try:
        config = network.customer(holder)
        bank, account_id = config.bank, config.account_id
    except KeyError:
        merchant = network.merchant(holder)
        bank, account_id = merchant.bank, merchant.account_id

    async def ask() -> account_pb2.GetBalanceResponse:
        identity = TlsIdentity.load(Pki(network.pki_dir), holder)
        async with secure_channel(network.node(bank).address, identity) as channel:
            return await account_pb2_grpc.AccountServiceStub(channel).GetBalance(
                account_pb2.GetBalanceRequest(account_id=account_id)
            )

    return asyncio.run(ask())


def _booked(net: RunningNetwork, holder: str) -> int:
    return _balance(net, holder).booked.amount_minor


def _clear(net: RunningNetwork, book: Book, signed: bytes) -> cheque_pb2.ChequeDeposit:
    """Deposit a cheque at the shop's bank and wait for the drawee's answer."""
    network = net.network
    request_id = str(uuid.uuid4())
    endorsement = endorse(network, signed, "shop", "BETAXX02")
    return asyncio.run(wait_decided(network, "shop", signed, book, request_id, endorsement))


def test_a_cheque_on_another_bank_is_paid_after_a_provisional_credit(net: RunningNetwork) -> None:
    network = net.network
    book = asyncio.run(issue_book(network, "alice"))
    alice, shop = _booked(net, "alice"), _booked(net, "shop")
    signed = write(
        network, book, book.first_serial, payee="shop", amount_minor=4500, order_id="o-1"
    )
    first = asyncio.run(deposit(network, "shop", signed, book, request_id="d-1"))
    assert first.deposit.state in (STATE.CHEQUE_STATE_IN_CLEARING, STATE.CHEQUE_STATE_PAID)
    if first.deposit.state == STATE.CHEQUE_STATE_IN_CLEARING:
        # The provisional credit: uncollected, in neither booked nor available (the cash
        # letter may already have been answered by the time the balance is read).
        balance = _balance(net, "shop")
        assert (balance.booked.amount_minor, balance.uncollected.amount_minor) in (
            (shop, 4500),
            (shop + 4500, 0),
        )
        assert balance.available.amount_minor == balance.booked.amount_minor
    decided = asyncio.run(
        wait_decided(
            network, "shop", signed, book, "d-1", endorse(network, signed, "shop", "BETAXX02")
        )
    )
    assert decided.state == STATE.CHEQUE_STATE_PAID, decided
    assert (decided.serial, decided.amount.amount_minor, decided.order_id) == (
        book.first_serial,
        4500,
        "o-1",
    )
    assert _booked(net, "alice") == alice - 4500
    after = _balance(net, "shop")
    assert (after.booked.amount_minor, after.available.amount_minor) == (shop + 4500, shop + 4500)
    assert after.uncollected.amount_minor == 0


def test_a_cheque_drawn_on_the_acquirer_itself_is_decided_at_deposit(net: RunningNetwork) -> None:
    network = net.network
    book = asyncio.run(issue_book(network, "bob"))
    bob, shop = _booked(net, "bob"), _booked(net, "shop")
    signed = write(
        network, book, book.first_serial, payee="shop", amount_minor=1200, order_id="o-2"
    )
    response = asyncio.run(deposit(network, "shop", signed, book))
    assert response.deposit.state == STATE.CHEQUE_STATE_PAID
    assert (_booked(net, "bob"), _booked(net, "shop")) == (bob - 1200, shop + 1200)


def _returned(net: RunningNetwork, book: Book, signed: bytes, reason: str) -> None:
    drawer, shop = _booked(net, book.customer), _booked(net, "shop")
    decided = _clear(net, book, signed)
    assert decided.state == STATE.CHEQUE_STATE_RETURNED, decided
    assert decided.return_reason == reason
    # The provisional credit was reversed and nobody's money moved.
    assert (_booked(net, book.customer), _booked(net, "shop")) == (drawer, shop)
    assert _balance(net, "shop").available.amount_minor == shop


def test_a_cheque_over_the_drawers_funds_is_returned_insufficient_funds(
    net: RunningNetwork,
) -> None:
    network = net.network
    book = asyncio.run(issue_book(network, "alice"))
    too_much = _booked(net, "alice") + 1
    signed = write(
        network, book, book.first_serial, payee="shop", amount_minor=too_much, order_id="o-3"
    )
    _returned(net, book, signed, "INSUFFICIENT_FUNDS")


def test_a_stopped_cheque_is_returned_payment_stopped(net: RunningNetwork) -> None:
    network = net.network
    book = asyncio.run(issue_book(network, "alice"))
    serial = book.first_serial + 1
    signed = write(network, book, serial, payee="shop", amount_minor=700, order_id="o-4")

    async def stop_it() -> cheque_pb2.StopChequeResponse:
        identity = TlsIdentity.load(Pki(network.pki_dir), "alice")
        async with secure_channel(network.node("alfa").address, identity) as channel:
            return await cheque_pb2_grpc.ChequeServiceStub(channel).StopCheque(
                cheque_pb2.StopChequeRequest(
                    request_id=str(uuid.uuid4()),
                    account_reference=book.account_reference,
                    serial=serial,
                )
            )

    assert asyncio.run(stop_it()).serial == serial
    _returned(net, book, signed, "PAYMENT_STOPPED")


def test_a_cheque_altered_after_signing_is_returned_signature_invalid(
    net: RunningNetwork,
) -> None:
    network = net.network
    book = asyncio.run(issue_book(network, "alice"))
    signed = write(network, book, book.first_serial, payee="shop", amount_minor=100, order_id="o-5")
    # The amount's last byte: 100 becomes 228, the signature no longer covers it.
    amount_at = signed.index((100).to_bytes(8, "big")) + 7
    altered = signed[:amount_at] + bytes([228]) + signed[amount_at + 1 :]
    _returned(net, book, altered, "SIGNATURE_INVALID")


def test_a_post_dated_cheque_is_returned_post_dated(net: RunningNetwork) -> None:
    network = net.network
    book = asyncio.run(issue_book(network, "alice"))
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)
    signed = write(
        network,
        book,
        book.first_serial,
        payee="shop",
        amount_minor=300,
        order_id="o-6",
        date=tomorrow,
    )
    _returned(net, book, signed, "POST_DATED")


def test_a_cheque_on_a_closed_account_is_returned_account_closed(net: RunningNetwork) -> None:
    network = net.network
    book = asyncio.run(issue_book(network, "carol"))
    signed = write(network, book, book.first_serial, payee="shop", amount_minor=300, order_id="o-7")

    async def close() -> None:
        identity = TlsIdentity.load(Pki(network.pki_dir), "carol")
        async with secure_channel(network.node("alfa").address, identity) as channel:
            await cheque_pb2_grpc.ChequeServiceStub(channel).CloseChequeAccount(
                cheque_pb2.CloseChequeAccountRequest(
                    request_id=str(uuid.uuid4()), account_reference=book.account_reference
                )
            )

    asyncio.run(close())
    _returned(net, book, signed, "ACCOUNT_CLOSED")
    with pytest.raises(grpc.RpcError) as refused:
        asyncio.run(issue_book(network, "carol"))
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(refused.value).reason == "ACCOUNT_CLOSED"


async def _present_as(
    network, bank: str, presentment: cheque_pb2.ChequePresentment
) -> settlement_pb2.SubmitChequePresentmentResult:
    """A cash letter of one presentment, sent by bank with its own certificate."""
    identity = TlsIdentity.load(Pki(network.pki_dir), bank)
    async with secure_channel(network.node("settlement").address, identity) as channel:
        response = await settlement_pb2_grpc.SettlementServiceStub(
            channel
        ).SubmitChequePresentments(
            settlement_pb2.SubmitChequePresentmentsRequest(
                entries=[
                    settlement_pb2.SubmitChequePresentmentRequest(
                        request_id=presentment.presentment_id, presentment=presentment
                    )
                ]
            )
        )
    (result,) = response.results
    return result


def _presentment(
    network,
    book: Book,
    signed: bytes,
    presenter: str,
    endorsement: bytes,
    amount: int,
    order_id: str,
) -> cheque_pb2.ChequePresentment:
    return cheque_pb2.ChequePresentment(
        presentment_id=str(uuid.uuid4()),
        presenting_agent=presenter,
        drawee_agent=book.bank_code,
        amount={"amount_minor": amount, "currency_code": network.currency},
        end_to_end_id=order_id,
        signed_cheque=signed,
        signed_certificate=book.signed_certificate,
        signed_endorsement=endorsement,
    )


def test_an_endorsement_to_another_bank_is_returned_endorsement_invalid(
    net: RunningNetwork,
) -> None:
    network = net.network
    book = asyncio.run(issue_book(network, "alice"))
    signed = write(network, book, book.first_serial, payee="shop", amount_minor=250, order_id="o-8")
    alice = _booked(net, "alice")
    # Endorsed to the shop's bank, but presented by another one.
    elsewhere = endorse(network, signed, "shop", "BETAXX02")
    presentment = _presentment(network, book, signed, "SETLXX00", elsewhere, 250, "o-8")
    with pytest.raises(grpc.RpcError):
        asyncio.run(_present_as(network, "settlement", presentment))
    # A member bank presenting a cheque endorsed to a third bank: the drawee returns it.
    beta_book_cheque = _presentment(
        network, book, signed, "BETAXX02", endorse(network, signed, "shop", "ALFAXX01"), 250, "o-8"
    )
    result = asyncio.run(_present_as(network, "beta", beta_book_cheque))
    assert result.report.status == settlement_pb2.TRANSFER_STATUS_REJECTED, result
    assert result.report.reason_code == "ENDORSEMENT_INVALID"
    assert _booked(net, "alice") == alice


def test_the_audit_balances_every_cheque_paid_and_returned(net: RunningNetwork) -> None:
    """Runs after the clearing tests above (and before a bank presents outside its books
    below): every bank's cheques match what the settlement bank settled, money is whole."""
    report = asyncio.run(audit_network(net.network))
    assert report.ok, report.to_json()
    cheques = report.to_json()["checks"]["cheques_cleared"]
    assert cheques["paid_out"] >= 4500
    assert cheques["returned"] >= 5
    assert cheques["in_clearing"] == cheques["provisional_credit"] == 0


def test_one_cheque_presented_by_two_banks_is_paid_once(net: RunningNetwork) -> None:
    network = net.network
    book = asyncio.run(issue_book(network, "bob"))
    bob = _booked(net, "bob")
    signed = write(network, book, book.first_serial, payee="shop", amount_minor=900, order_id="o-9")
    # The shop deposits it at its bank (beta, the drawee: paid at once) and, at the same
    # time, a second bank presents the same cheque through the settlement bank.
    other = _presentment(
        network, book, signed, "ALFAXX01", endorse(network, signed, "shop", "ALFAXX01"), 900, "o-9"
    )

    async def both() -> tuple[
        cheque_pb2.DepositChequeResponse, settlement_pb2.SubmitChequePresentmentResult
    ]:
        return await asyncio.gather(
            deposit(network, "shop", signed, book), _present_as(network, "alfa", other)
        )

    at_beta, at_alfa = asyncio.run(both())
    paid = [
        at_beta.deposit.state == STATE.CHEQUE_STATE_PAID,
        at_alfa.report.status == settlement_pb2.TRANSFER_STATUS_ACCEPTED,
    ]
    assert paid.count(True) == 1, (at_beta, at_alfa)
    returned = at_alfa.report.reason_code if paid[0] else at_beta.deposit.return_reason
    assert returned == "DUPLICATE_PRESENTMENT"
    assert _booked(net, "bob") == bob - 900


def test_a_cheque_deposited_twice_at_one_bank_is_refused(net: RunningNetwork) -> None:
    network = net.network
    book = asyncio.run(issue_book(network, "bob"))
    signed = write(network, book, book.first_serial, payee="shop", amount_minor=50, order_id="o-10")
    first = asyncio.run(deposit(network, "shop", signed, book))
    with pytest.raises(grpc.RpcError) as refused:
        asyncio.run(deposit(network, "shop", signed, book))
    assert refused.value.code() is grpc.StatusCode.ALREADY_EXISTS
    info = error_info(refused.value)
    assert info.reason == "CHEQUE_ALREADY_DEPOSITED"
    assert info.metadata["deposit_id"] == first.deposit.deposit_id


def test_a_cheque_older_than_the_stale_period_is_returned_stale_dated(
    net: RunningNetwork,
) -> None:
    """The drawer's bank issues the book 200 days ago (its clock set back), the cheque is
    dated 190 days ago: within the book, beyond the 180-day stale period."""
    network = net.network
    alfa = network.node("alfa")
    days = 200

    def restart(offset_days: int) -> None:
        proc = net.procs["alfa"]
        proc.terminate()
        assert proc.wait(15) == 0
        env = {TIME_TRAVEL_ENV: str(-offset_days * 86400)} if offset_days else {}
        net.procs["alfa"] = launch_node(net.path, alfa, net.workdir, env=env)
        asyncio.run(wait_until_serving(network, 30, net.dead))

    restart(days)
    try:
        book = asyncio.run(issue_book(network, "alice"))
    finally:
        restart(0)
    old = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=190)
    signed = write(
        network, book, book.first_serial, payee="shop", amount_minor=400, order_id="o-11", date=old
    )
    _returned(net, book, signed, "STALE_DATED")


def test_a_rotated_cheque_key_signs_new_books_and_old_books_still_clear(
    net: RunningNetwork,
) -> None:
    """paynet pki rotate-cheque-key on a running network: the bank signs the next book
    with the new key, without a restart, and a cheque of a book under the old key pays."""
    network = net.network
    old_book = asyncio.run(issue_book(network, "alice"))
    old_key = cheque.read_certificate(old_book.signed_certificate).document.bank_key_id
    rotated = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops.cli",
            "pki",
            "rotate-cheque-key",
            "alfa",
            "--network",
            str(net.path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rotated.returncode == 0, rotated.stderr
    new_book = asyncio.run(issue_book(network, "alice"))
    new_key = cheque.read_certificate(new_book.signed_certificate).document.bank_key_id
    assert new_key != old_key and new_key in rotated.stdout
    assert new_key.startswith("ALFAXX01-")
    for book, order_id in ((old_book, "o-12"), (new_book, "o-13")):
        signed = write(
            network, book, book.first_serial, payee="shop", amount_minor=60, order_id=order_id
        )
        assert _clear(net, book, signed).state == STATE.CHEQUE_STATE_PAID
