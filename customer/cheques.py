"""The customer's cheque books and the cheques it writes from them (docs/cheque.md).

A book comes from the customer's own bank (ChequeService.IssueChequeBook) with
the bank's account certificate; :func:`check_book` makes sure the certificate
is the bank's and binds the customer's own key before any cheque is written on
it. :class:`ChequeWallet` keeps the books and, per book, the next serial not
yet written: in memory, and in a JSON file when given one (rewritten whole, by
rename, before a serial is handed out, so a serial is never written twice even
across restarts; a crash can at worst skip one). :func:`write_cheque` signs a
cheque for an order offline with the customer's Ed25519 key, the key that
also makes its dual signatures.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from interbank.v1 import cheque_pb2, order_pb2

from payment import cheque
from payment.cheque import AccountCertificate, ChequeError
from payment.cheque_trust import ChequeKeys

__all__ = ["ChequeBook", "ChequeWallet", "check_book", "write_cheque"]


@dataclass(frozen=True)
class ChequeBook:
    """A cheque book as the bank issued it (``ChequeBook`` in cheque.proto)."""

    bank_code: str
    """The drawee bank's code."""
    account_reference: bytes
    """The opaque account reference every cheque of the book carries."""
    first_serial: int
    """The book's first serial."""
    last_serial: int
    """The book's last serial."""
    signed_certificate: bytes
    """The bank's signed account certificate: it goes with every cheque of the book."""

    @classmethod
    def from_proto(cls, book: cheque_pb2.ChequeBook) -> ChequeBook:
        """The book of an IssueChequeBook answer."""
        return cls(
            bank_code=book.bank_code,
            account_reference=book.account_reference,
            first_serial=book.first_serial,
            last_serial=book.last_serial,
            signed_certificate=book.signed_certificate,
        )

    @property
    def size(self) -> int:
        """How many serials the book has."""
        return self.last_serial - self.first_serial + 1

    @property
    def certificate(self) -> AccountCertificate:
        """The account certificate, parsed (its signature is checked by :func:`check_book`)."""
        return cheque.read_certificate(self.signed_certificate).document

    def __repr__(self) -> str:
        return (
            f"ChequeBook({self.bank_code}, {self.account_reference.hex()[:8]}..., "
            f"serials {self.first_serial}-{self.last_serial})"
        )


def check_book(
    book: ChequeBook, holder_key: ed25519.Ed25519PublicKey, keys: ChequeKeys
) -> AccountCertificate:
    """The book's certificate, once it verifies with a cheque-signing key its bank
    publishes and states what the book says: this bank, account reference and serial
    range, and holder_key as the holder's key. ValueError naming what is wrong
    otherwise: cheques written on such a book would be returned SIGNATURE_INVALID.
    """
    try:
        signed = cheque.read_certificate(book.signed_certificate)
    except ChequeError as exc:
        raise ValueError(f"the book's account certificate does not parse: {exc}") from None
    certificate = signed.document
    bank_key = keys.bank_key(certificate.bank_code, certificate.bank_key_id)
    if bank_key is None:
        raise ValueError(
            f"bank {certificate.bank_code!r} publishes no cheque-signing key "
            f"{certificate.bank_key_id!r}: the book's certificate cannot be checked"
        )
    try:
        cheque.verify(bank_key, signed)
    except ChequeError:
        raise ValueError("the book's account certificate is not signed by its bank") from None
    own_key = holder_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    differing = [
        name
        for name, stated, expected in (
            ("bank_code", certificate.bank_code, book.bank_code),
            ("account_reference", certificate.account_reference, book.account_reference),
            ("first_serial", certificate.first_serial, book.first_serial),
            ("last_serial", certificate.last_serial, book.last_serial),
            ("holder_public_key", certificate.holder_public_key, own_key),
        )
        if stated != expected
    ]
    if differing:
        raise ValueError(
            "the book's account certificate does not state the book: "
            f"{', '.join(differing)} differ; do not write cheques on it"
        )
    return certificate


def write_cheque(
    key: ed25519.Ed25519PrivateKey,
    order: order_pb2.Order,
    book: ChequeBook,
    serial: int,
    date: dt.date,
    memo: str = "",
) -> bytes:
    """The signed cheque (encoding || Ed25519 signature) paying order from book.

    Payee, amount, currency and order reference are the order's; serial and date
    are written as given, so a contract test can write the cheques that every node
    must refuse. ChequeError if a field breaks the encoding rules (a memo over
    140 bytes or not in NFC, for example).
    """
    document = cheque.Cheque(
        drawee_bank_code=book.bank_code,
        account_reference=book.account_reference,
        serial=serial,
        payee=order.merchant_name,
        amount_minor=order.total.amount_minor,
        currency_code=order.total.currency_code,
        date=date,
        order_reference=order.order_id,
        memo=memo,
    )
    return cheque.sign(key, document)


def _book_key(book: ChequeBook) -> tuple[str, bytes, int]:
    return (book.bank_code, book.account_reference, book.first_serial)


class ChequeWallet:
    """The customer's cheque books and the next unwritten serial of each."""

    def __init__(self, path: Path | None = None) -> None:
        """An empty wallet, or the one saved at path (created on the first save)."""
        self._path = path
        self._books: dict[tuple[str, bytes, int], ChequeBook] = {}
        self._next: dict[tuple[str, bytes, int], int] = {}
        if path is not None and path.exists():
            self._load(path)

    @property
    def books(self) -> list[ChequeBook]:
        """Every book, oldest first."""
        return list(self._books.values())

    def add(self, book: ChequeBook) -> None:
        """Keep a book; adding it again (a replayed IssueChequeBook) changes nothing."""
        key = _book_key(book)
        if key in self._books:
            return
        self._books[key] = book
        self._next[key] = book.first_serial
        self._save()

    def remaining(self, book: ChequeBook) -> int:
        """How many serials of book are not yet written."""
        return book.last_serial + 1 - self._next.get(_book_key(book), book.first_serial)

    def current(self) -> ChequeBook | None:
        """The newest book with a serial left, or None."""
        for book in reversed(self._books.values()):
            if self.remaining(book) > 0:
                return book
        return None

    def take_serial(self, book: ChequeBook) -> int:
        """The next unwritten serial of book, recorded as written before it is returned.

        ValueError when the book is used up or not in the wallet.
        """
        key = _book_key(book)
        if key not in self._books:
            raise ValueError(f"{book!r} is not in the wallet: add it first")
        serial = self._next[key]
        if serial > book.last_serial:
            raise ValueError(f"{book!r} is used up: ask the bank for a new book")
        self._next[key] = serial + 1
        self._save()
        return serial

    def mark_written(self, book: ChequeBook, serial: int) -> None:
        """Record a serial chosen by the caller: later serials are taken after it."""
        key = _book_key(book)
        if key in self._books and serial >= self._next[key]:
            self._next[key] = min(serial + 1, book.last_serial + 1)
            self._save()

    # -- the file ---------------------------------------------------------------------------

    def _save(self) -> None:
        if self._path is None:
            return
        entries: list[dict[str, Any]] = [
            {
                "bank_code": book.bank_code,
                "account_reference": book.account_reference.hex(),
                "first_serial": book.first_serial,
                "last_serial": book.last_serial,
                "signed_certificate": book.signed_certificate.hex(),
                "next_serial": self._next[key],
            }
            for key, book in self._books.items()
        ]
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fresh = self._path.with_name(f".{self._path.name}.new")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"books": entries}, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(fresh, self._path)

    def _load(self, path: Path) -> None:
        saved = json.loads(path.read_text(encoding="utf-8"))
        for entry in saved["books"]:
            book = ChequeBook(
                bank_code=entry["bank_code"],
                account_reference=bytes.fromhex(entry["account_reference"]),
                first_serial=int(entry["first_serial"]),
                last_serial=int(entry["last_serial"]),
                signed_certificate=bytes.fromhex(entry["signed_certificate"]),
            )
            key = _book_key(book)
            self._books[key] = book
            self._next[key] = int(entry["next_serial"])
