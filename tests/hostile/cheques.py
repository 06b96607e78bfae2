"""Fresh cheque documents for the boundary cases, made with the participants' own keys.

The hypothesis strategies only name the world's cheques, which were all
deposited (none can move money again). A boundary case that needs a cheque no
bank has seen (to deposit it, to present it, or to pay an order with it) gets
one here: written on a spare serial of the world's books (each used once per
session), altered after signing, dated off, in another currency, endorsed to
some bank, or under a certificate signed with a key no bank published.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

from cryptography.hazmat.primitives.asymmetric import ed25519

from payment import cheque
from payment.config import NetworkConfig
from payment.envelope import load_ed25519_private
from payment.pki import Pki

from .world import ChequeBook, World

__all__ = ["ChequeKit"]


class ChequeKit:
    """Writes, endorses, alters and forges cheques. Secret (it reads private keys): its
    repr shows none."""

    def __init__(self, network: NetworkConfig, world: World) -> None:
        self._pki = Pki(network.pki_dir)
        self._currency = network.currency
        self._world = world
        self._books = {"alice": world.alice_book, "bob": world.bob_book}
        self._serials: dict[str, Iterator[int]] = {
            drawer: iter(serials) for drawer, serials in world.spare_serials.items()
        }

    def __repr__(self) -> str:
        return "ChequeKit(<redacted>)"

    def _key(self, name: str) -> ed25519.Ed25519PrivateKey:
        return load_ed25519_private(self._pki.signing_key(name).read_bytes())

    def book(self, drawer: str) -> ChequeBook:
        """The drawer's world book."""
        return self._books[drawer]

    def serial(self, drawer: str) -> int:
        """A spare serial of the drawer's book no cheque was written on yet."""
        try:
            return next(self._serials[drawer])
        except StopIteration:
            raise AssertionError(f"{drawer}'s world book has no spare serial left") from None

    def write(
        self,
        drawer: str,
        *,
        amount_minor: int,
        order_id: str = "",
        payee: str = "shop",
        date: dt.date | None = None,
        currency: str | None = None,
        drawee: str | None = None,
    ) -> bytes:
        """A cheque signed by the drawer on the next spare serial of its world book."""
        book = self.book(drawer)
        written = cheque.Cheque(
            drawee_bank_code=book.bank_code if drawee is None else drawee,
            account_reference=book.account_reference,
            serial=self.serial(drawer),
            payee=payee,
            amount_minor=amount_minor,
            currency_code=self._currency if currency is None else currency,
            date=date or dt.datetime.now(dt.UTC).date(),
            order_reference=order_id,
            memo="",
        )
        return cheque.sign(self._key(drawer), written)

    def endorse(self, signed_cheque: bytes, *, to_bank: str | None = None) -> bytes:
        """The shop's endorsement of a signed cheque, to beta unless another bank is named."""
        endorsement = cheque.Endorsement(
            cheque.cheque_digest(signed_cheque),
            "shop",
            self._world.beta_code if to_bank is None else to_bank,
        )
        return cheque.sign(self._key("shop"), endorsement)

    @staticmethod
    def altered(signed_cheque: bytes, amount_minor: int) -> bytes:
        """The signed cheque with another amount and the drawer's signature left as it was."""
        signed = cheque.read_cheque(signed_cheque)
        changed = dataclasses.replace(signed.document, amount_minor=amount_minor)
        return cheque.encode(changed) + signed.signature

    def forged_certificate(self, drawer: str) -> bytes:
        """The drawer's world certificate signed with a key its bank never published."""
        certificate = cheque.read_certificate(self.book(drawer).signed_certificate).document
        forged = dataclasses.replace(
            certificate, bank_key_id=f"{certificate.bank_code}-unpublished"
        )
        return cheque.sign(ed25519.Ed25519PrivateKey.generate(), forged)
