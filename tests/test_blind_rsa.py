"""RSA blind signatures (payment.blind_rsa) against RFC 9474: the RFC's own test
vectors (tests/vectors/rfc9474.json, Appendix A), round trips with a fresh key, the
refusals the RFC asks for, and blindness properties over random messages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature as CryptographyInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payment import blind_rsa

VECTORS: list[dict[str, str]] = json.loads(
    (Path(__file__).parent / "vectors" / "rfc9474.json").read_text()
)["vectors"]


def _hex(vector: dict[str, str], field: str) -> bytes:
    return bytes.fromhex(vector[field])


def _int(vector: dict[str, str], field: str) -> int:
    return int(vector[field], 16)


def _vector_key(vector: dict[str, str]) -> rsa.RSAPrivateKey:
    p, q, d = _int(vector, "p"), _int(vector, "q"), _int(vector, "d")
    public = rsa.RSAPublicNumbers(_int(vector, "e"), _int(vector, "n"))
    return rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=public,
    ).private_key()


def _standard_verify(
    public_key: rsa.RSAPublicKey, message: bytes, signature: bytes, salt_length: int
) -> None:
    """cryptography's ordinary RSA-PSS verify, with nothing of blind_rsa in it."""
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=salt_length)
    public_key.verify(signature, message, pss, hashes.SHA384())


def _scripted(*chunks: bytes) -> Callable[[int], bytes]:
    """An rng that hands out the given byte strings in turn, each of the size asked for."""
    queue = list(chunks)

    def rng(size: int) -> bytes:
        chunk = queue.pop(0)
        assert len(chunk) == size
        return chunk

    return rng


VECTOR_KEY = _vector_key(VECTORS[0])


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit key, generated once for the module."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# -- RFC 9474 Appendix A ---------------------------------------------------------


def test_the_vectors_are_the_four_named_variants_of_rfc_9474() -> None:
    assert [v["variant"] for v in VECTORS] == list(blind_rsa.VARIANTS)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["variant"] for v in VECTORS])
def test_rfc_9474_vector_is_reproduced_step_by_step(vector: dict[str, str]) -> None:
    variant = blind_rsa.VARIANTS[vector["variant"]]
    private_key = _vector_key(vector)
    public_key = private_key.public_key()
    n = _int(vector, "n")
    assert _int(vector, "p") * _int(vector, "q") == n

    prefix = _hex(vector, "msg_prefix") if variant.randomized else None
    prepared = blind_rsa.prepare(
        _hex(vector, "msg"), variant.randomized, msg_prefix_for_tests=prefix
    )
    assert prepared == _hex(vector, "prepared_msg")
    assert blind_rsa.application_message(prepared, variant.randomized) == _hex(vector, "msg")

    salt = _hex(vector, "salt")
    assert len(salt) == variant.salt_length
    encoded = blind_rsa.emsa_pss_encode(prepared, n.bit_length() - 1, salt)
    assert encoded == _hex(vector, "encoded_msg")

    blinded, inv = blind_rsa.blind(
        public_key,
        prepared,
        variant=variant,
        salt_for_tests=salt,
        inv_for_tests=_int(vector, "inv"),
    )
    assert blinded == _hex(vector, "blinded_msg")
    assert inv == _int(vector, "inv")

    blind_sig = blind_rsa.blind_sign(private_key, blinded)
    assert blind_sig == _hex(vector, "blind_sig")

    sig = blind_rsa.finalize(public_key, prepared, blind_sig, inv, variant=variant)
    assert sig == _hex(vector, "sig")
    _standard_verify(public_key, prepared, sig, variant.salt_length)
    blind_rsa.verify(public_key, prepared, sig, variant=variant)


# -- round trips with a fresh key ---------------------------------------------------


@pytest.mark.parametrize("variant", blind_rsa.VARIANTS.values(), ids=list(blind_rsa.VARIANTS))
def test_a_finalized_signature_verifies_with_cryptographys_standard_rsa_pss(
    key: rsa.RSAPrivateKey, variant: blind_rsa.Variant
) -> None:
    public_key = key.public_key()
    prepared = blind_rsa.prepare(b"coin: 5 EUR", variant.randomized)
    blinded, inv = blind_rsa.blind(public_key, prepared, variant=variant)
    sig = blind_rsa.finalize(
        public_key, prepared, blind_rsa.blind_sign(key, blinded), inv, variant=variant
    )

    _standard_verify(public_key, prepared, sig, variant.salt_length)
    assert blind_rsa.application_message(prepared, variant.randomized) == b"coin: 5 EUR"


def test_paynets_variant_is_pss_randomized_with_a_32_byte_prefix_and_48_byte_salt(
    key: rsa.RSAPrivateKey,
) -> None:
    assert blind_rsa.PSS_RANDOMIZED.salt_length == 48
    first, second = blind_rsa.prepare(b"coin"), blind_rsa.prepare(b"coin")
    assert len(first) == 32 + 4 and first.endswith(b"coin") and first != second
    blinded, inv = blind_rsa.blind(key.public_key(), first)
    sig = blind_rsa.finalize(key.public_key(), first, blind_rsa.blind_sign(key, blinded), inv)
    _standard_verify(key.public_key(), first, sig, salt_length=48)


def test_blinding_the_same_message_twice_gives_unrelated_blinded_messages(
    key: rsa.RSAPrivateKey,
) -> None:
    prepared = blind_rsa.prepare(b"coin", randomized=False)
    first, _ = blind_rsa.blind(key.public_key(), prepared, variant=blind_rsa.PSS_DETERMINISTIC)
    second, _ = blind_rsa.blind(key.public_key(), prepared, variant=blind_rsa.PSS_DETERMINISTIC)
    assert first != second


def test_the_default_key_for_denominations_is_3072_bits() -> None:
    assert blind_rsa.DENOMINATION_KEY_BITS == 3072
    with pytest.raises(blind_rsa.KeyUnsupported):
        blind_rsa.generate_signing_key(1024)


# -- what fails to finalize or verify ------------------------------------------------


@pytest.fixture(scope="module")
def signed(key: rsa.RSAPrivateKey) -> tuple[bytes, bytes, int]:
    """A prepared message, the signer's blind signature over it and its inverse."""
    prepared = blind_rsa.prepare(b"coin: 2 EUR")
    blinded, inv = blind_rsa.blind(key.public_key(), prepared)
    return prepared, blind_rsa.blind_sign(key, blinded), inv


def test_a_tampered_blind_signature_fails_to_finalize(
    key: rsa.RSAPrivateKey, signed: tuple[bytes, bytes, int]
) -> None:
    prepared, blind_sig, inv = signed
    tampered = bytearray(blind_sig)
    tampered[-1] ^= 0x01
    with pytest.raises(blind_rsa.InvalidSignature) as refused:
        blind_rsa.finalize(key.public_key(), prepared, bytes(tampered), inv)
    assert refused.value.reason == "SIGNATURE_INVALID"


def test_a_blind_signature_from_another_key_fails_to_finalize(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    prepared = blind_rsa.prepare(b"coin: 2 EUR")
    blinded, inv = blind_rsa.blind(key.public_key(), prepared)
    wrong = blind_rsa.blind_sign(other_key, blinded)
    with pytest.raises(blind_rsa.InvalidSignature):
        blind_rsa.finalize(key.public_key(), prepared, wrong, inv)


def test_finalizing_against_the_wrong_public_key_fails(
    other_key: rsa.RSAPrivateKey, signed: tuple[bytes, bytes, int]
) -> None:
    prepared, blind_sig, inv = signed
    with pytest.raises(blind_rsa.InvalidSignature):
        blind_rsa.finalize(other_key.public_key(), prepared, blind_sig, inv)


def test_finalizing_with_another_message_or_inverse_fails(
    key: rsa.RSAPrivateKey, signed: tuple[bytes, bytes, int]
) -> None:
    prepared, blind_sig, inv = signed
    with pytest.raises(blind_rsa.InvalidSignature):
        blind_rsa.finalize(key.public_key(), prepared[:-1] + b"3", blind_sig, inv)
    with pytest.raises(blind_rsa.InvalidSignature):
        blind_rsa.finalize(key.public_key(), prepared, blind_sig, inv + 2)


def test_a_signature_does_not_verify_under_another_variant(
    key: rsa.RSAPrivateKey, signed: tuple[bytes, bytes, int]
) -> None:
    prepared, blind_sig, inv = signed
    sig = blind_rsa.finalize(key.public_key(), prepared, blind_sig, inv)
    with pytest.raises(blind_rsa.InvalidSignature):
        blind_rsa.verify(key.public_key(), prepared, sig, variant=blind_rsa.PSSZERO_RANDOMIZED)
    with pytest.raises(CryptographyInvalidSignature):
        _standard_verify(key.public_key(), prepared, sig, salt_length=0)


def test_the_signer_releases_no_signature_that_fails_its_check(
    key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    blinded, _ = blind_rsa.blind(key.public_key(), blind_rsa.prepare(b"coin"))
    genuine = blind_rsa._rsasp1

    def faulty(numbers: rsa.RSAPrivateNumbers, m: int, rng: Any) -> int:
        return genuine(numbers, m, rng) ^ 1  # one flipped bit, as a hardware fault would

    monkeypatch.setattr(blind_rsa, "_rsasp1", faulty)
    with pytest.raises(blind_rsa.SigningFailure) as refused:
        blind_rsa.blind_sign(key, blinded)
    assert refused.value.reason == "SIGNING_FAILURE"


# -- inputs out of range ------------------------------------------------------------


def test_blind_sign_refuses_a_blinded_message_of_the_wrong_length(key: rsa.RSAPrivateKey) -> None:
    for size in (0, 255, 257):
        with pytest.raises(blind_rsa.UnexpectedInputSize):
            blind_rsa.blind_sign(key, b"\x01" * size)


def test_blind_sign_refuses_a_blinded_message_not_below_the_modulus(
    key: rsa.RSAPrivateKey,
) -> None:
    n = key.public_key().public_numbers().n
    for value in (n, n + 1, 2**2048 - 1):
        with pytest.raises(blind_rsa.RepresentativeOutOfRange) as refused:
            blind_rsa.blind_sign(key, value.to_bytes(256, "big"))
        assert refused.value.reason == "REPRESENTATIVE_OUT_OF_RANGE"


def test_finalize_refuses_a_blind_signature_not_below_n_or_of_the_wrong_length(
    key: rsa.RSAPrivateKey, signed: tuple[bytes, bytes, int]
) -> None:
    prepared, blind_sig, inv = signed
    n = key.public_key().public_numbers().n
    with pytest.raises(blind_rsa.InvalidSignature):
        blind_rsa.finalize(key.public_key(), prepared, n.to_bytes(256, "big"), inv)
    with pytest.raises(blind_rsa.UnexpectedInputSize):
        blind_rsa.finalize(key.public_key(), prepared, blind_sig[1:], inv)
    with pytest.raises(blind_rsa.UnexpectedInputSize):
        blind_rsa.verify(key.public_key(), prepared, blind_sig + b"\x00")


def test_finalize_refuses_an_inverse_out_of_range_or_not_invertible(
    key: rsa.RSAPrivateKey, signed: tuple[bytes, bytes, int]
) -> None:
    prepared, blind_sig, _ = signed
    numbers = key.private_numbers()
    for inv in (0, -1, numbers.public_numbers.n):
        with pytest.raises(blind_rsa.RepresentativeOutOfRange):
            blind_rsa.finalize(key.public_key(), prepared, blind_sig, inv)
    with pytest.raises(blind_rsa.BlindingError):
        blind_rsa.finalize(key.public_key(), prepared, blind_sig, numbers.p)


def test_messages_over_the_bound_are_refused(
    key: rsa.RSAPrivateKey, signed: tuple[bytes, bytes, int]
) -> None:
    _, blind_sig, inv = signed
    too_long = b"\x00" * (blind_rsa.MAX_MESSAGE_BYTES + 1)
    with pytest.raises(blind_rsa.MessageTooLong):
        blind_rsa.prepare(too_long[blind_rsa.MSG_PREFIX_BYTES :])
    with pytest.raises(blind_rsa.MessageTooLong):
        blind_rsa.blind(key.public_key(), too_long)
    with pytest.raises(blind_rsa.MessageTooLong):
        blind_rsa.finalize(key.public_key(), too_long, blind_sig, inv)
    limit = b"\x00" * blind_rsa.MAX_MESSAGE_BYTES
    assert blind_rsa.prepare(limit, randomized=False) == limit


def test_keys_outside_the_allowed_sizes_are_refused() -> None:
    # A 1024-bit key, which blind_rsa must refuse.
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    with pytest.raises(blind_rsa.KeyUnsupported) as refused:
        blind_rsa.blind(small.public_key(), b"coin")
    assert refused.value.reason == "KEY_UNSUPPORTED"
    with pytest.raises(blind_rsa.KeyUnsupported):
        blind_rsa.blind_sign(small, b"\x01" * 128)
    large = rsa.RSAPublicNumbers(65537, 2**4200 + 1).public_key()
    with pytest.raises(blind_rsa.KeyUnsupported):
        blind_rsa.blind(large, b"coin")


def test_test_hooks_are_checked_like_random_values(key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(blind_rsa.UnexpectedInputSize):
        blind_rsa.prepare(b"coin", msg_prefix_for_tests=b"\x00" * 31)
    with pytest.raises(ValueError, match="randomized"):
        blind_rsa.prepare(b"coin", randomized=False, msg_prefix_for_tests=b"\x00" * 32)
    with pytest.raises(blind_rsa.UnexpectedInputSize):
        blind_rsa.blind(key.public_key(), b"coin", salt_for_tests=b"\x00" * 32)
    with pytest.raises(blind_rsa.RepresentativeOutOfRange):
        blind_rsa.blind(key.public_key(), b"coin", inv_for_tests=0)


# A "key" whose modulus is divisible by 3: what a broken or malicious signer key
# looks like to blind, which must notice rather than blind with it.
_BROKEN_N = 3 * ((2**2047 + 2**2046) // 3 | 1)
_BROKEN_KEY = rsa.RSAPublicNumbers(65537, _BROKEN_N).public_key()


def _salt_encoding(m_divisible_by_three: bool) -> bytes:
    for counter in range(1000):
        salt = hashlib.sha384(counter.to_bytes(4, "big")).digest()
        encoded = blind_rsa.emsa_pss_encode(b"coin", _BROKEN_N.bit_length() - 1, salt)
        if (int.from_bytes(encoded, "big") % 3 == 0) == m_divisible_by_three:
            return salt
    raise AssertionError("no such salt")


def test_blind_refuses_an_encoded_message_sharing_a_factor_with_the_modulus() -> None:
    assert _BROKEN_N.bit_length() == 2048
    salt = _salt_encoding(m_divisible_by_three=True)
    with pytest.raises(blind_rsa.InvalidInput) as refused:
        blind_rsa.blind(
            _BROKEN_KEY, b"coin", variant=blind_rsa.PSS_DETERMINISTIC, rng=_scripted(salt)
        )
    assert refused.value.reason == "INVALID_INPUT"


def test_blind_reports_a_blind_without_inverse_as_a_blinding_error() -> None:
    salt = _salt_encoding(m_divisible_by_three=False)
    r = (15).to_bytes(256, "big")  # shares the factor 3 with the modulus
    with pytest.raises(blind_rsa.BlindingError) as refused:
        blind_rsa.blind(
            _BROKEN_KEY, b"coin", variant=blind_rsa.PSS_DETERMINISTIC, rng=_scripted(salt, r)
        )
    assert refused.value.reason == "BLINDING_FAILED"


# -- properties over random messages, with the RFC vectors' (4096-bit) key -----------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=st.binary(min_size=0, max_size=512), randomized=st.booleans())
def test_any_message_round_trips_and_its_blinded_form_hides_it(
    message: bytes, randomized: bool
) -> None:
    public_key = VECTOR_KEY.public_key()
    n, e = public_key.public_numbers().n, public_key.public_numbers().e
    variant = blind_rsa.PSS_RANDOMIZED if randomized else blind_rsa.PSS_DETERMINISTIC
    prepared = blind_rsa.prepare(message, randomized)

    blinded, inv = blind_rsa.blind(public_key, prepared, variant=variant)
    sig = blind_rsa.finalize(
        public_key, prepared, blind_rsa.blind_sign(VECTOR_KEY, blinded), inv, variant=variant
    )
    _standard_verify(public_key, prepared, sig, salt_length=48)

    # The encoding that was blinded, recovered with what only the client holds.
    encoded = (int.from_bytes(blinded, "big") * pow(inv, e, n) % n).to_bytes(512, "big")
    assert encoded.endswith(b"\xbc")
    assert blinded != encoded
    tail_hash = encoded[-49:-1]  # H = Hash(00*8 || mHash || salt)
    message_hash = hashlib.sha384(prepared).digest()
    assert tail_hash not in blinded and message_hash not in blinded
    if len(prepared) >= 16:
        assert prepared not in blinded
