"""Certificate rotation without a restart: ``paynet pki rotate`` under a load of
payments, every node rotated, no payment failing; each node then serves its new
certificate and presents it on its own outbound calls."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from customer.client import Customer
from customer.shop import purchase
from ops.devnet import write_dev_network
from ops.operations import refund_order
from payment.config import load_network
from payment.identity import serial_text
from payment.pki import Pki, init_pki, rotate
from payment.tls import RELOAD_CHECK_S, NodeIdentity
from tests.e2e.conftest import RunningNetwork, start_network, stop

BUYERS = ("buyer-a", "buyer-b")
NODES = ("settlement", "alfa", "beta", "gateway", "shop")
# Who calls whom, so a rotated node's new serial must show in that peer's access log.
CALLED_BY = {
    "settlement": "beta",
    "alfa": "settlement",
    "beta": "settlement",
    "gateway": "alfa",
    "shop": "gateway",
}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = start_network(
        tmp_path_factory.mktemp("rotation"),
        buyers=BUYERS,
        velocity_max_payments=10**6,
        net_debit_cap_minor=10**12,
    )
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


def _quiet(*_args: str) -> None:
    """A step printer that prints nothing."""


def _serial(pem: bytes) -> int:
    return x509.load_pem_x509_certificate(pem).serial_number


def _served_serial(net: RunningNetwork, node: str) -> int:
    """The serial of the certificate node presents on a new TLS connection."""
    pki = Pki(net.network.pki_dir)
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(pki.cert("alice"), pki.key("alice"))
    context.set_alpn_protocols(["h2"])
    address = net.network.node(node)
    with socket.create_connection((address.host, address.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def _load(net: RunningNetwork, stop_at: asyncio.Event, outcomes: list[str]) -> None:
    # buyer-a banks at alfa and buyer-b at beta, the shop's bank: buyer-b's payments stay
    # inside beta, so beta calls the settlement bank only to return money. Each of
    # buyer-a's payments is therefore refunded one cent, so that beta's outbound calls
    # (SubmitPaymentReturn) run through the rotation too.
    async def buyer(name: str) -> None:
        async with Customer(net.network, name) as customer:
            while not stop_at.is_set():
                try:
                    result = await purchase(customer, "shop", [("lamp-002", 1)], say=_quiet)
                    outcomes.append(result.order.order_id)
                    if name == BUYERS[0]:
                        await refund_order(net.network, "shop", result.order.order_id, 1)
                except Exception as exc:  # every failure is counted and shown
                    outcomes.append(f"FAILED {name} {type(exc).__name__}: {exc}")

    await asyncio.gather(*(buyer(name) for name in BUYERS))


async def _rotate_under_load(net: RunningNetwork) -> tuple[list[str], dict[str, tuple[int, int]]]:
    outcomes: list[str] = []
    stop_at = asyncio.Event()
    load = asyncio.create_task(_load(net, stop_at, outcomes))
    await asyncio.sleep(2)
    serials = {}
    for node in NODES:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ops.cli",
            "pki",
            "rotate",
            node,
            "--network",
            str(net.path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        old, new = out.decode().split("serial ", 1)[1].split(";")[0].replace(",", "").split(" -> ")
        serials[node] = (int(old, 16), int(new, 16))
        await asyncio.sleep(1.5)
    await asyncio.sleep(3)
    stop_at.set()
    await load
    return outcomes, serials


def test_every_node_rotates_under_load_without_a_failed_payment(
    net: RunningNetwork, report
) -> None:
    before = {node: _served_serial(net, node) for node in NODES}
    outcomes, serials = asyncio.run(_rotate_under_load(net))
    failed = [o for o in outcomes if o.startswith("FAILED")]
    assert not failed, failed[:5]
    assert len(outcomes) >= 10, f"only {len(outcomes)} payments ran"
    pki = Pki(net.network.pki_dir)
    for node in NODES:
        old, new = serials[node]
        assert old == before[node] != new
        assert _serial(pki.cert(node).read_bytes()) == new
        # New connections get the new certificate, from the same running process.
        assert _served_serial(net, node) == new
        assert net.procs[node].poll() is None
        # The node's own outbound calls present the new certificate too.
        caller_lines = [
            json.loads(line)
            for line in net.log(CALLED_BY[node]).decode().splitlines()
            if line.startswith("{") and '"event": "rpc"' in line
        ]
        presented = {
            line.get("peer_serial") for line in caller_lines if line["peer"].endswith(f"/{node}")
        }
        assert serial_text(new) in presented, (
            f"{CALLED_BY[node]} never saw {node}'s new certificate"
        )
    report(
        f"rotation: {len(NODES)} nodes rotated under load, {len(outcomes)} payments, 0 failed; "
        "each node served its new certificate without a restart"
    )


def test_a_half_written_rotation_is_not_taken(tmp_path: Path) -> None:
    network = load_network(write_dev_network(tmp_path))
    pki = init_pki(network, network.pki_dir)
    identity = NodeIdentity.load(pki, "gateway")
    first, generation = identity.current()
    key_before = pki.key("gateway").read_bytes()
    old, _ = rotate(network, pki, "gateway")
    new_cert = pki.cert("gateway").read_bytes()
    # Put the old key back beside the new certificate: a rotation caught half way.
    pki.key("gateway").write_bytes(key_before)
    os.utime(pki.key("gateway"))
    time.sleep(RELOAD_CHECK_S + 0.05)
    held, held_generation = identity.current()
    assert (held, held_generation) == (first, generation)
    rotate(network, pki, "gateway")
    time.sleep(RELOAD_CHECK_S + 0.05)
    taken, taken_generation = identity.current()
    assert taken_generation == generation + 1
    assert _serial(taken.cert_pem) not in (old, _serial(new_cert))
    assert _serial(taken.cert_pem) == _serial(pki.cert("gateway").read_bytes())
