"""The network's PKI: a root CA, a certificate per participant, a CRL, and the
gateway's HPKE key pair.

Layout of a PKI directory::

    ca.crt ca.key crl.pem            the root CA, its key, its revocation list
    <name>/cert.pem <name>/key.pem   every node's and customer's TLS identity
    <customer>/signing.key|.pub      the customer's Ed25519 dual-signature key;
                                     the .pub is what the issuer enrols (it also
                                     signs the customer's cheques)
    <merchant>/signing.key|.pub      the merchant's Ed25519 key that endorses
                                     cheques; the .pub is the published key
    <gateway>/hpke.key|.pub          the gateway's X25519 payment-encryption key
    <bank>/cheque-keys/<id>.key|.pub a bank's Ed25519 cheque-signing keys (account
                                     certificates), newest id signs; every .pub
                                     is published (payment.cheque_keys)

Every certificate is EC P-256 and names its holder in one URI SAN,
``spiffe://<trust-domain>/<role>/<name>``; node certificates also carry
``localhost`` and ``127.0.0.1`` so they verify on loopback. Private keys are
written with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from payment.config import NetworkConfig, Role
from payment.identity import spiffe_id

__all__ = [
    "Pki",
    "PkiExistsError",
    "init_pki",
    "issue_certificate",
    "make_ca",
    "replace_file",
    "revoke",
    "revoke_serial",
    "rotate",
    "rotate_cheque_key",
]

_CA_DAYS = 3650
_LEAF_DAYS = 825
_CRL_DAYS = 30


class PkiExistsError(Exception):
    """The output directory already holds a PKI and --force was not given."""


@dataclass(frozen=True)
class Pki:
    """Paths inside one PKI directory."""

    root: Path
    """The PKI directory."""

    @property
    def ca_cert(self) -> Path:
        """The root CA certificate (PEM), the trust anchor of every channel."""
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """The root CA's private key."""
        return self.root / "ca.key"

    @property
    def crl(self) -> Path:
        """The CA's certificate revocation list (PEM)."""
        return self.root / "crl.pem"

    def cert(self, name: str) -> Path:
        """A participant's certificate."""
        return self.root / name / "cert.pem"

    def key(self, name: str) -> Path:
        """A participant's TLS private key."""
        return self.root / name / "key.pem"

    def signing_key(self, holder: str) -> Path:
        """A customer's Ed25519 dual-signature (and cheque) key, or a merchant's
        endorsement key."""
        return self.root / holder / "signing.key"

    def signing_public_key(self, holder: str) -> Path:
        """A holder's published Ed25519 public key (raw 32 bytes, hex)."""
        return self.root / holder / "signing.pub"

    def cheque_keys(self, bank: str) -> Path:
        """The folder of a bank's cheque-signing keys, <key id>.key and .pub."""
        return self.root / bank / "cheque-keys"

    def hpke_key(self, gateway: str) -> Path:
        """The gateway's X25519 payment-encryption private key."""
        return self.root / gateway / "hpke.key"

    def hpke_public_key(self, gateway: str) -> Path:
        """The gateway's X25519 public key (raw 32 bytes, hex)."""
        return self.root / gateway / "hpke.pub"


def init_pki(network: NetworkConfig, out: Path, *, force: bool = False) -> Pki:
    """Create the whole PKI of a network in out."""
    pki = Pki(out)
    if pki.ca_cert.exists() and not force:
        raise PkiExistsError(f"{out} already holds a PKI; pass --force to replace it")
    out.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = make_ca(network.trust_domain)
    _write_key(pki.ca_key, ca_key)
    _write(pki.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    for node in network.nodes:
        key, cert = issue_certificate(
            ca_key, ca_cert, network.trust_domain, node.role, node.name, hosts=(node.host,)
        )
        _write_pair(pki, node.name, key, cert)
        if node.role is Role.GATEWAY:
            hpke = x25519.X25519PrivateKey.generate()
            _write_key(pki.hpke_key(node.name), hpke)
            _write(pki.hpke_public_key(node.name), _raw_public_hex(hpke.public_key()))
        if node.role is Role.BANK and node.bank_code is not None:
            rotate_cheque_key(pki, node.name, node.bank_code)
    for customer in network.customers:
        key, cert = issue_certificate(
            ca_key, ca_cert, network.trust_domain, Role.CUSTOMER, customer.name
        )
        _write_pair(pki, customer.name, key, cert)
        _write_signing_key(pki, customer.name)
    for merchant in network.merchants:
        _write_signing_key(pki, merchant.name)
    _write(pki.crl, _crl(ca_key, ca_cert, revoked=()).public_bytes(serialization.Encoding.PEM))
    return pki


def make_ca(trust_domain: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed root CA for a trust domain."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "paynet"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"paynet root CA {trust_domain}"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    trust_domain: str,
    role: Role,
    name: str,
    *,
    hosts: tuple[str, ...] = (),
    days: int = _LEAF_DAYS,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A leaf certificate naming spiffe://<trust_domain>/<role>/<name>.

    Servers (every role but customer) can authenticate both ways; customer
    certificates are client-only.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(spiffe_id(trust_domain, role, name))
    ]
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if role is not Role.CUSTOMER:
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
        sans.append(x509.DNSName("localhost"))
        ips = {"127.0.0.1", *hosts}
        for host in sorted(ips):
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "paynet"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, str(role)),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _load_ca(pki: Pki) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{pki.ca_key} is not an EC key")
    return ca_key, x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())


def revoke(pki: Pki, cert_path: Path) -> int:
    """Add a certificate to the CA's CRL and re-sign it; returns the serial revoked."""
    return revoke_serial(pki, x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number)


def revoke_serial(pki: Pki, serial: int) -> int:
    """Add a serial to the CA's CRL and re-sign it (replaced in one step); returns it."""
    ca_key, ca_cert = _load_ca(pki)
    current = x509.load_pem_x509_crl(pki.crl.read_bytes())
    serials = {entry.serial_number for entry in current} | {serial}
    crl = _crl(ca_key, ca_cert, revoked=tuple(sorted(serials)))
    replace_file(pki.crl, crl.public_bytes(serialization.Encoding.PEM))
    return serial


def rotate(network: NetworkConfig, pki: Pki, name: str) -> tuple[int, int]:
    """Issue participant name a new key and certificate; returns (old serial, new serial).

    The same identity (SPIFFE id, role, hosts) with a fresh key. The files are
    replaced, not rewritten, so a running node never reads half a file; it
    takes the new pair once both are in place (payment.tls.NodeIdentity). The
    old certificate stays valid until it expires or is revoked.
    """
    hosts: tuple[str, ...]
    try:
        node = network.node(name)
        role, hosts = node.role, (node.host,)
    except KeyError:
        network.customer(name)  # KeyError if neither
        role, hosts = Role.CUSTOMER, ()
    old = x509.load_pem_x509_certificate(pki.cert(name).read_bytes()).serial_number
    ca_key, ca_cert = _load_ca(pki)
    key, cert = issue_certificate(ca_key, ca_cert, network.trust_domain, role, name, hosts=hosts)
    replace_file(
        pki.key(name),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        mode=0o600,
    )
    replace_file(pki.cert(name), cert.public_bytes(serialization.Encoding.PEM))
    return old, cert.serial_number


def rotate_cheque_key(pki: Pki, bank: str, bank_code: str) -> str:
    """Give a bank a new cheque-signing key; returns its key id.

    The new key signs the account certificates of the cheque books issued
    from now on. The earlier keys stay published, so the certificates they
    signed (and their cheques) keep verifying; delete a .pub to withdraw one.
    Ids are the bank code and a counter, so the newest sorts last.
    """
    folder = pki.cheque_keys(bank)
    folder.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.stem.rsplit("-", 1)[1]) for p in folder.glob(f"{bank_code}-*.pub")]
    key_id = f"{bank_code}-{max(numbers, default=0) + 1:04d}"
    key = ed25519.Ed25519PrivateKey.generate()
    replace_file(
        folder / f"{key_id}.key",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        mode=0o600,
    )
    # The public half last: once it is published, its private key is in place.
    replace_file(folder / f"{key_id}.pub", _raw_public_hex(key.public_key()))
    return key_id


def _write_signing_key(pki: Pki, holder: str) -> None:
    signing = ed25519.Ed25519PrivateKey.generate()
    _write_key(pki.signing_key(holder), signing)
    _write(pki.signing_public_key(holder), _raw_public_hex(signing.public_key()))


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write data to a new file beside path, then rename it over path in one step."""
    tmp = path.with_name(f".{path.name}.new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def key_id(public_key: x25519.X25519PublicKey) -> str:
    """A short, stable id of a gateway HPKE key: the first 8 bytes of SHA-256, hex."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _crl(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, revoked: tuple[int, ...]
) -> x509.CertificateRevocationList:
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + dt.timedelta(days=_CRL_DAYS))
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    return builder.sign(ca_key, hashes.SHA256())


def _write_pair(
    pki: Pki, name: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
) -> None:
    _write_key(pki.key(name), key)
    _write(pki.cert(name), cert.public_bytes(serialization.Encoding.PEM))


def _write_key(
    path: Path,
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey,
) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    # Created 0600 from the start: the key is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _raw_public_hex(key: ed25519.Ed25519PublicKey | x25519.X25519PublicKey) -> bytes:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex().encode() + b"\n"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
