"""Revocation on a running network: ``paynet pki revoke`` re-signs the CRL, every
node reloads it within a second, and the revoked peer is refused on its next
RPC over the connection it already has and on any new connection."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import grpc
import pytest
from interbank.v1 import order_pb2, order_pb2_grpc

from payment.errors import error_info
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel
from tests.e2e.conftest import RunningNetwork, start_network, stop


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = start_network(tmp_path_factory.mktemp("revocation"))
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


def _paynet(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _list(channel: grpc.aio.Channel) -> tuple[grpc.StatusCode, str | None]:
    try:
        await order_pb2_grpc.OrderServiceStub(channel).ListProducts(
            order_pb2.ListProductsRequest(), timeout=5
        )
    except grpc.aio.AioRpcError as exc:
        info = error_info(exc)
        return exc.code(), info.reason if info else None
    return grpc.StatusCode.OK, None


async def _revoke_while_connected(
    net: RunningNetwork,
) -> dict[str, tuple[grpc.StatusCode, str | None]]:
    pki = Pki(net.network.pki_dir)
    shop = net.network.node("shop").address
    seen = {}
    async with secure_channel(shop, TlsIdentity.load(pki, "bob")) as existing:
        seen["before"] = await _list(existing)
        _paynet("pki", "revoke", "bob", "--network", str(net.path))
        started = time.monotonic()
        while time.monotonic() - started < 5:
            seen["existing connection"] = await _list(existing)
            if seen["existing connection"][0] != grpc.StatusCode.OK:
                break
            await asyncio.sleep(0.1)
        seconds = time.monotonic() - started
    async with secure_channel(shop, TlsIdentity.load(pki, "bob")) as fresh:
        seen["new connection"] = await _list(fresh)
    async with secure_channel(shop, TlsIdentity.load(pki, "alice")) as other:
        seen["another customer"] = await _list(other)
    return seen, seconds


def test_a_revoked_customer_is_refused_on_its_open_connection_and_on_new_ones(
    net: RunningNetwork, report
) -> None:
    seen, seconds = asyncio.run(_revoke_while_connected(net))
    refused = (grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_REVOKED")
    assert seen["before"] == (grpc.StatusCode.OK, None)
    assert seen["existing connection"] == refused
    assert seen["new connection"] == refused
    assert seen["another customer"] == (grpc.StatusCode.OK, None)
    assert seconds < 2.5
    report(f"revocation: refused on the open connection {seconds:.2f} s after paynet pki revoke")


def test_revoking_by_serial_and_bad_arguments(net: RunningNetwork, tmp_path) -> None:
    from cryptography import x509

    pki = Pki(net.network.pki_dir)
    serial = x509.load_pem_x509_certificate(pki.cert("shop").read_bytes()).serial_number
    out = _paynet("pki", "revoke", "--serial", f"{serial:x}", "--pki", str(pki.root))
    assert f"revoked serial {serial:x}" in out
    crl = x509.load_pem_x509_crl(pki.crl.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.is_signature_valid(
        x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()).public_key()
    )
    for args, message in (
        (("nobody", "--network", str(net.path)), "no certificate for 'nobody'"),
        (("--serial", "zz", "--network", str(net.path)), "'zz' is not a hex serial"),
        (("bob", "--serial", "ab", "--network", str(net.path)), "name one of"),
        (("bob",), "give --network FILE or --pki DIR"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "ops.cli", "pki", "revoke", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, done.stderr
