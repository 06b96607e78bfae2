"""One-time codes for step-up challenges: 6-digit HOTP (RFC 4226) with HMAC-SHA-256; only the issuer
that generates a code ever verifies it, so no authenticator-app compatibility is needed.

Each challenge gets a fresh random 160-bit secret and uses counter 0, so each
code is single-use by construction. Only the issuer holds the secret, and it is
wiped once the challenge ends (answered, locked or expired).
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.hotp import HOTP

__all__ = ["CODE_DIGITS", "code_for", "new_secret", "verify_code"]

CODE_DIGITS = 6


def new_secret() -> bytes:
    """A fresh HOTP secret (20 random bytes)."""
    return os.urandom(20)


def code_for(secret: bytes) -> str:
    """The 6-digit code of a secret."""
    return HOTP(secret, CODE_DIGITS, SHA256()).generate(0).decode()


def verify_code(secret: bytes, code: str) -> bool:
    """True if code is the secret's code (constant-time compare)."""
    if len(code) != CODE_DIGITS or not code.isdigit():
        return False
    try:
        HOTP(secret, CODE_DIGITS, SHA256()).verify(code.encode(), 0)
    except InvalidToken:
        return False
    return True
