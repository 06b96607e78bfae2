"""Scan a network's logs and stores for secrets that must not be there.

Shared by the purchase scan (``test_secrets.py``) and the chaos run's
(``tests/e2e/test_chaos.py``): private keys of the PKI (PEM body, raw bytes,
hex; among them the banks' RSA denomination keys, ``<bank>/mint/*.key``), every
customer's instrument numbers, and every one-time code as it would appear if
logged or serialized. One-time codes may live in one place only: the
device inbox, the issuer's ``outbox`` table.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from interbank.v1 import notification_pb2

from payment.config import NetworkConfig, Role

__all__ = ["Scan", "codes_in_inboxes", "scan"]

_INBOX_TABLE = "outbox"


@dataclass(frozen=True)
class Scan:
    """What a scan looked at and what it found where it should not be."""

    logs: int
    """Log files scanned."""
    log_bytes: int
    """Their total size."""
    store_files: int
    """Store files scanned (databases and their WAL)."""
    keys: int
    """Private keys looked for."""
    numbers: int
    """Instrument numbers looked for."""
    codes: int
    """One-time codes looked for."""
    leaks: tuple[str, ...]
    """"<secret> in <where>" for each secret found outside where it belongs."""
    code_tables: frozenset[str]
    """"<node>.<table>" of every store table holding a code's value."""

    def summary(self) -> str:
        """One line for the test report."""
        return (
            f"{self.logs} logs ({self.log_bytes} bytes) and {self.store_files} store files "
            f"scanned for {self.keys} private keys, {self.numbers} instrument numbers and "
            f"{self.codes} one-time codes: {len(self.leaks)} found outside the device inbox"
        )


def key_material(pki_dir: Path) -> dict[str, list[bytes]]:
    """Every private key of the PKI, as the forms it could leak in: PEM body, raw, hex.

    For an RSA key the raw form is its private exponent, and the PEM piece is taken
    from a line in the middle (the start is the same for every key of a size)."""
    found = {}
    for path in sorted(pki_dir.rglob("*")):
        if not path.is_file() or not path.name.endswith(("key.pem", ".key")):
            continue
        pem = path.read_bytes()
        body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
        key = serialization.load_pem_private_key(pem, password=None)
        if isinstance(key, rsa.RSAPrivateKey):
            d = key.private_numbers().d
            raw = d.to_bytes((d.bit_length() + 7) // 8, "big")
            lines = [line for line in pem.splitlines() if not line.startswith(b"-----")]
            found[str(path.relative_to(pki_dir))] = [
                lines[len(lines) // 2][:40],
                raw,
                raw.hex().encode(),
            ]
            continue
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


def code_forms(code: str) -> list[bytes]:
    """How a code would appear if leaked: a JSON or repr string, or a protobuf string field."""
    raw = code.encode()
    return [b'"' + raw + b'"', b"'" + raw + b"'", b"=" + raw, bytes([len(raw)]) + raw]


def codes_in_inboxes(network: NetworkConfig) -> list[str]:
    """Every one-time code the banks delivered, read back from their device inboxes."""
    codes = []
    for node in network.nodes:
        for db in node.data_dir.glob("*.sqlite3"):
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                if not _has_table(conn, _INBOX_TABLE):
                    continue
                for (blob,) in conn.execute(f"SELECT event FROM {_INBOX_TABLE}"):  # noqa: S608
                    event = notification_pb2.SubscribeResponse.FromString(blob)
                    if event.HasField("one_time_code"):
                        codes.append(event.one_time_code.code)
    return codes


def scan(network: NetworkConfig, log_dir: Path, codes: list[str]) -> Scan:
    """Look for every key, instrument number and code in every log and store file."""
    logs = {p.name: p.read_bytes() for p in sorted(log_dir.glob("*.log"))}
    stores = {
        f"{node.name}/{p.name}": p.read_bytes()
        for node in network.nodes
        for p in sorted(node.data_dir.rglob("*"))
        if p.is_file()
    }
    assert logs and stores, "nothing to scan"
    everything = {
        **{f"log {k}": v for k, v in logs.items()},
        **{f"store {k}": v for k, v in stores.items()},
    }
    numbers = [c.card_number for c in network.customers] + [
        c.account_number for c in network.customers
    ]
    keys = key_material(network.pki_dir)
    forms = [code_forms(code) for code in codes]
    inboxes = _inbox_files(network)
    leaks = []
    for where, data in everything.items():
        leaks += [f"instrument number in {where}" for n in numbers if n.encode() in data]
        leaks += [
            f"private key {name} in {where}"
            for name, key_forms in keys.items()
            if any(form in data for form in key_forms)
        ]
        if where not in inboxes:
            leaks += [
                f"one-time code in {where}"
                for leaked_as in forms
                if any(form in data for form in leaked_as)
            ]
    code_tables: set[str] = set()
    for node in network.nodes:
        for db in node.data_dir.glob("*.sqlite3"):
            code_tables |= {f"{node.name}.{t}" for t in _tables_holding(db, codes)}
    return Scan(
        logs=len(logs),
        log_bytes=sum(len(v) for v in logs.values()),
        store_files=len(stores),
        keys=len(keys),
        numbers=len(numbers),
        codes=len(codes),
        leaks=tuple(leaks),
        code_tables=frozenset(code_tables),
    )


def _inbox_files(network: NetworkConfig) -> set[str]:
    """The store files of the issuers, whose outbox is the device inbox."""
    return {
        f"store {node.name}/{node.store_path.name}{suffix}"
        for node in network.nodes
        if node.role is Role.BANK and node.store_path.exists()
        for suffix in ("", "-wal")
    }


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return found is not None


def _tables_holding(db: Path, codes: list[str]) -> set[str]:
    """The tables of an SQLite store with a value that is, or serializes, one of codes."""
    exact = {code.encode() for code in codes}
    forms = [form for code in codes for form in code_forms(code)]
    tables = set()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in names:
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 (names from the schema)
                for value in row:
                    data = value.encode() if isinstance(value, str) else value
                    if isinstance(data, bytes) and (
                        data in exact or any(form in data for form in forms)
                    ):
                        tables.add(table)
    return tables
