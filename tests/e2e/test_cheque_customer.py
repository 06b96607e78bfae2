"""The customer's side of the electronic cheque: books, cheques written offline,
stop-payment orders and cheque purchases.

The first tests need no node: the cheque the client writes must be one the
payee's checks (payment.cheque_trust.read_verified) accept with a certificate
signed by the bank's published key, and the client must refuse a book whose
certificate is not its bank's or not of its own key. The rest buy over real
mTLS sockets on a network of their own (its buyers close cheque accounts).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from interbank.v1 import common_pb2, notification_pb2, order_pb2

from customer.cheques import ChequeBook, ChequeWallet, check_book
from customer.client import Customer
from customer.shop import all_balances, purchase_by_cheque
from payment import cheque
from payment.cheque_trust import ChequeKeys, check_dates, read_verified
from payment.config import NetworkConfig
from payment.envelope import load_ed25519_private
from payment.errors import PaynetError
from payment.pki import Pki
from tests.e2e.conftest import RunningNetwork, start_network, stop
from tests.support import make_pki, write_network

S = order_pb2.OrderStatus
ACROSS, ON_US, CLOSER = "cheque-alfa", "cheque-beta", "cheque-closer"
"""Buyers at alfa (the shop banks at beta), at beta, and one that closes its account."""
LAMP, BOOK = 3250, 4500


def quiet(*_args: str) -> None:
    """A step printer that prints nothing."""


# -- without a node ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> NetworkConfig:
    """A network file and its PKI (banks' cheque keys included); no node runs."""
    return make_pki(write_network(tmp_path_factory.mktemp("offline")))


def issued_book(
    network: NetworkConfig,
    holder: str,
    *,
    bank: str = "alfa",
    signer: str | None = None,
    holder_key: bytes | None = None,
    first: int = 101,
    last: int = 110,
) -> ChequeBook:
    """A book as bank would issue it to holder, its certificate signed by signer's key."""
    key_id, bank_key = ChequeKeys(network).signing_key(signer or bank)
    bank_code = network.node(bank).bank_code or ""
    if holder_key is None:
        holder_key = bytes.fromhex(Pki(network.pki_dir).signing_public_key(holder).read_text())
    today = dt.datetime.now(dt.UTC).date()
    certificate = cheque.AccountCertificate(
        bank_code=bank_code,
        bank_key_id=key_id,
        account_reference=b"\x5f" * 16,
        holder_public_key=holder_key,
        first_serial=first,
        last_serial=last,
        not_before=today - dt.timedelta(days=1),
        not_after=today + dt.timedelta(days=365),
    )
    return ChequeBook(bank_code, b"\x5f" * 16, first, last, cheque.sign(bank_key, certificate))


def customer_key(network: NetworkConfig, name: str) -> ed25519.Ed25519PublicKey:
    """The customer's enrolled key, as the bank would certify it."""
    pem = Pki(network.pki_dir).signing_key(name).read_bytes()
    return load_ed25519_private(pem).public_key()


def an_order(merchant: str = "shop", total: int = 12250) -> order_pb2.Order:
    """An order as CreateOrder answers it (only what a cheque takes from it)."""
    return order_pb2.Order(
        order_id="0b6c0c9e-7e0e-4a3b-9c57-5d6e7f809c9e",
        merchant_name=merchant,
        customer_name="alice",
        total=common_pb2.Money(amount_minor=total, currency_code="EUR"),
    )


async def test_a_written_cheque_passes_the_payees_checks_and_pays_exactly_the_order(
    offline: NetworkConfig,
) -> None:
    book = issued_book(offline, "alice")
    async with Customer(offline, "alice") as alice:
        alice.cheques.add(book)
        signed = alice.write_cheque(an_order(), book, memo="book-001 x2, lamp-002 x1")
    verified = read_verified(signed, book.signed_certificate, ChequeKeys(offline))
    written = verified.cheque
    assert (written.payee, written.amount_minor, written.currency_code) == ("shop", 12250, "EUR")
    assert written.order_reference == an_order().order_id
    assert (written.drawee_bank_code, written.account_reference) == ("ALFAXX01", b"\x5f" * 16)
    assert written.serial == 101
    assert written.date == dt.datetime.now(dt.UTC).date()
    assert written.memo == "book-001 x2, lamp-002 x1"
    check_dates(written, dt.datetime.now(dt.UTC).date(), 180)


async def test_each_cheque_takes_the_next_serial_and_a_used_up_book_writes_none(
    offline: NetworkConfig,
) -> None:
    book = issued_book(offline, "alice", first=7, last=8)
    async with Customer(offline, "alice") as alice:
        alice.cheques.add(book)
        serials = [cheque.read_cheque(alice.write_cheque(an_order(), book)).document.serial]
        serials.append(cheque.read_cheque(alice.write_cheque(an_order(), book)).document.serial)
        with pytest.raises(ValueError, match="used up"):
            alice.write_cheque(an_order(), book)
        assert alice.cheques.current() is None
    assert serials == [7, 8]


def test_a_chosen_serial_and_date_are_written_as_given_and_later_serials_follow_it(
    offline: NetworkConfig,
) -> None:
    book = issued_book(offline, "alice")
    customer = Customer(offline, "alice")
    customer.cheques.add(book)
    post_dated = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)
    signed = customer.write_cheque(an_order(), book, serial=105, date=post_dated)
    written = read_verified(signed, book.signed_certificate, ChequeKeys(offline)).cheque
    assert (written.serial, written.date) == (105, post_dated)
    assert customer.cheques.take_serial(book) == 106


def test_the_wallet_file_keeps_books_and_serials_across_restarts(
    offline: NetworkConfig, tmp_path: Path
) -> None:
    book = issued_book(offline, "alice")
    path = tmp_path / "alice-cheques.json"
    wallet = ChequeWallet(path)
    wallet.add(book)
    assert [wallet.take_serial(book), wallet.take_serial(book)] == [101, 102]
    reopened = ChequeWallet(path)
    assert reopened.books == [book]
    assert reopened.take_serial(book) == 103
    reopened.add(book)  # a replayed IssueChequeBook: the book keeps its place
    assert reopened.remaining(book) == 7
    assert path.stat().st_mode & 0o077 == 0


def test_a_book_certifying_another_key_is_refused(offline: NetworkConfig) -> None:
    bob_key = customer_key(offline, "bob").public_bytes(Encoding.Raw, PublicFormat.Raw)
    book = issued_book(offline, "alice", holder_key=bob_key)
    with pytest.raises(ValueError, match="holder_public_key"):
        check_book(book, customer_key(offline, "alice"), ChequeKeys(offline))


def test_a_book_signed_with_another_banks_key_is_refused(offline: NetworkConfig) -> None:
    book = issued_book(offline, "alice", signer="beta")  # beta's key id under alfa's code
    with pytest.raises(ValueError, match="publishes no cheque-signing key"):
        check_book(book, customer_key(offline, "alice"), ChequeKeys(offline))


def test_a_book_whose_certificate_states_other_serials_is_refused(offline: NetworkConfig) -> None:
    book = issued_book(offline, "alice")
    widened = ChequeBook(book.bank_code, book.account_reference, 1, 1000, book.signed_certificate)
    with pytest.raises(ValueError, match="first_serial, last_serial"):
        check_book(widened, customer_key(offline, "alice"), ChequeKeys(offline))
    assert check_book(book, customer_key(offline, "alice"), ChequeKeys(offline)).last_serial == 110


# -- over the network --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cheque_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The dev network with three buyers: at alfa, at beta, and one at alfa to close."""
    running = start_network(tmp_path_factory.mktemp("cheques"), buyers=(ACROSS, ON_US, CLOSER))
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


@pytest.mark.parametrize("buyer", [ACROSS, ON_US])
async def test_a_cheque_purchase_is_delivered_and_moves_exactly_its_amount(
    cheque_net: RunningNetwork, buyer: str
) -> None:
    network = cheque_net.network
    before = await all_balances(network)
    async with Customer(network, buyer) as customer:
        result = await purchase_by_cheque(customer, "shop", [("lamp-002", 1)], say=quiet)
        statement = await customer.statement()
    assert result.order.status == S.ORDER_STATUS_DELIVERY_CONFIRMED
    assert result.order.total.amount_minor == LAMP
    assert result.serial == result.book.first_serial
    after = await all_balances(network)
    assert after[f"{buyer}-current"] == before[f"{buyer}-current"] - LAMP
    assert after["shop-sales"] == before["shop-sales"] + LAMP
    assert sum(after.values()) == sum(before.values()) == network.total_opening_money()
    debits = [
        e.amount.amount_minor
        for e in statement.entries
        if e.direction == notification_pb2.ACCOUNT_ENTRY_DIRECTION_DEBIT
    ]
    assert debits == [LAMP]


async def test_a_stopped_cheque_is_returned_and_its_order_fails_with_money_unchanged(
    cheque_net: RunningNetwork,
) -> None:
    network = cheque_net.network
    before = await all_balances(network)
    async with Customer(network, ACROSS) as customer:
        result = await purchase_by_cheque(
            customer, "shop", [("book-001", 1)], stop_payment=True, say=quiet
        )
    assert result.order.status == S.ORDER_STATUS_FAILED
    assert result.order.failure_reason == "PAYMENT_STOPPED"
    assert await all_balances(network) == before


async def test_a_closed_cheque_account_returns_its_cheques_and_gets_no_new_book(
    cheque_net: RunningNetwork,
) -> None:
    network = cheque_net.network
    before = await all_balances(network)
    async with Customer(network, CLOSER) as customer:
        book = await customer.issue_cheque_book(5)
        placed = await customer.create_order("shop", [("book-001", 1)])
        signed = customer.write_cheque(placed.order, book)
        await customer.close_cheque_account(book)
        with pytest.raises(PaynetError) as refused:
            await customer.issue_cheque_book(5)
        await customer.pay_by_cheque("shop", placed.order, signed, book.signed_certificate)
        order = await customer.wait_for_order(
            "shop",
            placed.order.order_id,
            S.ORDER_STATUS_DELIVERY_CONFIRMED,
            or_else=(S.ORDER_STATUS_FAILED,),
        )
    assert refused.value.reason == "ACCOUNT_CLOSED"
    assert (order.status, order.failure_reason) == (S.ORDER_STATUS_FAILED, "ACCOUNT_CLOSED")
    assert await all_balances(network) == before


async def test_a_book_of_no_serials_is_refused(cheque_net: RunningNetwork) -> None:
    async with Customer(cheque_net.network, ON_US) as customer:
        with pytest.raises(PaynetError) as refused:
            await customer.issue_cheque_book(0)
    assert refused.value.reason == "FIELD_INVALID"
