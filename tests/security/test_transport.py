"""The transport over real sockets: which client certificates are refused, seen
both by a grpc client and by ``openssl s_client``, and the TLS policy as an
external scanner (sslyze) reports it against a running node."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from interbank.v1 import order_pb2, order_pb2_grpc

from payment.errors import error_info
from payment.pki import Pki, make_ca, revoke_serial
from payment.tls import TlsIdentity
from tests.conftest import require_tool
from tests.e2e.conftest import RunningNetwork, start_network, stop

ROOT = Path(__file__).resolve().parents[2]
SSLYZE = ROOT / ".venv-sslyze" / "bin" / "sslyze"


def require(tool: str | Path, install: str) -> str:
    """The tool's path; skipped without it, except under CI=true, where that fails."""
    found = shutil.which(str(tool))
    require_tool(None if found else f"{tool} not found", install)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = start_network(tmp_path_factory.mktemp("transport"))
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


@dataclass(frozen=True)
class Case:
    """One client certificate and how the network must answer it."""

    name: str
    tls: TlsIdentity | None  # None: the client presents root certificates only
    grpc: tuple[str, str | None]  # status name and ErrorInfo reason of ListProducts
    handshake: bool  # does the TLS handshake complete (refusal, if any, is per RPC)


def _leaf(
    signer: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    uri: str,
    *,
    days: tuple[int, int] = (-1, 30),
    client_auth: bool = True,
) -> tuple[bytes, bytes]:
    """A P-256 key and certificate for uri, signed by signer (self-signed if issuer is None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, uri.rsplit("/", 1)[-1])])
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client_auth else ExtendedKeyUsageOID.SERVER_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), False)
        .add_extension(x509.ExtendedKeyUsage([usage]), False)
        .sign(signer if issuer is not None else key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, cert.public_bytes(serialization.Encoding.PEM)


def _cases(net: RunningNetwork) -> list[Case]:
    pki = Pki(net.network.pki_dir)
    ca_pem = pki.ca_cert.read_bytes()
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    alice = f"spiffe://{net.network.trust_domain}/customer/alice"

    def ours(**kwargs: object) -> TlsIdentity:
        key, cert = _leaf(ca_key, ca_cert, kwargs.pop("uri", alice), **kwargs)  # type: ignore[arg-type]
        return TlsIdentity(ca_pem, cert, key)

    other_key, other_ca = make_ca(net.network.trust_domain)
    revoked = ours()
    revoke_serial(pki, x509.load_pem_x509_certificate(revoked.cert_pem).serial_number)
    self_key, self_cert = _leaf(ca_key, None, alice)
    foreign_key, foreign_cert = _leaf(other_key, other_ca, alice)
    refused = ("UNAVAILABLE", None)  # the handshake fails: no RPC is ever made
    return [
        Case("valid (control)", TlsIdentity.load(pki, "alice"), ("OK", None), True),
        Case("no certificate", None, refused, False),
        Case("another CA", TlsIdentity(ca_pem, foreign_cert, foreign_key), refused, False),
        Case("expired", ours(days=(-30, -1)), refused, False),
        Case("not yet valid", ours(days=(1, 30)), refused, False),
        Case("self-signed", TlsIdentity(ca_pem, self_cert, self_key), refused, False),
        Case("no clientAuth key usage", ours(client_auth=False), refused, False),
        Case("revoked", revoked, ("UNAUTHENTICATED", "CERTIFICATE_REVOKED"), True),
        Case(
            "wrong role",
            TlsIdentity.load(pki, "alfa"),
            ("PERMISSION_DENIED", "ROLE_NOT_ALLOWED"),
            True,
        ),
        Case(
            "SPIFFE id not in the network file",
            ours(uri=f"spiffe://{net.network.trust_domain}/customer/mallory"),
            ("UNAUTHENTICATED", "UNKNOWN_PARTICIPANT"),
            True,
        ),
    ]


async def _grpc(address: str, case: Case, ca_pem: bytes) -> tuple[str, str | None]:
    if case.tls is None:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    else:
        credentials = case.tls.channel_credentials()
    async with grpc.aio.secure_channel(address, credentials) as channel:
        try:
            await order_pb2_grpc.OrderServiceStub(channel).ListProducts(
                order_pb2.ListProductsRequest(), timeout=5
            )
        except grpc.aio.AioRpcError as exc:
            info = error_info(exc)
            return exc.code().name, info.reason if info else None
    return "OK", None


def _s_client(openssl: str, address: str, case: Case, ca: Path, scratch: Path) -> bool:
    """True if openssl s_client completes the handshake and the server speaks HTTP/2 on it."""
    command = [
        openssl, "s_client", "-connect", address, "-servername", "localhost",
        "-CAfile", str(ca), "-alpn", "h2", "-brief",
    ]  # fmt: skip
    if case.tls is not None:
        (scratch / "cert.pem").write_bytes(case.tls.cert_pem)
        (scratch / "key.pem").write_bytes(case.tls.key_pem)
        command += ["-cert", str(scratch / "cert.pem"), "-key", str(scratch / "key.pem")]
    # s_client reads stdin; keep it open a second so a refusal after the handshake is seen.
    done = subprocess.run(
        ["bash", "-c", 'sleep 1 | "$@"', "s_client", *command],
        capture_output=True,
        timeout=30,
        check=False,
    )
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    accepted = done.returncode == 0 and "Verification: OK" in output
    if not accepted:
        assert "unexpected eof" in output or "alert" in output, output
    return accepted


def test_every_bad_client_certificate_is_refused_by_grpc_and_openssl(
    net: RunningNetwork, tmp_path: Path, report
) -> None:
    openssl = require("openssl", "openssl (Debian: apt-get install openssl)")
    pki = Pki(net.network.pki_dir)
    address = net.network.node("shop").address
    cases = _cases(net)
    wrong = []
    for case in cases:
        seen_grpc = asyncio.run(_grpc(address, case, pki.ca_cert.read_bytes()))
        seen_handshake = _s_client(openssl, address, case, pki.ca_cert, tmp_path)
        if seen_grpc != case.grpc or seen_handshake != case.handshake:
            wrong.append(f"{case.name}: grpc {seen_grpc}, handshake {seen_handshake}")
    assert not wrong, wrong
    at_handshake = [c.name for c in cases if not c.handshake]
    per_rpc = [c.name for c in cases if c.handshake and c.grpc[0] != "OK"]
    report(
        f"certificate rejection: {len(at_handshake)} refused at the TLS handshake by grpc and "
        f"openssl s_client ({', '.join(at_handshake)}); {len(per_rpc)} refused on every RPC "
        f"with their reasons ({', '.join(per_rpc)})"
    )


def test_the_tls_policy_as_sslyze_sees_it(net: RunningNetwork, tmp_path: Path, report) -> None:
    sslyze = require(SSLYZE, "sslyze with 'make tools' (into .venv-sslyze)")
    pki = Pki(net.network.pki_dir)
    node = net.network.node("gateway")
    out = tmp_path / "scan.json"
    done = subprocess.run(
        [
            sslyze, "--cert", str(pki.cert("shop")), "--key", str(pki.key("shop")),
            "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3",
            "--fallback", "--compression", "--heartbleed",
            "--json_out", str(out), f"{node.address}{{localhost}}",
        ],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())["server_scan_results"][0]
    assert result["scan_status"] == "COMPLETED", result.get("connectivity_error_trace")
    scans = result["scan_result"]

    def accepted(kind: str) -> list[str]:
        scan = scans[kind]
        assert scan["status"] == "COMPLETED", scan
        return [s["cipher_suite"]["name"] for s in scan["result"]["accepted_cipher_suites"]]

    for old in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"):
        assert accepted(f"{old}_cipher_suites") == [], old
    tls13 = accepted("tls_1_3_cipher_suites")
    tls12 = accepted("tls_1_2_cipher_suites")
    assert tls13, "TLS 1.3 must be offered"
    # grpcio's Python API cannot turn TLS 1.2 off; what it offers there is AEAD with ECDHE only.
    assert tls12 and all("_ECDHE_" in s and ("_GCM_" in s or "CHACHA20" in s) for s in tls12)
    assert scans["tls_fallback_scsv"]["result"]["supports_fallback_scsv"] is True
    assert scans["tls_compression"]["result"]["supports_compression"] is False
    assert scans["heartbleed"]["result"]["is_vulnerable_to_heartbleed"] is False
    report(
        f"sslyze verdict on {node.name}: SSLv2, SSLv3, TLS 1.0, TLS 1.1 refused; "
        f"TLS 1.3 {', '.join(tls13)}; TLS 1.2 only {', '.join(tls12)}; "
        "TLS_FALLBACK_SCSV supported (no downgrade), no compression, not vulnerable to heartbleed"
    )
