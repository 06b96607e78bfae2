"""The envelope across languages: what each language seals, the Python
gateway opens; what Python seals, each language's opener opens."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from google.protobuf import json_format
from interbank.v1 import authorization_pb2, common_pb2

from gateway.checks import GatewayKey, check_payment
from ops.devnet import DEV_NETWORK
from payment import envelope, errors
from payment.config import load_network
from payment.pki import key_id
from tests.clients.conftest import Language

NETWORK = load_network(DEV_NETWORK)
EXIT_UNREADABLE = 3


def _pem(key: x25519.X25519PrivateKey | ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _instruction(kind: int = common_pb2.INSTRUMENT_KIND_CARD) -> common_pb2.PaymentInstruction:
    """A fresh instruction for a random order of the dev network's shop."""
    order_id = str(uuid.uuid4())
    digest = envelope.order_digest(
        order_id, "shop", "alice", "EUR", 7750, [envelope.OrderLineText("lamp-002", 2, 3875)]
    )
    instruction = common_pb2.PaymentInstruction(
        instrument=common_pb2.PaymentInstrument(
            kind=kind, bank_code="ALFAXX01", number="4000001234567899"
        ),
        amount=common_pb2.Money(amount_minor=7750, currency_code="EUR"),
        order_digest=digest,
        order_id=order_id,
        merchant_name="shop",
        customer_name="alice",
        nonce=os.urandom(16),
    )
    instruction.created_at.FromDatetime(dt.datetime.now(dt.UTC))
    return instruction


def _tool(client: Language, verb: str, request: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*client.envelope, verb],
        cwd=client.directory,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-3000:]}"
    return json.loads(done.stdout)


def test_an_instruction_sealed_in_the_language_is_opened_by_the_python_gateway(
    client: Language,
) -> None:
    gateway = x25519.X25519PrivateKey.generate()
    signing = ed25519.Ed25519PrivateKey.generate()
    instruction = _instruction(common_pb2.INSTRUMENT_KIND_BANK_ACCOUNT)
    sealed = _ok(
        _tool(
            client,
            "seal",
            {
                "gateway_public_key": envelope.raw_public(gateway.public_key()).hex(),
                "signing_key_pem": _pem(signing),
                "instruction": json_format.MessageToDict(instruction),
            },
        )
    )
    # Protobuf encoding is the same bytes in both languages for the same message.
    assert sealed["instruction_bytes"] == instruction.SerializeToString().hex()

    key = GatewayKey(gateway, key_id(gateway.public_key()))
    request = authorization_pb2.AuthorizePaymentRequest(
        request_id=str(uuid.uuid4()),
        order_id=instruction.order_id,
        amount=instruction.amount,
        order_digest=instruction.order_digest,
        payment=common_pb2.SealedPayment(
            sealed_instruction=bytes.fromhex(sealed["sealed_instruction"]),
            dual_signature=bytes.fromhex(sealed["dual_signature"]),
            gateway_key_id=key.key_id,
        ),
    )
    checked = check_payment(request, "shop", NETWORK, key)
    assert checked.instruction.hex() == sealed["instruction_bytes"]
    assert common_pb2.PaymentInstruction.FromString(checked.instruction) == instruction
    assert checked.issuer.name == "alfa"
    assert envelope.verify_dual(
        signing.public_key(), checked.dual_signature, instruction.order_digest, checked.instruction
    )

    # The same sealing for another order's digest is refused by the gateway.
    other = authorization_pb2.AuthorizePaymentRequest()
    other.CopyFrom(request)
    other.order_digest = bytes(32)
    with pytest.raises(errors.InvalidArgument) as refused:
        check_payment(other, "shop", NETWORK, key)
    assert refused.value.reason == "INSTRUCTION_UNREADABLE"


def test_an_instruction_sealed_by_python_is_opened_in_the_language(client: Language) -> None:
    gateway = x25519.X25519PrivateKey.generate()
    signing = ed25519.Ed25519PrivateKey.generate()
    instruction = _instruction()
    data = instruction.SerializeToString()
    digest = instruction.order_digest
    sealed = envelope.seal_instruction(data, gateway.public_key(), digest)
    signature = envelope.sign_dual(signing, digest, data)
    request = {
        "gateway_private_key_pem": _pem(gateway),
        "order_digest": digest.hex(),
        "sealed_instruction": sealed.hex(),
        "dual_signature": signature.hex(),
        "signing_public_key": envelope.raw_public(signing.public_key()).hex(),
    }
    opened = _ok(_tool(client, "open", request))
    assert opened["instruction_bytes"] == data.hex()
    parsed = json_format.ParseDict(opened["instruction"], common_pb2.PaymentInstruction())
    assert parsed == instruction
    assert opened["signature_valid"] is True

    forged = bytearray(signature)
    forged[0] ^= 0x01
    opened = _ok(_tool(client, "open", {**request, "dual_signature": forged.hex()}))
    assert opened["signature_valid"] is False

    for wrong in (
        {"order_digest": bytes(32).hex()},  # sealed for another order
        {"sealed_instruction": sealed[:-1].hex() + f"{sealed[-1] ^ 1:02x}"},  # tampered tag
    ):
        done = _tool(client, "open", {**request, **wrong})
        assert done.returncode == EXIT_UNREADABLE, done.stderr
        assert done.stderr.startswith("INSTRUCTION_UNREADABLE"), done.stderr
        assert data.hex() not in done.stdout + done.stderr
