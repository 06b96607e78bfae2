"""Writing, endorsing and depositing cheques in tests, over the network's real nodes.

Everything here is what a participant holding its own keys does: a customer
asks its bank for a cheque book and signs cheques with its Ed25519 key; a
merchant endorses with its key and deposits at its bank; nothing bypasses a
node's checks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass

import grpc
from interbank.v1 import cheque_pb2, cheque_pb2_grpc, common_pb2

from payment import cheque
from payment.config import NetworkConfig
from payment.envelope import load_ed25519_private
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

__all__ = ["Book", "deposit", "endorse", "issue_book", "wait_decided", "write"]


@dataclass(frozen=True)
class Book:
    """A customer's cheque book as its bank issued it."""

    customer: str
    """The drawer."""
    bank_code: str
    """The drawee bank."""
    account_reference: bytes
    """The cheque account's opaque reference."""
    first_serial: int
    """First serial."""
    last_serial: int
    """Last serial."""
    signed_certificate: bytes
    """The bank's signed account certificate."""


def _channel(network: NetworkConfig, node: str, as_name: str) -> grpc.aio.Channel:
    pki = Pki(network.pki_dir)
    return secure_channel(network.node(node).address, TlsIdentity.load(pki, as_name))


async def issue_book(network: NetworkConfig, customer: str, size: int = 20) -> Book:
    """IssueChequeBook at the customer's bank, as the customer."""
    config = network.customer(customer)
    bank = network.node(config.bank)
    async with _channel(network, config.bank, customer) as channel:
        response = await cheque_pb2_grpc.ChequeServiceStub(channel).IssueChequeBook(
            cheque_pb2.IssueChequeBookRequest(
                request_id=str(uuid.uuid4()), account_id=config.account_id, book_size=size
            )
        )
    book = response.book
    assert book.bank_code == bank.bank_code
    return Book(
        customer,
        book.bank_code,
        book.account_reference,
        book.first_serial,
        book.last_serial,
        book.signed_certificate,
    )


def write(
    network: NetworkConfig,
    book: Book,
    serial: int,
    *,
    payee: str,
    amount_minor: int,
    order_id: str,
    date: dt.date | None = None,
    memo: str = "",
) -> bytes:
    """A cheque signed by the book's holder with its registered key."""
    key = load_ed25519_private(Pki(network.pki_dir).signing_key(book.customer).read_bytes())
    written = cheque.Cheque(
        drawee_bank_code=book.bank_code,
        account_reference=book.account_reference,
        serial=serial,
        payee=payee,
        amount_minor=amount_minor,
        currency_code=network.currency,
        date=date or dt.datetime.now(dt.UTC).date(),
        order_reference=order_id,
        memo=memo,
    )
    return cheque.sign(key, written)


def endorse(network: NetworkConfig, signed_cheque: bytes, payee: str, to_bank: str) -> bytes:
    """The payee's endorsement of a signed cheque to a bank code, with the payee's key."""
    key = load_ed25519_private(Pki(network.pki_dir).signing_key(payee).read_bytes())
    return cheque.sign(key, cheque.Endorsement(cheque.cheque_digest(signed_cheque), payee, to_bank))


async def deposit(
    network: NetworkConfig,
    merchant: str,
    signed_cheque: bytes,
    book: Book,
    *,
    request_id: str | None = None,
    endorsement: bytes | None = None,
) -> cheque_pb2.DepositChequeResponse:
    """DepositCheque at the merchant's bank, as the merchant, endorsed to that bank."""
    config = network.merchant(merchant)
    bank = network.node(config.bank)
    assert bank.bank_code is not None
    async with _channel(network, config.bank, merchant) as channel:
        response: cheque_pb2.DepositChequeResponse = await cheque_pb2_grpc.ChequeServiceStub(
            channel
        ).DepositCheque(
            cheque_pb2.DepositChequeRequest(
                request_id=request_id or str(uuid.uuid4()),
                signed_cheque=signed_cheque,
                signed_certificate=book.signed_certificate,
                signed_endorsement=endorsement
                or endorse(network, signed_cheque, merchant, bank.bank_code),
            )
        )
    return response


async def wait_decided(
    network: NetworkConfig,
    merchant: str,
    signed_cheque: bytes,
    book: Book,
    request_id: str,
    endorsement: bytes,
    timeout_s: float = 15.0,
) -> cheque_pb2.ChequeDeposit:
    """The deposit once PAID or RETURNED (DepositCheque repeated answers it as it is now)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await deposit(
            network,
            merchant,
            signed_cheque,
            book,
            request_id=request_id,
            endorsement=endorsement,
        )
        if response.deposit.state != cheque_pb2.CHEQUE_STATE_IN_CLEARING:
            return response.deposit
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"deposit {response.deposit.deposit_id} still in clearing")
        await asyncio.sleep(0.05)


def money(amount_minor: int, currency: str) -> common_pb2.Money:
    """A Money message."""
    return common_pb2.Money(amount_minor=amount_minor, currency_code=currency)
