"""paynet pki init: a CA, a certificate per participant, a CRL, the gateway's HPKE key."""

from __future__ import annotations

import stat
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ops.cli import main
from payment.envelope import load_x25519_private
from payment.identity import parse_certificate
from payment.pki import Pki, PkiExistsError, init_pki


def test_every_participant_gets_a_p256_certificate_naming_it_by_spiffe_id(devnet) -> None:
    pki = devnet.pki
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    names = [n.name for n in devnet.network.nodes] + [c.name for c in devnet.network.customers]
    for name in names:
        pem = pki.cert(name).read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        cert.verify_directly_issued_by(ca)
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        assert cert.public_key().curve.name == "secp256r1"
        identity = parse_certificate(pem, ca)
        assert identity.name == name
        assert identity.uri.startswith("spiffe://paynet.test/")
    bank = x509.load_pem_x509_certificate(pki.cert("alfa").read_bytes())
    sans = bank.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert (
        parse_certificate(pki.cert("alice").read_bytes(), ca).uri
        == "spiffe://paynet.test/customer/alice"
    )


def test_private_keys_are_mode_0600_and_the_crl_starts_empty(devnet) -> None:
    pki = devnet.pki
    keys = [
        pki.ca_key,
        pki.key("alfa"),
        pki.key("alice"),
        pki.signing_key("alice"),
        pki.hpke_key("gateway"),
    ]
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    crl = x509.load_pem_x509_crl(pki.crl.read_bytes())
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    assert crl.is_signature_valid(ca.public_key())
    assert len(list(crl)) == 0
    hpke = load_x25519_private(pki.hpke_key("gateway").read_bytes())
    assert (
        pki.hpke_public_key("gateway").read_text().strip()
        == hpke.public_key().public_bytes_raw().hex()
    )


def test_rerunning_pki_init_does_not_overwrite_without_force(devnet, capsys) -> None:
    before = devnet.pki.ca_cert.read_bytes()
    with pytest.raises(PkiExistsError):
        init_pki(devnet.network, devnet.pki.root)
    assert main(["pki", "init", "--network", str(devnet.path)]) == 1
    assert "--force" in capsys.readouterr().err
    assert devnet.pki.ca_cert.read_bytes() == before
    assert main(["pki", "init", "--network", str(devnet.path), "--force"]) == 0
    assert Pki(devnet.pki.root).ca_cert.read_bytes() != before


def test_a_certificate_without_client_auth_usage_is_no_caller_identity(devnet) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from payment.identity import IdentityError

    pki = devnet.pki
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier("spiffe://paynet.test/customer/alice")]
            ),
            False,
        )
    )
    for usages in ([ExtendedKeyUsageOID.SERVER_AUTH], None):
        with_usage = (
            builder.add_extension(x509.ExtendedKeyUsage(usages), False) if usages else builder
        )
        pem = with_usage.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        with pytest.raises(IdentityError, match="not for client authentication"):
            parse_certificate(pem, ca)


def test_a_serial_is_logged_as_colon_hex_which_the_log_scrubber_leaves_alone() -> None:
    from payment.identity import serial_text
    from payment.logs import mask_rendered

    serial = 0x6BA4EA3F9E417747128068A8E436A4ED20756197  # hex with a 12-digit run
    assert serial_text(serial) == "6b:a4:ea:3f:9e:41:77:47:12:80:68:a8:e4:36:a4:ed:20:75:61:97"
    line = f'{{"peer_serial": "{serial_text(serial)}"}}'
    assert mask_rendered(None, "info", line) == line
    assert mask_rendered(None, "info", f"{serial:x}") != f"{serial:x}"


def test_a_reader_never_gets_a_key_and_certificate_from_two_rotations(devnet) -> None:
    """``pki rotate`` replaces the key, then the certificate; a client loading its
    identity in between used to get the new key with the old certificate, which gRPC
    refuses ("Invalid private key"). Every load during rotations is a matched pair."""
    from payment.pki import rotate
    from payment.tls import TlsIdentity, _pair_matches

    stop = threading.Event()

    def rotating() -> None:
        while not stop.is_set():
            rotate(devnet.network, devnet.pki, "alice")

    thread = threading.Thread(target=rotating)
    thread.start()
    try:
        loads = [TlsIdentity.load(devnet.pki, "alice") for _ in range(300)]
    finally:
        stop.set()
        thread.join()
    assert all(_pair_matches(identity) for identity in loads)
    assert len({identity.cert_pem for identity in loads}) > 1, "no rotation was seen"


def test_a_key_that_is_not_the_certificates_is_refused_with_what_to_do(devnet) -> None:
    from payment.tls import TlsIdentity

    devnet.pki.key("alice").write_bytes(devnet.pki.key("bob").read_bytes())
    with pytest.raises(ValueError, match=r"paynet pki rotate alice"):
        TlsIdentity.load(devnet.pki, "alice", settle_s=0.05)
