"""The committed envelope test vectors agree with Python's envelope code; every
other language's own tests check themselves against the same file."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from google.protobuf import json_format
from interbank.v1 import common_pb2

from payment import envelope

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "clients" / "vectors" / "envelope.json").read_text())


def _generator():  # scripts/ is not a package
    spec = importlib.util.spec_from_file_location(
        "vectors", ROOT / "scripts" / "envelope_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_vectors_are_what_the_generator_makes() -> None:
    sealed = bytes.fromhex(VECTORS["sealed_instruction"])
    assert _generator().vectors(sealed) == VECTORS


def test_the_digest_text_hashes_to_the_order_digest() -> None:
    digest = hashlib.sha256(VECTORS["order_digest_text"].encode()).hexdigest()
    assert digest == VECTORS["order_digest"]


def test_the_instruction_json_serializes_to_the_instruction_bytes() -> None:
    instruction = json_format.ParseDict(VECTORS["instruction"], common_pb2.PaymentInstruction())
    assert instruction.SerializeToString().hex() == VECTORS["instruction_bytes"]
    assert instruction.order_digest.hex() == VECTORS["order_digest"]


def test_the_sealed_instruction_opens_only_for_its_order() -> None:
    key = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(VECTORS["gateway_private_key"]))
    sealed = bytes.fromhex(VECTORS["sealed_instruction"])
    opened = envelope.open_instruction(sealed, key, bytes.fromhex(VECTORS["order_digest"]))
    assert opened.hex() == VECTORS["instruction_bytes"]
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_instruction(sealed, key, bytes.fromhex(VECTORS["wrong_order_digest"]))


def test_the_dual_signature_verifies_with_the_public_key() -> None:
    public = ed25519.Ed25519PublicKey.from_public_bytes(
        bytes.fromhex(VECTORS["signing_public_key"])
    )
    digest = bytes.fromhex(VECTORS["order_digest"])
    instruction = bytes.fromhex(VECTORS["instruction_bytes"])
    signature = bytes.fromhex(VECTORS["dual_signature"])
    assert envelope.verify_dual(public, signature, digest, instruction)
    assert not envelope.verify_dual(public, signature, digest, instruction + b"\x00")
