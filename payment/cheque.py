"""The electronic cheque's three signed documents, byte for byte as
docs/cheque.md specifies them for implementers in other languages.

- account certificate: the drawee bank's Ed25519 signature binding a cheque
  account (bank code, opaque account reference), the holder's Ed25519 public
  key, a range of cheque serials and a validity window;
- cheque: written and signed offline by the drawer (the account holder);
- endorsement: the payee's countersignature over the signed cheque, "pay to
  the order of" its bank.

Each document has one canonical encoding: a length-prefixed tag naming the
document and its version, then its fields in a fixed order, strings and bytes
length-prefixed (u16, big-endian), integers fixed width (big-endian), dates as
year (u16), month, day. Every field has a documented bound (``*_MAX_BYTES``).
Text is UTF-8 in Unicode NFC, without control or unassigned code points: a
writer must supply it so, a reader refuses anything else, so the bytes of a
document are a function of its fields and parsing is the inverse of encoding.

A signed document is its encoding followed by the 64-byte Ed25519 signature
over a context string (``*_CONTEXT``, NUL-terminated) followed by the encoding.
These functions check encodings and signatures only; whose key must have
signed, and the checks of docs/cheque.md section 6, belong to the services.
"""

from __future__ import annotations

import datetime
import hashlib
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

__all__ = [
    "ACCOUNT_REFERENCE_MAX_BYTES",
    "BANK_CODE_MAX_BYTES",
    "BANK_KEY_ID_MAX_BYTES",
    "CERTIFICATE_CONTEXT",
    "CERTIFICATE_TAG",
    "CHEQUE_CONTEXT",
    "CHEQUE_TAG",
    "ENDORSEMENT_CONTEXT",
    "ENDORSEMENT_TAG",
    "MEMO_MAX_BYTES",
    "ORDER_REFERENCE_MAX_BYTES",
    "PAYEE_MAX_BYTES",
    "SIGNATURE_BYTES",
    "AccountCertificate",
    "Cheque",
    "ChequeError",
    "Endorsement",
    "Signed",
    "cheque_digest",
    "encode",
    "parse_certificate",
    "parse_cheque",
    "parse_endorsement",
    "read_certificate",
    "read_cheque",
    "read_endorsement",
    "sign",
    "signature_message",
    "verify",
]

CHEQUE_TAG = b"paynet-cheque-v1"
CERTIFICATE_TAG = b"paynet-account-certificate-v1"
ENDORSEMENT_TAG = b"paynet-endorsement-v1"

CHEQUE_CONTEXT = b"paynet-cheque-v1 drawer signature\x00"
CERTIFICATE_CONTEXT = b"paynet-account-certificate-v1 bank signature\x00"
ENDORSEMENT_CONTEXT = b"paynet-endorsement-v1 payee signature\x00"

BANK_CODE_MAX_BYTES = 64
"""Drawee, issuing and pay-to bank codes (as ``bank_code`` in common.proto)."""
BANK_KEY_ID_MAX_BYTES = 64
"""The id of the bank's cheque-signing key that signed a certificate."""
ACCOUNT_REFERENCE_MAX_BYTES = 64
"""The opaque account reference (bytes, never the account number)."""
PAYEE_MAX_BYTES = 64
"""The payee's network name (as ``merchant_name``)."""
ORDER_REFERENCE_MAX_BYTES = 128
"""The order the cheque pays (as ``order_id``); may be empty."""
MEMO_MAX_BYTES = 140
"""Free text for the drawer (ISO 20022 unstructured remittance: 140); may be empty."""
SIGNATURE_BYTES = 64
"""An Ed25519 signature R || S."""

_KEY_BYTES = 32
_DIGEST_BYTES = 32
_INT_MAX = 2**63 - 1
"""Serials and amounts fit a signed 64-bit integer in every language and store."""


class ChequeError(ValueError):
    """A document that cannot be encoded or parsed, or a signature that does not verify."""

    def __init__(self, document: str, field: str, problem: str) -> None:
        super().__init__(f"{document}: {field} {problem}")
        self.document = document
        """``cheque``, ``account certificate`` or ``endorsement``."""
        self.field = field
        """The field at fault (``tag``, ``signature``, ``trailing bytes`` or a field name)."""


@dataclass(frozen=True)
class Cheque:
    """A cheque as the drawer writes it (docs/cheque.md section 3)."""

    drawee_bank_code: str
    """The bank holding the account the cheque is drawn on."""
    account_reference: bytes
    """The opaque reference of the cheque account, as in the account certificate."""
    serial: int
    """The cheque's serial number, 1 to 2**63 - 1, within the certificate's range."""
    payee: str
    """The network name of whom the cheque pays (the merchant)."""
    amount_minor: int
    """Amount in minor units of currency_code, 1 to 2**63 - 1."""
    currency_code: str
    """ISO 4217 alphabetic code: three capital letters."""
    date: datetime.date
    """The date written on the cheque (the drawer's calendar date, UTC)."""
    order_reference: str
    """The order the cheque pays; empty for none."""
    memo: str
    """Free text; empty for none."""


@dataclass(frozen=True)
class AccountCertificate:
    """The bank's certificate of a cheque account and its holder (section 2)."""

    bank_code: str
    """The bank that holds the account and signs the certificate."""
    bank_key_id: str
    """Which of the bank's published cheque-signing keys signed it."""
    account_reference: bytes
    """The opaque reference of the cheque account."""
    holder_public_key: bytes
    """The holder's registered Ed25519 public key, 32 raw bytes."""
    first_serial: int
    """The cheque book's first serial."""
    last_serial: int
    """The cheque book's last serial (at least first_serial)."""
    not_before: datetime.date
    """First day a cheque may be dated under this certificate."""
    not_after: datetime.date
    """Last day a cheque may be dated under this certificate (at least not_before)."""


@dataclass(frozen=True)
class Endorsement:
    """The payee's endorsement of one signed cheque (section 4)."""

    cheque_digest: bytes
    """SHA-256 of the signed cheque (:func:`cheque_digest`), 32 bytes."""
    payee: str
    """The endorser: the cheque's payee."""
    pay_to_bank_code: str
    """The bank the cheque is paid to the order of: where the payee deposits it."""


Document = Cheque | AccountCertificate | Endorsement
D = TypeVar("D", Cheque, AccountCertificate, Endorsement)


@dataclass(frozen=True)
class Signed(Generic[D]):
    """A signed document as read from its bytes; verify it with :func:`verify`."""

    document: D
    """The parsed document."""
    encoded: bytes
    """Its canonical encoding, exactly as received."""
    signature: bytes
    """The 64-byte Ed25519 signature that followed it."""

    @property
    def signed_bytes(self) -> bytes:
        """The signed document as it travels: encoding || signature."""
        return self.encoded + self.signature


# -- writing --------------------------------------------------------------------------------


class _Writer:
    def __init__(self, document: str, tag: bytes) -> None:
        self.document = document
        self.out = bytearray()
        self._put_prefixed(tag)

    def _put_prefixed(self, raw: bytes) -> None:
        self.out += struct.pack(">H", len(raw)) + raw

    def text(self, field: str, value: str, low: int, high: int) -> None:
        _check_text(self.document, field, value)
        self.blob(field, value.encode("utf-8"), low, high)

    def blob(self, field: str, value: bytes, low: int, high: int) -> None:
        _check_length(self.document, field, len(value), low, high)
        self._put_prefixed(value)

    def fixed(self, field: str, value: bytes, size: int) -> None:
        if len(value) != size:
            raise ChequeError(self.document, field, f"is {len(value)} bytes; it must be {size}")
        self.out += value

    def integer(self, field: str, value: int, low: int = 1) -> None:
        _check_integer(self.document, field, value, low)
        self.out += struct.pack(">q", value)

    def date(self, field: str, value: datetime.date) -> None:
        self.out += struct.pack(">HBB", value.year, value.month, value.day)

    def currency(self, field: str, value: str) -> None:
        _check_currency(self.document, field, value)
        self.out += value.encode("ascii")


def encode(document: Document) -> bytes:
    """The document's canonical encoding; ChequeError if a field breaks its rules."""
    if isinstance(document, Cheque):
        w = _Writer("cheque", CHEQUE_TAG)
        w.text("drawee_bank_code", document.drawee_bank_code, 1, BANK_CODE_MAX_BYTES)
        w.blob("account_reference", document.account_reference, 1, ACCOUNT_REFERENCE_MAX_BYTES)
        w.integer("serial", document.serial)
        w.text("payee", document.payee, 1, PAYEE_MAX_BYTES)
        w.integer("amount_minor", document.amount_minor)
        w.currency("currency_code", document.currency_code)
        w.date("date", document.date)
        w.text("order_reference", document.order_reference, 0, ORDER_REFERENCE_MAX_BYTES)
        w.text("memo", document.memo, 0, MEMO_MAX_BYTES)
    elif isinstance(document, AccountCertificate):
        w = _Writer("account certificate", CERTIFICATE_TAG)
        w.text("bank_code", document.bank_code, 1, BANK_CODE_MAX_BYTES)
        w.text("bank_key_id", document.bank_key_id, 1, BANK_KEY_ID_MAX_BYTES)
        w.blob("account_reference", document.account_reference, 1, ACCOUNT_REFERENCE_MAX_BYTES)
        w.fixed("holder_public_key", document.holder_public_key, _KEY_BYTES)
        w.integer("first_serial", document.first_serial)
        w.integer("last_serial", document.last_serial, document.first_serial)
        w.date("not_before", document.not_before)
        _check_order(w.document, "not_after", document.not_before, document.not_after)
        w.date("not_after", document.not_after)
    else:
        w = _Writer("endorsement", ENDORSEMENT_TAG)
        w.fixed("cheque_digest", document.cheque_digest, _DIGEST_BYTES)
        w.text("payee", document.payee, 1, PAYEE_MAX_BYTES)
        w.text("pay_to_bank_code", document.pay_to_bank_code, 1, BANK_CODE_MAX_BYTES)
    return bytes(w.out)


# -- reading --------------------------------------------------------------------------------


class _Reader:
    def __init__(self, document: str, tag: bytes, data: bytes) -> None:
        self.document = document
        self.data = data
        self.at = 0
        found = self._take_prefixed("tag")
        if found != tag:
            family = tag[: tag.rindex(b"-v") + 2]
            if found.startswith(family):
                problem = f"{found!r} is a version this reader does not know (it reads {tag!r})"
            else:
                problem = f"{found!r} does not name a {document} ({tag!r} expected)"
            raise ChequeError(document, "tag", problem)

    def _take(self, field: str, size: int) -> bytes:
        if len(self.data) - self.at < size:
            left = len(self.data) - self.at
            raise ChequeError(self.document, field, f"is cut short: {left} of {size} bytes")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def _take_prefixed(self, field: str) -> bytes:
        (size,) = struct.unpack(">H", self._take(field, 2))
        return self._take(field, size)

    def text(self, field: str, low: int, high: int) -> str:
        raw = self.blob(field, low, high)
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ChequeError(self.document, field, "is not valid UTF-8") from None
        _check_text(self.document, field, value)
        return value

    def blob(self, field: str, low: int, high: int) -> bytes:
        (size,) = struct.unpack(">H", self._take(field, 2))
        _check_length(self.document, field, size, low, high)
        return self._take(field, size)

    def fixed(self, field: str, size: int) -> bytes:
        return self._take(field, size)

    def integer(self, field: str, low: int = 1) -> int:
        (value,) = struct.unpack(">q", self._take(field, 8))
        _check_integer(self.document, field, value, low)
        return int(value)

    def date(self, field: str) -> datetime.date:
        year, month, day = struct.unpack(">HBB", self._take(field, 4))
        try:
            return datetime.date(year, month, day)
        except ValueError:
            problem = f"{year:04}-{month:02}-{day:02} is not a calendar date"
            raise ChequeError(self.document, field, problem) from None

    def currency(self, field: str) -> str:
        raw = self._take(field, 3)
        value = raw.decode("latin-1")
        _check_currency(self.document, field, value)
        return value

    def end(self) -> None:
        left = len(self.data) - self.at
        if left:
            raise ChequeError(self.document, "trailing bytes", f"{left} after the last field")


def _read_cheque(r: _Reader) -> Cheque:
    return Cheque(
        drawee_bank_code=r.text("drawee_bank_code", 1, BANK_CODE_MAX_BYTES),
        account_reference=r.blob("account_reference", 1, ACCOUNT_REFERENCE_MAX_BYTES),
        serial=r.integer("serial"),
        payee=r.text("payee", 1, PAYEE_MAX_BYTES),
        amount_minor=r.integer("amount_minor"),
        currency_code=r.currency("currency_code"),
        date=r.date("date"),
        order_reference=r.text("order_reference", 0, ORDER_REFERENCE_MAX_BYTES),
        memo=r.text("memo", 0, MEMO_MAX_BYTES),
    )


def _read_certificate(r: _Reader) -> AccountCertificate:
    bank_code = r.text("bank_code", 1, BANK_CODE_MAX_BYTES)
    bank_key_id = r.text("bank_key_id", 1, BANK_KEY_ID_MAX_BYTES)
    account_reference = r.blob("account_reference", 1, ACCOUNT_REFERENCE_MAX_BYTES)
    holder_public_key = r.fixed("holder_public_key", _KEY_BYTES)
    first_serial = r.integer("first_serial")
    last_serial = r.integer("last_serial", first_serial)
    not_before = r.date("not_before")
    not_after = r.date("not_after")
    _check_order(r.document, "not_after", not_before, not_after)
    return AccountCertificate(
        bank_code,
        bank_key_id,
        account_reference,
        holder_public_key,
        first_serial,
        last_serial,
        not_before,
        not_after,
    )


def _read_endorsement(r: _Reader) -> Endorsement:
    return Endorsement(
        cheque_digest=r.fixed("cheque_digest", _DIGEST_BYTES),
        payee=r.text("payee", 1, PAYEE_MAX_BYTES),
        pay_to_bank_code=r.text("pay_to_bank_code", 1, BANK_CODE_MAX_BYTES),
    )


_KINDS: dict[type, tuple[str, bytes, bytes]] = {
    Cheque: ("cheque", CHEQUE_TAG, CHEQUE_CONTEXT),
    AccountCertificate: ("account certificate", CERTIFICATE_TAG, CERTIFICATE_CONTEXT),
    Endorsement: ("endorsement", ENDORSEMENT_TAG, ENDORSEMENT_CONTEXT),
}


def _parse(kind: type[D], read: Callable[[_Reader], D], data: bytes, signed: bool) -> Signed[D]:
    name, tag, _ = _KINDS[kind]
    body = data
    signature = b""
    if signed:
        if len(data) < SIGNATURE_BYTES:
            raise ChequeError(name, "signature", f"is missing: {len(data)} bytes in all")
        body, signature = data[:-SIGNATURE_BYTES], data[-SIGNATURE_BYTES:]
    reader = _Reader(name, tag, body)
    document = read(reader)
    reader.end()
    return Signed(document, body, signature)


def parse_cheque(data: bytes) -> Cheque:
    """The cheque whose canonical encoding is data; ChequeError otherwise."""
    return _parse(Cheque, _read_cheque, data, signed=False).document


def parse_certificate(data: bytes) -> AccountCertificate:
    """The account certificate whose canonical encoding is data; ChequeError otherwise."""
    return _parse(AccountCertificate, _read_certificate, data, signed=False).document


def parse_endorsement(data: bytes) -> Endorsement:
    """The endorsement whose canonical encoding is data; ChequeError otherwise."""
    return _parse(Endorsement, _read_endorsement, data, signed=False).document


def read_cheque(signed: bytes) -> Signed[Cheque]:
    """A signed cheque split and parsed (signature not yet verified)."""
    return _parse(Cheque, _read_cheque, signed, signed=True)


def read_certificate(signed: bytes) -> Signed[AccountCertificate]:
    """A signed account certificate split and parsed (signature not yet verified)."""
    return _parse(AccountCertificate, _read_certificate, signed, signed=True)


def read_endorsement(signed: bytes) -> Signed[Endorsement]:
    """A signed endorsement split and parsed (signature not yet verified)."""
    return _parse(Endorsement, _read_endorsement, signed, signed=True)


# -- signatures -----------------------------------------------------------------------------


def signature_message(document: Document) -> bytes:
    """What the Ed25519 signature covers: the document's context || its encoding."""
    return _KINDS[type(document)][2] + encode(document)


def sign(key: ed25519.Ed25519PrivateKey, document: Document) -> bytes:
    """The signed document as it travels: encoding || Ed25519 signature (64 bytes)."""
    encoded = encode(document)
    return encoded + key.sign(_KINDS[type(document)][2] + encoded)


def verify(key: ed25519.Ed25519PublicKey, signed: Signed[D]) -> D:
    """The document if key signed exactly these bytes; ChequeError (field ``signature``) if not."""
    name, _, context = _KINDS[type(signed.document)]
    try:
        key.verify(signed.signature, context + signed.encoded)
    except InvalidSignature:
        raise ChequeError(name, "signature", "does not verify with the expected key") from None
    return signed.document


def cheque_digest(signed_cheque: bytes) -> bytes:
    """SHA-256 of a signed cheque's bytes: what an endorsement names."""
    return hashlib.sha256(signed_cheque).digest()


# -- field rules ----------------------------------------------------------------------------


def _check_length(document: str, field: str, size: int, low: int, high: int) -> None:
    if size > high:
        raise ChequeError(document, field, f"is {size} bytes; at most {high} are allowed")
    if size < low:
        raise ChequeError(document, field, "is empty; it is required")


def _check_text(document: str, field: str, value: str) -> None:
    for char in value:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Cn"):
            what = {"Cc": "a control", "Cs": "a surrogate", "Cn": "an unassigned"}[category]
            problem = f"holds {what} code point U+{ord(char):04X}"
            raise ChequeError(document, field, problem)
    if not unicodedata.is_normalized("NFC", value):
        raise ChequeError(document, field, "is not in Unicode normalization form C (NFC)")


def _check_integer(document: str, field: str, value: int, low: int) -> None:
    if not low <= value <= _INT_MAX:
        raise ChequeError(document, field, f"is {value}; it must be from {low} to {_INT_MAX}")


def _check_currency(document: str, field: str, value: str) -> None:
    if len(value) != 3 or not all("A" <= c <= "Z" for c in value):
        raise ChequeError(document, field, f"{value!r} is not three capital letters A-Z")


def _check_order(document: str, field: str, first: datetime.date, last: datetime.date) -> None:
    if last < first:
        raise ChequeError(document, field, f"{last} is before not_before {first}")
