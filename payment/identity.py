"""Who is calling: the SPIFFE identity in a peer's certificate, and its revocation.

Every certificate of the network names its holder in one URI SAN,
``spiffe://<trust-domain>/<role>/<name>``. Servers learn the caller from the
certificate the TLS handshake verified, never from a request field.
"""

from __future__ import annotations

import contextvars
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from payment.config import Role

__all__ = [
    "Identity",
    "IdentityError",
    "IssuerError",
    "RevocationList",
    "caller",
    "current_caller",
    "parse_certificate",
    "serial_text",
    "spiffe_id",
]

_log = structlog.get_logger("paynet.identity")


def spiffe_id(trust_domain: str, role: Role | str, name: str) -> str:
    """The URI naming a participant."""
    return f"spiffe://{trust_domain}/{role}/{name}"


@dataclass(frozen=True)
class Identity:
    """A verified participant: who holds the peer certificate."""

    trust_domain: str
    """The certificate's trust domain."""
    role: Role
    """The participant's role."""
    name: str
    """The participant's name."""
    serial: int
    """The certificate's serial number, for revocation checks."""

    @cached_property
    def uri(self) -> str:
        """The SPIFFE id (made once: an identity is kept per certificate and used per call)."""
        return spiffe_id(self.trust_domain, self.role, self.name)

    @cached_property
    def serial_text(self) -> str:
        """The certificate's serial as logs show it (:func:`serial_text`), made once."""
        return serial_text(self.serial)

    def __str__(self) -> str:
        return self.uri


class IdentityError(Exception):
    """The certificate names no usable identity; the message says why."""


class IssuerError(IdentityError):
    """The certificate was not issued directly by the network's CA."""


_CACHE: OrderedDict[tuple[bytes, bytes], Identity] = OrderedDict()
_CACHE_SIZE = 512


def serial_text(serial: int) -> str:
    """A certificate serial as openssl prints it: hex bytes joined by colons.

    Logs use this form; it never holds a long run of digits, which the log
    scrubber would mask as a possible instrument number.
    """
    raw = serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")
    return ":".join(f"{byte:02x}" for byte in raw)


def parse_certificate(pem: bytes, ca: x509.Certificate) -> Identity:
    """The identity in a PEM certificate issued directly by ca (cached: peers reconnect
    with the same one).

    The TLS stack accepts a chain through an intermediate CA certificate even
    though the network's root allows none (grpcio offers no hook into its
    verification), so the issuer is checked here: the certificate's issuer
    must be ca's subject and its signature must verify with ca's key.
    """
    key = (pem, ca.signature)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    cert = x509.load_pem_x509_certificate(pem)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise IssuerError(
            f"certificate of {cert.subject.rfc4514_string()!r} is not issued directly by the "
            "network CA; a node accepts only certificates the network CA signed itself "
            "(no intermediate CA)"
        ) from None
    try:
        usages = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = []
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise IdentityError("certificate is not for client authentication (no clientAuth usage)")
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise IdentityError("certificate has no subject alternative names") from None
    uris = [
        u
        for u in sans.get_values_for_type(x509.UniformResourceIdentifier)
        if u.startswith("spiffe://")
    ]
    if len(uris) != 1:
        raise IdentityError(f"certificate must carry exactly one spiffe:// URI, has {len(uris)}")
    parts = uris[0].removeprefix("spiffe://").split("/")
    if len(parts) != 3 or not all(parts):
        raise IdentityError(f"{uris[0]} is not spiffe://<trust-domain>/<role>/<name>")
    trust_domain, role_text, name = parts
    try:
        role = Role(role_text)
    except ValueError:
        raise IdentityError(f"{uris[0]} names unknown role {role_text!r}") from None
    identity = Identity(trust_domain, role, name, cert.serial_number)
    _CACHE[key] = identity
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return identity


class RevocationList:
    """The CA's CRL, re-read when the file changes (checked at most once a second).

    grpcio's Python API has no CRL support, so revocation is checked here, per
    call, by the identity interceptor. The CRL's signature is verified against
    the CA before it is trusted.
    """

    def __init__(self, crl_path: Path, ca_cert_path: Path) -> None:
        self._crl_path = crl_path
        self.ca = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        """The network CA's certificate, which signs the CRL and every participant's."""
        self._serials: frozenset[int] = frozenset()
        self._mtime_ns = -1
        self._checked_at = 0.0
        self._reload()

    def is_revoked(self, serial: int) -> bool:
        """True if the CA revoked the certificate with this serial."""
        now = time.monotonic()
        if now - self._checked_at >= 1.0:
            self._checked_at = now
            self._refresh()
        return serial in self._serials

    def _reload(self) -> None:
        stat = self._crl_path.stat()
        if stat.st_mtime_ns == self._mtime_ns:
            return
        crl = x509.load_pem_x509_crl(self._crl_path.read_bytes())
        public_key = self.ca.public_key()
        if not crl.is_signature_valid(public_key):  # type: ignore[arg-type]
            raise ValueError(f"{self._crl_path} is not signed by the network CA")
        self._serials = frozenset(entry.serial_number for entry in crl)
        self._mtime_ns = stat.st_mtime_ns
        _log.info("crl.loaded", revoked=len(self._serials))

    def _refresh(self) -> None:
        """Reload a changed CRL; one that cannot be read or verified keeps the last good list."""
        try:
            self._reload()
        except (OSError, ValueError) as exc:
            _log.warning("crl.reload_failed", why=str(exc))


current_caller: contextvars.ContextVar[Identity] = contextvars.ContextVar("paynet_caller")


def caller() -> Identity:
    """The verified identity of the peer of the RPC being served."""
    return current_caller.get()
