"""Write clients/vectors/envelope.json: the payment envelope's test vectors.

Every client's own tests check its envelope code against these bytes, without
a network. Keys come from fixed seeds and the Ed25519 signature is
deterministic, so everything but the HPKE ciphertext (which has a fresh
ephemeral key each time it is sealed) is the same on every run; the committed
sealed_instruction is one such sealing and opens with the gateway key below.

    .venv/bin/python scripts/envelope_vectors.py [OUT]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from google.protobuf import json_format
from interbank.v1 import common_pb2

from payment import envelope

OUT = Path(__file__).resolve().parent.parent / "clients" / "vectors" / "envelope.json"

GATEWAY_SEED = bytes(range(1, 33))
SIGNING_SEED = bytes(range(101, 133))
ORDER = {
    "order_id": "0b6c3f0e-1f5a-4c1e-9a53-6f1d2b7c9e01",
    "merchant_name": "shop",
    "customer_name": "alice",
    "currency_code": "EUR",
    "total_minor": 12250,
    "lines": [
        {"sku": "book-001", "quantity": 2, "unit_price_minor": 4500},
        {"sku": "lamp-002", "quantity": 1, "unit_price_minor": 3250},
    ],
}


def _pem(key: x25519.X25519PrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def digest_text(order: dict) -> str:
    """The canonical text whose SHA-256 is the order digest."""
    head = [
        "interbank.v1.order",
        order["order_id"],
        order["merchant_name"],
        order["customer_name"],
        order["currency_code"],
        str(order["total_minor"]),
    ]
    body = [f"{x['sku']}:{x['quantity']}:{x['unit_price_minor']}" for x in order["lines"]]
    return "".join(line + "\n" for line in head + body)


def vectors(sealed: bytes | None = None) -> dict:
    """The vectors; sealed reuses a committed sealing instead of sealing afresh."""
    gateway = x25519.X25519PrivateKey.from_private_bytes(GATEWAY_SEED)
    signing = ed25519.Ed25519PrivateKey.from_private_bytes(SIGNING_SEED)
    lines = [
        envelope.OrderLineText(x["sku"], x["quantity"], x["unit_price_minor"])
        for x in ORDER["lines"]
    ]
    digest = envelope.order_digest(
        ORDER["order_id"],
        ORDER["merchant_name"],
        ORDER["customer_name"],
        ORDER["currency_code"],
        ORDER["total_minor"],
        lines,
    )
    instruction = common_pb2.PaymentInstruction(
        instrument=common_pb2.PaymentInstrument(
            kind=common_pb2.INSTRUMENT_KIND_CARD, bank_code="ALFAXX01", number="4000001234567899"
        ),
        amount=common_pb2.Money(amount_minor=ORDER["total_minor"], currency_code="EUR"),
        order_digest=digest,
        order_id=ORDER["order_id"],
        merchant_name=ORDER["merchant_name"],
        customer_name=ORDER["customer_name"],
        nonce=bytes.fromhex("00112233445566778899aabbccddeeff"),
    )
    instruction.created_at.FromSeconds(1_795_000_000)
    instruction.created_at.nanos = 123_000_000
    instruction_bytes = instruction.SerializeToString()
    if sealed is None:
        sealed = envelope.seal_instruction(instruction_bytes, gateway.public_key(), digest)
    wrong_digest = bytes(32)
    return {
        "about": (
            "Test vectors of the paynet payment envelope (docs/envelope.md). Hex is lowercase; "
            "instruction is the proto3 JSON of interbank.v1.PaymentInstruction. Regenerate with "
            "scripts/envelope_vectors.py; only sealed_instruction changes between runs."
        ),
        "order": ORDER,
        "order_digest_text": digest_text(ORDER),
        "order_digest": digest.hex(),
        "instruction": json_format.MessageToDict(instruction),
        "instruction_bytes": instruction_bytes.hex(),
        "gateway_private_key": GATEWAY_SEED.hex(),
        "gateway_private_key_pem": _pem(gateway),
        "gateway_public_key": envelope.raw_public(gateway.public_key()).hex(),
        "hpke_suite": {"kem_id": 32, "kdf_id": 1, "aead_id": 1, "mode": 0},
        "hpke_info": (envelope.HPKE_INFO_PREFIX + digest).hex(),
        "hpke_aad": "",
        "sealed_instruction": sealed.hex(),
        "wrong_order_digest": wrong_digest.hex(),
        "signing_private_key": SIGNING_SEED.hex(),
        "signing_private_key_pem": _pem(signing),
        "signing_public_key": envelope.raw_public(signing.public_key()).hex(),
        "dual_signature_message": envelope.dual_signature_message(digest, instruction_bytes).hex(),
        "dual_signature": envelope.sign_dual(signing, digest, instruction_bytes).hex(),
    }


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(vectors(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
