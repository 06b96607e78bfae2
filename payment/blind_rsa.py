"""RSA blind signatures, RFC 9474 (RSABSSA), for electronic cash (docs/blind-rsa.md).

The client prepares its message (:func:`prepare`, section 4.1), blinds it with the
signer's public key (:func:`blind`, 4.2) and sends the blinded message; the signer
signs it without learning anything of the message (:func:`blind_sign`, 4.3); the
client unblinds the answer into an ordinary RSASSA-PSS signature and checks it
(:func:`finalize`, 4.4), which anyone verifies with the public key (:func:`verify`,
4.5, done by ``cryptography``'s RSA-PSS verify).

``cryptography`` has no blind-signature API and no raw RSA operation, so EMSA-PSS
encoding (RFC 8017 section 9.1.1), blinding, the private-key operation and unblinding
are written here on the key's integers; SHA-384 is ``cryptography``'s, randomness
the operating system's. Paynet uses :data:`PSS_RANDOMIZED` with
:data:`DENOMINATION_KEY_BITS`-bit keys, one key per variant.

Errors (all :class:`BlindRSAError`, a ``ValueError`` with an UPPER_SNAKE ``reason``)::

    BlindRSAError
     +-- KeyUnsupported            modulus outside the allowed sizes
     +-- MessageTooLong            message over MAX_MESSAGE_BYTES
     +-- UnexpectedInputSize       a byte string that is not of the modulus' length
     +-- RepresentativeOutOfRange  a blinded message not below n, an inv not in 1..n-1
     +-- InvalidInput              the encoded message shares a factor with n
     +-- BlindingError             the blind has no inverse mod n (retry Blind)
     +-- SigningFailure            the private-key result failed its check
     +-- InvalidSignature          the signature does not verify with the key
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "DENOMINATION_KEY_BITS",
    "MAX_MESSAGE_BYTES",
    "MAX_MODULUS_BITS",
    "MIN_MODULUS_BITS",
    "MSG_PREFIX_BYTES",
    "PSSZERO_DETERMINISTIC",
    "PSSZERO_RANDOMIZED",
    "PSS_DETERMINISTIC",
    "PSS_RANDOMIZED",
    "VARIANTS",
    "BlindRSAError",
    "BlindingError",
    "InvalidInput",
    "InvalidSignature",
    "KeyUnsupported",
    "MessageTooLong",
    "RepresentativeOutOfRange",
    "SigningFailure",
    "UnexpectedInputSize",
    "Variant",
    "application_message",
    "blind",
    "blind_sign",
    "emsa_pss_encode",
    "finalize",
    "generate_signing_key",
    "prepare",
    "verify",
]

Rng = Callable[[int], bytes]
"""A source of n random bytes; :func:`os.urandom` unless a test injects its own."""

DENOMINATION_KEY_BITS = 3072
"""Modulus size of paynet's denomination signing keys."""
MIN_MODULUS_BITS = 2048
"""Smallest modulus accepted anywhere in this module."""
MAX_MODULUS_BITS = 4096
"""Largest modulus accepted: bounds the signer's work per request (the RFC vectors use 4096)."""
MAX_MESSAGE_BYTES = 65536
"""Longest message accepted by prepare, blind, finalize and verify (prefix included)."""
MSG_PREFIX_BYTES = 32
"""Length of the random prefix of PrepareRandomize (RFC 9474 section 4.1)."""

_HASH_BYTES = 48  # SHA-384


@dataclass(frozen=True)
class Variant:
    """A named RSABSSA variant (RFC 9474 section 5): SHA-384, MGF1-SHA-384 and these."""

    name: str
    """The RFC's name, such as ``RSABSSA-SHA384-PSS-Randomized``."""
    salt_length: int
    """EMSA-PSS salt length in bytes: 48 (PSS) or 0 (PSSZERO)."""
    randomized: bool
    """Whether the message is prepared with a random 32-byte prefix (PrepareRandomize)."""


PSS_RANDOMIZED = Variant("RSABSSA-SHA384-PSS-Randomized", _HASH_BYTES, True)
"""The variant paynet uses."""
PSSZERO_RANDOMIZED = Variant("RSABSSA-SHA384-PSSZERO-Randomized", 0, True)
PSS_DETERMINISTIC = Variant("RSABSSA-SHA384-PSS-Deterministic", _HASH_BYTES, False)
PSSZERO_DETERMINISTIC = Variant("RSABSSA-SHA384-PSSZERO-Deterministic", 0, False)
VARIANTS = {
    v.name: v
    for v in (PSS_RANDOMIZED, PSSZERO_RANDOMIZED, PSS_DETERMINISTIC, PSSZERO_DETERMINISTIC)
}
"""The four named variants of RFC 9474 section 5, by name."""


class BlindRSAError(ValueError):
    """An RSABSSA operation refused its input or failed; ``reason`` says which way."""

    reason = "BLIND_SIGNATURE_ERROR"


class KeyUnsupported(BlindRSAError):
    """The key's modulus is outside MIN_MODULUS_BITS..MAX_MODULUS_BITS."""

    reason = "KEY_UNSUPPORTED"


class MessageTooLong(BlindRSAError):
    """The message is longer than MAX_MESSAGE_BYTES ("message too long")."""

    reason = "MESSAGE_TOO_LONG"


class UnexpectedInputSize(BlindRSAError):
    """A blinded message, blind signature or signature is not of the modulus' length."""

    reason = "UNEXPECTED_INPUT_SIZE"


class RepresentativeOutOfRange(BlindRSAError):
    """An integer input is not below the modulus ("message representative out of range")."""

    reason = "REPRESENTATIVE_OUT_OF_RANGE"


class InvalidInput(BlindRSAError):
    """The encoded message is not co-prime with n: the key is broken ("invalid input")."""

    reason = "INVALID_INPUT"


class BlindingError(BlindRSAError):
    """The blind has no inverse mod n ("blinding error"); calling blind again is safe."""

    reason = "BLINDING_FAILED"


class SigningFailure(BlindRSAError):
    """The private-key operation gave a result that does not verify ("signing failure")."""

    reason = "SIGNING_FAILURE"


class InvalidSignature(BlindRSAError):
    """The signature does not verify with this public key ("invalid signature")."""

    reason = "SIGNATURE_INVALID"


def generate_signing_key(bits: int = DENOMINATION_KEY_BITS) -> rsa.RSAPrivateKey:
    """A fresh signing key (e = 65537) for one variant and one denomination only."""
    if not MIN_MODULUS_BITS <= bits <= MAX_MODULUS_BITS:
        raise KeyUnsupported(
            f"a {bits}-bit modulus is outside {MIN_MODULUS_BITS}..{MAX_MODULUS_BITS}"
        )
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def prepare(
    msg: bytes,
    randomized: bool = True,
    *,
    rng: Rng = os.urandom,
    msg_prefix_for_tests: bytes | None = None,
) -> bytes:
    """The message to blind and sign: 32 random bytes then msg if randomized, else msg
    (section 4.1). ``msg_prefix_for_tests`` replaces the random prefix: test vectors only."""
    if msg_prefix_for_tests is not None and not randomized:
        raise ValueError("a message prefix applies to the randomized variants only")
    if not randomized:
        _check_message(msg)
        return msg
    prefix = rng(MSG_PREFIX_BYTES) if msg_prefix_for_tests is None else msg_prefix_for_tests
    if len(prefix) != MSG_PREFIX_BYTES:
        raise UnexpectedInputSize(f"the message prefix is {len(prefix)} bytes; it must be 32")
    prepared = prefix + msg
    _check_message(prepared)
    return prepared


def application_message(prepared_msg: bytes, randomized: bool = True) -> bytes:
    """The message the application consumes: prepared_msg without its random prefix
    if randomized (section 4.5)."""
    if not randomized:
        return prepared_msg
    if len(prepared_msg) < MSG_PREFIX_BYTES:
        raise UnexpectedInputSize(f"a prepared message is at least {MSG_PREFIX_BYTES} bytes")
    return prepared_msg[MSG_PREFIX_BYTES:]


def emsa_pss_encode(message: bytes, em_bits: int, salt: bytes) -> bytes:
    """EMSA-PSS-ENCODE (RFC 8017 section 9.1.1) with SHA-384 and MGF1-SHA-384."""
    em_len = (em_bits + 7) // 8
    if em_len < _HASH_BYTES + len(salt) + 2:
        raise KeyUnsupported(f"an encoding of {em_bits} bits cannot hold a {len(salt)}-byte salt")
    m_hash = _sha384(message)
    h = _sha384(b"\x00" * 8 + m_hash + salt)
    db = b"\x00" * (em_len - len(salt) - _HASH_BYTES - 2) + b"\x01" + salt
    masked = bytearray(a ^ b for a, b in zip(db, _mgf1(h, len(db)), strict=True))
    masked[0] &= 0xFF >> (8 * em_len - em_bits)
    return bytes(masked) + h + b"\xbc"


def blind(
    public_key: rsa.RSAPublicKey,
    prepared_msg: bytes,
    *,
    variant: Variant = PSS_RANDOMIZED,
    rng: Rng = os.urandom,
    salt_for_tests: bytes | None = None,
    inv_for_tests: int | None = None,
) -> tuple[bytes, int]:
    """The blinded message for the signer and the inverse that unblinds its answer
    (section 4.2). ``salt_for_tests`` and ``inv_for_tests`` replace the random salt
    and blind: test vectors only (section 7.4: no chosen values in use)."""
    n, e = _public_numbers(public_key)
    _check_message(prepared_msg)
    salt = rng(variant.salt_length) if salt_for_tests is None else salt_for_tests
    if len(salt) != variant.salt_length:
        raise UnexpectedInputSize(
            f"the salt is {len(salt)} bytes; it must be {variant.salt_length}"
        )
    m = int.from_bytes(emsa_pss_encode(prepared_msg, n.bit_length() - 1, salt), "big")
    if math.gcd(m, n) != 1:
        raise InvalidInput("the encoded message is not co-prime with the modulus")
    if inv_for_tests is None:
        r = _random_below(n, rng)
        try:
            inv = pow(r, -1, n)
        except ValueError:
            raise BlindingError("the blind has no inverse modulo n; blind again") from None
    else:
        inv = _unit(inv_for_tests, n, "inv")
        r = pow(inv, -1, n)
    z = m * pow(r, e, n) % n
    return _int_to_bytes(z, _modulus_len(n)), inv


def blind_sign(
    private_key: rsa.RSAPrivateKey, blinded_msg: bytes, *, rng: Rng = os.urandom
) -> bytes:
    """The signer's answer: RSASP1 of blinded_msg, checked by RSAVP1 before it is
    released (section 4.3, against fault attacks). Refuses a blinded message that is
    not exactly the modulus' length or not below the modulus."""
    numbers = private_key.private_numbers()
    n, e = _public_numbers(private_key.public_key())
    k = _modulus_len(n)
    if len(blinded_msg) != k:
        raise UnexpectedInputSize(
            f"the blinded message is {len(blinded_msg)} bytes; it must be {k}"
        )
    m = int.from_bytes(blinded_msg, "big")
    if m >= n:
        raise RepresentativeOutOfRange("the blinded message is not below the modulus")
    s = _rsasp1(numbers, m, rng)
    if pow(s, e, n) != m:
        raise SigningFailure("the signature failed its check and was not released")
    return _int_to_bytes(s, k)


def finalize(
    public_key: rsa.RSAPublicKey,
    prepared_msg: bytes,
    blind_sig: bytes,
    inv: int,
    *,
    variant: Variant = PSS_RANDOMIZED,
) -> bytes:
    """The signature over prepared_msg: blind_sig unblinded with inv, returned only
    if it verifies with public_key (section 4.4). A blind_sig of the right length that
    is not the key's answer (tampered, another key's, not below n) is InvalidSignature."""
    n, _ = _public_numbers(public_key)
    _check_message(prepared_msg)
    k = _modulus_len(n)
    if len(blind_sig) != k:
        raise UnexpectedInputSize(f"the blind signature is {len(blind_sig)} bytes; it must be {k}")
    z = int.from_bytes(blind_sig, "big")
    if z >= n:  # not an answer under this key: for the client, as any wrong answer
        raise InvalidSignature("the blind signature is not below the modulus")
    sig = _int_to_bytes(z * _unit(inv, n, "inv") % n, k)
    verify(public_key, prepared_msg, sig, variant=variant)
    return sig


def verify(
    public_key: rsa.RSAPublicKey,
    prepared_msg: bytes,
    signature: bytes,
    *,
    variant: Variant = PSS_RANDOMIZED,
) -> None:
    """Raise InvalidSignature unless signature is public_key's RSASSA-PSS signature
    over prepared_msg with the variant's parameters (section 4.5)."""
    n, _ = _public_numbers(public_key)
    _check_message(prepared_msg)
    if len(signature) != _modulus_len(n):
        raise UnexpectedInputSize(
            f"the signature is {len(signature)} bytes; it must be {_modulus_len(n)}"
        )
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=variant.salt_length)
    try:
        public_key.verify(signature, prepared_msg, pss, hashes.SHA384())
    except _CryptographyInvalidSignature:
        raise InvalidSignature("the signature does not verify with this public key") from None


def _rsasp1(numbers: rsa.RSAPrivateNumbers, m: int, rng: Rng) -> int:
    """m^d mod n by the CRT, with the input and the exponents blinded (RFC 9474
    section 7.1): timing then says nothing useful of the input the client chose."""
    p, q = numbers.p, numbers.q
    n, e = numbers.public_numbers.n, numbers.public_numbers.e
    u = _random_below(n, rng)
    while math.gcd(u, n) != 1:  # never in practice: finding one factors n
        u = _random_below(n, rng)
    blinded = m * pow(u, e, n) % n
    dp = numbers.dmp1 + (p - 1) * int.from_bytes(rng(8), "big")
    dq = numbers.dmq1 + (q - 1) * int.from_bytes(rng(8), "big")
    sp = pow(blinded % p, dp, p)
    sq = pow(blinded % q, dq, q)
    s = sq + q * (numbers.iqmp * (sp - sq) % p)
    return s * pow(u, -1, n) % n


def _public_numbers(public_key: rsa.RSAPublicKey) -> tuple[int, int]:
    numbers = public_key.public_numbers()
    bits = numbers.n.bit_length()
    if not MIN_MODULUS_BITS <= bits <= MAX_MODULUS_BITS:
        raise KeyUnsupported(
            f"a {bits}-bit modulus is outside {MIN_MODULUS_BITS}..{MAX_MODULUS_BITS}"
        )
    return numbers.n, numbers.e


def _check_message(msg: bytes) -> None:
    if len(msg) > MAX_MESSAGE_BYTES:
        raise MessageTooLong(f"the message is {len(msg)} bytes; at most {MAX_MESSAGE_BYTES}")


def _unit(value: int, n: int, name: str) -> int:
    if not 0 < value < n:
        raise RepresentativeOutOfRange(f"{name} is not in 1..n-1")
    if math.gcd(value, n) != 1:
        raise BlindingError(f"{name} has no inverse modulo n")
    return value


def _random_below(n: int, rng: Rng) -> int:
    """Uniform in 1..n-1, by rejection sampling (random_integer_uniform(1, n))."""
    bits = n.bit_length()
    while True:
        r = int.from_bytes(rng(_modulus_len(n)), "big") >> (8 * _modulus_len(n) - bits)
        if 0 < r < n:
            return r


def _modulus_len(n: int) -> int:
    return (n.bit_length() + 7) // 8


def _int_to_bytes(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def _sha384(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA384())
    digest.update(data)
    return digest.finalize()


def _mgf1(seed: bytes, length: int) -> bytes:
    """MGF1 with SHA-384 (RFC 8017 appendix B.2.1)."""
    blocks = (length + _HASH_BYTES - 1) // _HASH_BYTES
    return b"".join(_sha384(seed + i.to_bytes(4, "big")) for i in range(blocks))[:length]
