"""Write clients/vectors/cheque.json: the electronic cheque's test vectors.

An account certificate, two cheques and an endorsement, each with its fields,
canonical encoding, signature and signed bytes (docs/cheque.md section 7),
and encodings a reader must refuse, each with the field at fault. Keys come
from fixed seeds and Ed25519 is deterministic, so every run writes the same
file. The encodings are built here a second time, field by field, and checked
against payment.cheque before anything is written.

    .venv/bin/python scripts/cheque_vectors.py [OUT]
"""

from __future__ import annotations

import datetime
import hashlib
import json
import struct
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from payment import cheque, envelope

OUT = Path(__file__).resolve().parent.parent / "clients" / "vectors" / "cheque.json"

DRAWER_SEED = bytes(range(101, 133))
"""The customer's signing key of clients/vectors/envelope.json."""
BANK_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
"""RFC 8032 section 7.1, TEST 1 (public key d75a9801...511a)."""
PAYEE_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
"""RFC 8032 section 7.1, TEST 2 (public key 3d4017c3...660c)."""
ACCOUNT_REFERENCE = bytes.fromhex("5f3c9a7e21d04b8c9e6f1a2b3c4d5e6f")


def _keys() -> dict[str, ed25519.Ed25519PrivateKey]:
    return {
        name: ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        for name, seed in (("drawer", DRAWER_SEED), ("bank", BANK_SEED), ("payee", PAYEE_SEED))
    }


def certificate(drawer: ed25519.Ed25519PublicKey) -> cheque.AccountCertificate:
    """The vectors' account certificate, of the drawer's key."""
    return cheque.AccountCertificate(
        bank_code="ALFAXX01",
        bank_key_id="alfa-cheque-2026",
        account_reference=ACCOUNT_REFERENCE,
        holder_public_key=envelope.raw_public(drawer),
        first_serial=1001,
        last_serial=1050,
        not_before=datetime.date(2026, 1, 1),
        not_after=datetime.date(2027, 12, 31),
    )


CHEQUES = (
    cheque.Cheque(
        drawee_bank_code="ALFAXX01",
        account_reference=ACCOUNT_REFERENCE,
        serial=1001,
        payee="shop",
        amount_minor=12250,
        currency_code="EUR",
        date=datetime.date(2026, 11, 18),
        order_reference="0b6c3f0e-1f5a-4c1e-9a53-6f1d2b7c9e01",
        memo="book-001 x2, lamp-002 x1",
    ),
    cheque.Cheque(
        drawee_bank_code="ALFAXX01",
        account_reference=ACCOUNT_REFERENCE,
        serial=1050,
        payee="Zo\u00eb's caf\u00e9",
        amount_minor=2**63 - 1,
        currency_code="JPY",
        date=datetime.date(2027, 2, 28),
        order_reference="",
        memo="2 \u00d7 croissant, 1 \u00d7 th\u00e9 \u2014 merci",
    ),
)
ABOUT_CHEQUES = (
    "the cheque paying the order of clients/vectors/envelope.json",
    "non-ASCII NFC text, the largest amount, no order reference, the book's last serial",
)


# -- an independent encoder, field by field, for the check and the refused encodings ----------


def _prefixed(raw: bytes) -> bytes:
    return struct.pack(">H", len(raw)) + raw


def _raw_cheque(**override: bytes) -> bytes:
    """Cheque 0's encoding with some fields' encoded bytes replaced (or removed with b"")."""
    c = CHEQUES[0]
    fields = {
        "tag": _prefixed(cheque.CHEQUE_TAG),
        "drawee_bank_code": _prefixed(c.drawee_bank_code.encode()),
        "account_reference": _prefixed(c.account_reference),
        "serial": struct.pack(">q", c.serial),
        "payee": _prefixed(c.payee.encode()),
        "amount_minor": struct.pack(">q", c.amount_minor),
        "currency_code": c.currency_code.encode(),
        "date": struct.pack(">HBB", c.date.year, c.date.month, c.date.day),
        "order_reference": _prefixed(c.order_reference.encode()),
        "memo": _prefixed(c.memo.encode()),
    }
    fields.update(override)
    return b"".join(fields.values())


def refused(certificate_bytes: bytes) -> list[dict[str, str]]:
    """Encodings a cheque reader must refuse, each with the field it must name."""
    good = _raw_cheque()
    cases = [
        ("one byte after the memo", good + b"\x00", "trailing bytes"),
        ("the memo cut short", good[:-1], "memo"),
        ("version 2", _raw_cheque(tag=_prefixed(b"paynet-cheque-v2")), "tag"),
        ("an account certificate, not a cheque", certificate_bytes, "tag"),
        ("memo not NFC (e + U+0301)", _raw_cheque(memo=_prefixed("Cafe\u0301".encode())), "memo"),
        ("memo of 141 bytes", _raw_cheque(memo=_prefixed(b"m" * 141)), "memo"),
        ("memo with a line feed", _raw_cheque(memo=_prefixed(b"a\nb")), "memo"),
        ("payee not UTF-8", _raw_cheque(payee=_prefixed(b"sh\xc3op")), "payee"),
        ("payee empty", _raw_cheque(payee=_prefixed(b"")), "payee"),
        (
            "bank code of 65 bytes",
            _raw_cheque(drawee_bank_code=_prefixed(b"B" * 65)),
            "drawee_bank_code",
        ),
        ("amount zero", _raw_cheque(amount_minor=struct.pack(">q", 0)), "amount_minor"),
        ("amount negative", _raw_cheque(amount_minor=struct.pack(">q", -12250)), "amount_minor"),
        ("serial zero", _raw_cheque(serial=struct.pack(">q", 0)), "serial"),
        ("currency in lower case", _raw_cheque(currency_code=b"eur"), "currency_code"),
        ("30 February", _raw_cheque(date=struct.pack(">HBB", 2026, 2, 30)), "date"),
    ]
    return [{"about": a, "bytes": raw.hex(), "field": field} for a, raw, field in cases]


# -- the vectors ------------------------------------------------------------------------------


def _fields(document: cheque.Cheque | cheque.AccountCertificate | cheque.Endorsement) -> Any:
    return {
        name: value.hex()
        if isinstance(value, bytes)
        else value.isoformat()
        if isinstance(value, datetime.date)
        else value
        for name, value in asdict(document).items()
    }


def _signed(
    key: ed25519.Ed25519PrivateKey,
    document: cheque.Cheque | cheque.AccountCertificate | cheque.Endorsement,
) -> dict[str, Any]:
    encoded = cheque.encode(document)
    signed = cheque.sign(key, document)
    return {
        "fields": _fields(document),
        "encoded": encoded.hex(),
        "signature_message": cheque.signature_message(document).hex(),
        "signature": signed[len(encoded) :].hex(),
        "signed": signed.hex(),
    }


def vectors() -> dict[str, Any]:
    """The vectors."""
    keys = _keys()
    cert = certificate(keys["drawer"].public_key())
    if cheque.encode(CHEQUES[0]) != _raw_cheque():
        raise SystemExit("payment.cheque and this script encode the cheque differently")
    cheques = []
    for about, document in zip(ABOUT_CHEQUES, CHEQUES, strict=True):
        entry = {"about": about, **_signed(keys["drawer"], document)}
        entry["digest"] = cheque.cheque_digest(bytes.fromhex(entry["signed"])).hex()
        cheques.append(entry)
    endorsement = cheque.Endorsement(
        cheque_digest=hashlib.sha256(bytes.fromhex(cheques[0]["signed"])).digest(),
        payee="shop",
        pay_to_bank_code="BETAXX02",
    )
    return {
        "about": (
            "Test vectors of the paynet electronic cheque (docs/cheque.md). Hex is lowercase, "
            "dates are ISO 8601 calendar dates. Regenerate with scripts/cheque_vectors.py; "
            "every run writes the same file."
        ),
        "contexts": {
            "cheque": cheque.CHEQUE_CONTEXT.hex(),
            "account_certificate": cheque.CERTIFICATE_CONTEXT.hex(),
            "endorsement": cheque.ENDORSEMENT_CONTEXT.hex(),
        },
        "keys": {
            name: {
                "private_key": seed.hex(),
                "public_key": envelope.raw_public(keys[name].public_key()).hex(),
            }
            for name, seed in (("drawer", DRAWER_SEED), ("bank", BANK_SEED), ("payee", PAYEE_SEED))
        },
        "account_certificate": _signed(keys["bank"], cert),
        "cheques": cheques,
        "endorsement": {"about": "the payee's endorsement of cheques[0]"}
        | _signed(keys["payee"], endorsement),
        "refused_cheques": refused(cheque.encode(cert)),
    }


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(vectors(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
