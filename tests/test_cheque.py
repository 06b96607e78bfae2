"""The cheque's documents (payment.cheque) against docs/cheque.md and the
committed vectors, clients/vectors/cheque.json, that every client checks too."""

from __future__ import annotations

import datetime
import importlib.util
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st

from payment import cheque

ROOT = Path(__file__).resolve().parents[1]
VECTORS = json.loads((ROOT / "clients" / "vectors" / "cheque.json").read_text())


def _generator() -> Any:  # scripts/ is not a package
    spec = importlib.util.spec_from_file_location("vectors", ROOT / "scripts" / "cheque_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _private(name: str) -> ed25519.Ed25519PrivateKey:
    seed = bytes.fromhex(VECTORS["keys"][name]["private_key"])
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)


def _public(name: str) -> ed25519.Ed25519PublicKey:
    raw = bytes.fromhex(VECTORS["keys"][name]["public_key"])
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def _document(kind: type, fields: dict[str, Any]) -> Any:
    dates = {"date", "not_before", "not_after"}
    binary = {"account_reference", "holder_public_key", "cheque_digest"}
    values = {
        name: datetime.date.fromisoformat(value)
        if name in dates
        else bytes.fromhex(value)
        if name in binary
        else value
        for name, value in fields.items()
    }
    return kind(**values)


SIGNED = [
    (cheque.AccountCertificate, "bank", VECTORS["account_certificate"]),
    *[(cheque.Cheque, "drawer", entry) for entry in VECTORS["cheques"]],
    (cheque.Endorsement, "payee", VECTORS["endorsement"]),
]
READERS = {
    cheque.AccountCertificate: (cheque.parse_certificate, cheque.read_certificate),
    cheque.Cheque: (cheque.parse_cheque, cheque.read_cheque),
    cheque.Endorsement: (cheque.parse_endorsement, cheque.read_endorsement),
}


def test_the_committed_vectors_are_what_the_generator_makes() -> None:
    assert _generator().vectors() == VECTORS


@pytest.mark.parametrize(("kind", "signer", "entry"), SIGNED)
def test_each_document_encodes_and_signs_to_the_vector_bytes(
    kind: type, signer: str, entry: dict[str, Any]
) -> None:
    document = _document(kind, entry["fields"])
    assert cheque.encode(document).hex() == entry["encoded"]
    assert cheque.signature_message(document).hex() == entry["signature_message"]
    assert cheque.sign(_private(signer), document).hex() == entry["signed"]
    assert entry["signed"] == entry["encoded"] + entry["signature"]


@pytest.mark.parametrize(("kind", "signer", "entry"), SIGNED)
def test_each_vector_parses_back_and_verifies_with_its_signer_only(
    kind: type, signer: str, entry: dict[str, Any]
) -> None:
    parse, read = READERS[kind]
    document = _document(kind, entry["fields"])
    assert parse(bytes.fromhex(entry["encoded"])) == document
    signed = read(bytes.fromhex(entry["signed"]))
    assert cheque.verify(_public(signer), signed) == document
    other = "payee" if signer != "payee" else "drawer"
    with pytest.raises(cheque.ChequeError) as refused:
        cheque.verify(_public(other), signed)
    assert refused.value.field == "signature"


def test_the_certificate_binds_the_drawer_key_and_the_endorsement_the_signed_cheque() -> None:
    certificate = cheque.parse_certificate(bytes.fromhex(VECTORS["account_certificate"]["encoded"]))
    assert certificate.holder_public_key.hex() == VECTORS["keys"]["drawer"]["public_key"]
    signed_cheque = bytes.fromhex(VECTORS["cheques"][0]["signed"])
    assert cheque.cheque_digest(signed_cheque).hex() == VECTORS["cheques"][0]["digest"]
    endorsement = cheque.parse_endorsement(bytes.fromhex(VECTORS["endorsement"]["encoded"]))
    assert endorsement.cheque_digest == cheque.cheque_digest(signed_cheque)


def test_the_contexts_are_the_documented_strings() -> None:
    assert bytes.fromhex(VECTORS["contexts"]["cheque"]) == b"paynet-cheque-v1 drawer signature\0"
    assert cheque.CERTIFICATE_CONTEXT.hex() == VECTORS["contexts"]["account_certificate"]
    assert cheque.ENDORSEMENT_CONTEXT.hex() == VECTORS["contexts"]["endorsement"]


@pytest.mark.parametrize("entry", VECTORS["cheques"], ids=lambda e: e["about"][:40])
def test_any_single_byte_altered_in_a_signed_cheque_fails(entry: dict[str, Any]) -> None:
    signed = bytes.fromhex(entry["signed"])
    key = _public("drawer")
    for index in range(len(signed)):
        for flip in (0x01, 0x80):
            altered = bytearray(signed)
            altered[index] ^= flip
            with pytest.raises(cheque.ChequeError):
                cheque.verify(key, cheque.read_cheque(bytes(altered)))


@pytest.mark.parametrize("case", VECTORS["refused_cheques"], ids=lambda c: c["about"])
def test_a_reader_refuses_each_refused_vector_naming_the_field(case: dict[str, str]) -> None:
    with pytest.raises(cheque.ChequeError) as refused:
        cheque.parse_cheque(bytes.fromhex(case["bytes"]))
    assert refused.value.field == case["field"]
    assert refused.value.document == "cheque"


def test_the_refusals_say_precisely_what_is_wrong() -> None:
    good = bytes.fromhex(VECTORS["cheques"][0]["encoded"])
    with pytest.raises(cheque.ChequeError, match=r"trailing bytes 2 after the last field"):
        cheque.parse_cheque(good + b"\0\0")
    v2 = good.replace(b"paynet-cheque-v1", b"paynet-cheque-v2")
    with pytest.raises(cheque.ChequeError, match=r"version this reader does not know"):
        cheque.parse_cheque(v2)
    with pytest.raises(cheque.ChequeError, match=r"signature is missing"):
        cheque.read_cheque(good[:10])
    with pytest.raises(cheque.ChequeError, match=r"memo is 141 bytes; at most 140"):
        cheque.encode(_cheque(memo="m" * 141))
    with pytest.raises(cheque.ChequeError, match=r"memo is not in Unicode normalization form C"):
        cheque.encode(_cheque(memo="Cafe\u0301"))
    with pytest.raises(cheque.ChequeError, match=r"payee holds a control code point U\+0000"):
        cheque.encode(_cheque(payee="sh\0p"))
    with pytest.raises(cheque.ChequeError, match=r"holds an unassigned code point U\+0378"):
        cheque.encode(_cheque(memo="\u0378"))


def test_a_writer_refuses_what_a_reader_would_refuse() -> None:
    for change in (
        {"amount_minor": 0},
        {"amount_minor": 2**63},
        {"serial": -1},
        {"currency_code": "EURO"},
        {"currency_code": "Eur"},
        {"drawee_bank_code": ""},
        {"account_reference": b""},
        {"account_reference": b"r" * 65},
        {"order_reference": "o" * 129},
        {"payee": "\u00e9" * 33},  # 66 bytes in UTF-8
    ):
        with pytest.raises(cheque.ChequeError) as refused:
            cheque.encode(_cheque(**change))
        assert refused.value.field == next(iter(change))


def test_a_certificate_refuses_an_empty_range_or_window() -> None:
    fields = VECTORS["account_certificate"]["fields"]
    good = _document(cheque.AccountCertificate, fields)
    for change, field in (
        ({"last_serial": 1000}, "last_serial"),
        ({"not_after": datetime.date(2025, 12, 31)}, "not_after"),
        ({"holder_public_key": bytes(31)}, "holder_public_key"),
        ({"bank_key_id": ""}, "bank_key_id"),
    ):
        with pytest.raises(cheque.ChequeError) as refused:
            cheque.encode(_replace(good, **change))
        assert refused.value.field == field


def _replace(document: Any, **change: Any) -> Any:
    return type(document)(**{**document.__dict__, **change})


def _cheque(**change: Any) -> cheque.Cheque:
    return _replace(_document(cheque.Cheque, VECTORS["cheques"][0]["fields"]), **change)


def _text(max_bytes: int, min_size: int = 0) -> st.SearchStrategy[str]:
    chars = st.characters(exclude_categories=("Cc", "Cs", "Cn"))
    return (
        st.text(chars, min_size=min_size, max_size=max_bytes // 4)
        .map(lambda s: unicodedata.normalize("NFC", s))
        .filter(lambda s: len(s.encode()) <= max_bytes and len(s) >= min_size)
    )


INT = st.integers(1, 2**63 - 1)
CHEQUES = st.builds(
    cheque.Cheque,
    drawee_bank_code=_text(cheque.BANK_CODE_MAX_BYTES, 1),
    account_reference=st.binary(min_size=1, max_size=cheque.ACCOUNT_REFERENCE_MAX_BYTES),
    serial=INT,
    payee=_text(cheque.PAYEE_MAX_BYTES, 1),
    amount_minor=INT,
    currency_code=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3),
    date=st.dates(),
    order_reference=_text(cheque.ORDER_REFERENCE_MAX_BYTES),
    memo=_text(cheque.MEMO_MAX_BYTES),
)


@given(CHEQUES)
def test_parse_is_the_inverse_of_encode(document: cheque.Cheque) -> None:
    encoded = cheque.encode(document)
    assert cheque.parse_cheque(encoded) == document
    assert cheque.encode(cheque.parse_cheque(encoded)) == encoded


@given(
    first=INT,
    span=st.integers(0, 10**6),
    key=st.binary(min_size=32, max_size=32),
    start=st.dates(max_value=datetime.date(9000, 1, 1)),
    days=st.integers(0, 3650),
    reference=st.binary(min_size=1, max_size=cheque.ACCOUNT_REFERENCE_MAX_BYTES),
)
def test_a_certificate_parses_back(
    first: int, span: int, key: bytes, start: datetime.date, days: int, reference: bytes
) -> None:
    certificate = cheque.AccountCertificate(
        "ALFAXX01",
        "k1",
        reference,
        key,
        first,
        min(first + span, 2**63 - 1),
        start,
        start + datetime.timedelta(days=days),
    )
    assert cheque.parse_certificate(cheque.encode(certificate)) == certificate


@given(st.binary(max_size=600))
def test_any_bytes_after_the_tag_parse_canonically_or_are_refused(tail: bytes) -> None:
    data = b"\x00\x10" + cheque.CHEQUE_TAG + tail
    try:
        document = cheque.parse_cheque(data)
    except cheque.ChequeError:
        return
    assert cheque.encode(document) == data
