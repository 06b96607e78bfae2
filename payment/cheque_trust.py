"""Who vouches for a cheque: the network's published keys and the checks of docs/cheque.md
section 6, shared by the payee (the merchant, before endorsing), the acquirer (on
deposit) and the drawee bank (on presentment).

Keys are published in the network's PKI directory (:class:`payment.pki.Pki`): a
bank's cheque-signing public keys as ``<bank>/cheque-keys/<key id>.pub`` and a
holder's Ed25519 key as ``<holder>/signing.pub``. They are read when needed, so
a key added by ``paynet pki rotate-cheque-key`` counts at once, without a
restart, and a withdrawn one (its .pub deleted) stops counting.

Every check raises :class:`ChequeRefused` with the reason a party answers: the
return reasons of the cheque flow (SIGNATURE_INVALID, POST_DATED, STALE_DATED,
ENDORSEMENT_INVALID) and the payee's own (DRAWEE_KEY_UNKNOWN, PAYEE_MISMATCH,
AMOUNT_MISMATCH, ORDER_REFERENCE_MISMATCH). The messages name the check, never
a key or a document's bytes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from payment import cheque
from payment.cheque import AccountCertificate, Cheque, ChequeError, Endorsement
from payment.config import NetworkConfig, Role
from payment.envelope import load_ed25519_private
from payment.pki import Pki

__all__ = [
    "ChequeKeys",
    "ChequeRefused",
    "VerifiedCheque",
    "check_dates",
    "check_endorsement",
    "read_verified",
]


class ChequeRefused(Exception):
    """A cheque (or its endorsement) failed a check; reason is the UPPER_SNAKE answer."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class VerifiedCheque:
    """A cheque whose certificate and drawer signature verified."""

    cheque: Cheque
    """The cheque."""
    certificate: AccountCertificate
    """Its account certificate."""
    signed_cheque: bytes
    """The cheque's signed bytes, as received."""
    signed_certificate: bytes
    """The certificate's signed bytes, as received."""


class ChequeKeys:
    """The network's published cheque keys, read from its PKI directory on each use."""

    def __init__(self, network: NetworkConfig) -> None:
        self._pki = Pki(network.pki_dir)
        self._banks = {
            n.bank_code: n.name
            for n in network.nodes_with_role(Role.BANK)
            if n.bank_code is not None
        }

    def bank_key(self, bank_code: str, key_id: str) -> ed25519.Ed25519PublicKey | None:
        """The published cheque-signing key key_id of the bank with bank_code, or None."""
        bank = self._banks.get(bank_code)
        if bank is None or not key_id.startswith(f"{bank_code}-") or "/" in key_id:
            return None
        return _public(self._pki.cheque_keys(bank) / f"{key_id}.pub")

    def holder_key(self, name: str) -> ed25519.Ed25519PublicKey | None:
        """A holder's published Ed25519 key (a merchant's endorsement key), or None."""
        if not name or "/" in name or name.startswith("."):
            return None
        return _public(self._pki.signing_public_key(name))

    def signing_key(self, bank: str) -> tuple[str, ed25519.Ed25519PrivateKey]:
        """A bank's newest cheque-signing key and its id (for the books it issues now)."""
        folder = self._pki.cheque_keys(bank)
        published = sorted(folder.glob("*.pub"))
        if not published:
            raise FileNotFoundError(f"{folder} holds no cheque-signing key")
        newest = published[-1]
        key = load_ed25519_private(newest.with_suffix(".key").read_bytes())
        return newest.stem, key


def _public(path: Path) -> ed25519.Ed25519PublicKey | None:
    try:
        raw = bytes.fromhex(path.read_text(encoding="ascii").strip())
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except (OSError, ValueError):
        return None


def read_verified(
    signed_cheque: bytes, signed_certificate: bytes, keys: ChequeKeys
) -> VerifiedCheque:
    """Checks 1 to 4 of docs/cheque.md section 6: both documents parse, the certificate
    verifies with a published key of its bank, the cheque matches it (bank, account
    reference, date within its validity, serial within its book) and verifies with its
    holder's key. DRAWEE_KEY_UNKNOWN for an unpublished key; SIGNATURE_INVALID otherwise.
    """
    try:
        signed = cheque.read_cheque(signed_cheque)
        certified = cheque.read_certificate(signed_certificate)
    except ChequeError as exc:
        raise ChequeRefused(
            "SIGNATURE_INVALID", f"{exc.document}: {exc.field} is invalid"
        ) from None
    certificate = certified.document
    bank_key = keys.bank_key(certificate.bank_code, certificate.bank_key_id)
    if bank_key is None:
        raise ChequeRefused(
            "DRAWEE_KEY_UNKNOWN",
            f"bank {certificate.bank_code!r} publishes no cheque-signing key"
            f" {certificate.bank_key_id!r}",
        )
    written = signed.document
    try:
        cheque.verify(bank_key, certified)
        holder = ed25519.Ed25519PublicKey.from_public_bytes(certificate.holder_public_key)
        cheque.verify(holder, signed)
    except (ChequeError, ValueError):
        raise ChequeRefused(
            "SIGNATURE_INVALID", "a signature does not verify: the cheque is not as signed"
        ) from None
    mismatch = (
        written.drawee_bank_code != certificate.bank_code
        or written.account_reference != certificate.account_reference
        or not certificate.first_serial <= written.serial <= certificate.last_serial
        or not certificate.not_before <= written.date <= certificate.not_after
    )
    if mismatch:
        raise ChequeRefused(
            "SIGNATURE_INVALID",
            "the cheque does not match its account certificate (bank, account, serial or date)",
        )
    return VerifiedCheque(written, certificate, signed_cheque, signed_certificate)


def check_dates(written: Cheque, today: dt.date, stale_days: int) -> None:
    """Checks 7 and 8: POST_DATED after today, STALE_DATED older than stale_days."""
    if written.date > today:
        raise ChequeRefused("POST_DATED", f"the cheque is dated {written.date}, after {today}")
    if written.date < today - dt.timedelta(days=stale_days):
        raise ChequeRefused(
            "STALE_DATED",
            f"the cheque is dated {written.date}, more than {stale_days} days before {today}",
        )


def check_endorsement(
    signed_endorsement: bytes, signed_cheque: bytes, written: Cheque, to_bank: str, keys: ChequeKeys
) -> Endorsement:
    """The endorsement names this signed cheque, is by its payee, pays to to_bank and
    verifies with the payee's published key; ENDORSEMENT_INVALID otherwise."""
    try:
        signed = cheque.read_endorsement(signed_endorsement)
    except ChequeError as exc:
        raise ChequeRefused("ENDORSEMENT_INVALID", f"endorsement: {exc.field} is invalid") from None
    endorsement = signed.document
    if endorsement.cheque_digest != cheque.cheque_digest(signed_cheque):
        raise ChequeRefused("ENDORSEMENT_INVALID", "the endorsement is of another cheque")
    if endorsement.payee != written.payee:
        raise ChequeRefused("ENDORSEMENT_INVALID", "the endorsement is not by the cheque's payee")
    if endorsement.pay_to_bank_code != to_bank:
        raise ChequeRefused(
            "ENDORSEMENT_INVALID", f"the endorsement pays to {endorsement.pay_to_bank_code!r}"
        )
    payee_key = keys.holder_key(endorsement.payee)
    try:
        if payee_key is None:
            raise ChequeError("endorsement", "signature", "has no published key")
        cheque.verify(payee_key, signed)
    except ChequeError:
        raise ChequeRefused(
            "ENDORSEMENT_INVALID", "the endorsement's signature does not verify"
        ) from None
    return endorsement
