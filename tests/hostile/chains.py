"""Certificates chained through an extra CA: the link a network's root does not allow.

The network CA signs an intermediate CA certificate, which issues a leaf naming
a real participant. The TLS stack accepts the chain (grpcio offers no hook into
its verification); paynet's identity check must refuse it.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from payment.config import Role
from payment.pki import Pki, issue_certificate
from payment.tls import TlsIdentity

__all__ = ["chained_identity", "intermediate_ca"]


def intermediate_ca(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A CA certificate signed by the network CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "extra CA")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def chained_identity(pki: Pki, trust_domain: str, role: Role, name: str) -> TlsIdentity:
    """A client identity for participant name whose certificate an intermediate CA issued."""
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    extra_key, extra_cert = intermediate_ca(ca_key, ca_cert)
    key, cert = issue_certificate(extra_key, extra_cert, trust_domain, role, name)
    pem = serialization.Encoding.PEM
    return TlsIdentity(
        pki.ca_cert.read_bytes(),
        cert.public_bytes(pem) + extra_cert.public_bytes(pem),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
