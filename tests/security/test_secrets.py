"""No secret where it should not be: after a frictionless and a challenged
purchase, every log line and every store of every node is scanned for private
keys, instrument numbers and one-time codes."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from interbank.v1 import order_pb2

from payment.customer import Customer
from tests.e2e.conftest import RunningNetwork, start_network, stop

S = order_pb2.OrderStatus


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = start_network(tmp_path_factory.mktemp("secrets"))
    yield running
    codes = stop(running.procs)
    assert all(code == 0 for code in codes.values()), codes


async def _purchases(net: RunningNetwork) -> list[str]:
    """A card purchase by alice and a challenged account purchase by bob; the codes read."""
    codes = []
    for name, sku, kind in (("alice", "book-001", "card"), ("bob", "bike-003", "account")):
        async with Customer(net.network, name) as customer:
            placed = await customer.create_order("shop", [(sku, 1)])
            order = await customer.submit_payment(
                placed, customer.seal_payment(placed, customer.instrument(kind))
            )
            if order.status == S.ORDER_STATUS_CHALLENGE_REQUIRED:
                code = await customer.read_one_time_code(order.challenge.challenge_id)
                codes.append(code)
                await customer.answer_challenge(order.challenge.challenge_id, code)
                await customer.complete_payment("shop", order.order_id)
            await customer.wait_for_order(
                "shop", placed.order.order_id, S.ORDER_STATUS_DELIVERY_CONFIRMED
            )
    return codes


def _key_material(pki_dir: Path) -> dict[str, list[bytes]]:
    """Every private key of the PKI, as the forms it could leak in: PEM body, raw, hex."""
    found = {}
    for path in sorted(pki_dir.rglob("*")):
        if not path.is_file() or not path.name.endswith(("key.pem", ".key")):
            continue
        pem = path.read_bytes()
        body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
        key = serialization.load_pem_private_key(pem, password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            raw = key.private_numbers().private_value.to_bytes(32, "big")
        else:
            assert isinstance(key, ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey)
            raw = key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        found[str(path.relative_to(pki_dir))] = [body[20:60], raw, raw.hex().encode()]
    return found


def _code_forms(code: str) -> list[bytes]:
    """How a code would appear if leaked: a JSON or repr string, or a protobuf string field."""
    raw = code.encode()
    return [b'"' + raw + b'"', b"'" + raw + b"'", b"=" + raw, bytes([len(raw)]) + raw]


def _rows_holding(db: Path, needle: bytes) -> set[str]:
    """The tables of an SQLite store with a value containing needle."""
    tables = set()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in names:
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 (names from the schema)
                for value in row:
                    data = value.encode() if isinstance(value, str) else value
                    if isinstance(data, bytes) and needle in data:
                        tables.add(table)
    return tables


def test_no_key_instrument_number_or_code_outside_where_it_belongs(
    net: RunningNetwork, report
) -> None:
    codes = asyncio.run(_purchases(net))
    assert len(codes) == 1 and re.fullmatch(r"\d{6}", codes[0])
    network = net.network
    logs = {p.name: p.read_bytes() for p in (net.workdir / "logs").glob("*.log")}
    stores = {
        f"{node.name}/{p.name}": p.read_bytes()
        for node in network.nodes
        for p in node.data_dir.rglob("*")
        if p.is_file()
    }
    assert logs and stores
    everything = {
        **{f"log {k}": v for k, v in logs.items()},
        **{f"store {k}": v for k, v in stores.items()},
    }
    numbers = [c.card_number for c in network.customers] + [
        c.account_number for c in network.customers
    ]
    leaks = []
    for where, data in everything.items():
        for number in numbers:
            if number.encode() in data:
                leaks.append(f"instrument number in {where}")
        for key, forms in _key_material(network.pki_dir).items():
            if any(form in data for form in forms):
                leaks.append(f"private key {key} in {where}")
        for code in codes:
            if any(form in data for form in _code_forms(code)):
                leaks.append(f"one-time code in {where}")
    # The code lives in one place only: bob's device inbox, the outbox of his bank.
    inbox = {"store beta/bank.sqlite3", "store beta/bank.sqlite3-wal"}
    assert not [leak for leak in leaks if not any(leak.endswith(i) for i in inbox)], leaks
    holding = set()
    for node in network.nodes:
        for db in node.data_dir.glob("*.sqlite3"):
            holding |= {f"{node.name}.{t}" for t in _rows_holding(db, codes[0].encode())}
    assert holding == {"beta.outbox"}, holding
    report(
        f"secrets scan: {len(logs)} logs ({sum(len(v) for v in logs.values())} bytes) and "
        f"{len(stores)} store files scanned for {len(_key_material(network.pki_dir))} private "
        f"keys, {len(numbers)} instrument numbers and the one-time code: none outside the "
        "device inbox"
    )
