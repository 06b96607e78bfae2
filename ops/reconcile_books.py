"""Read-only snapshots of every node's store for reconciliation.

Each node's SQLite store is opened read-only, in one read transaction, so all
of its tables come from the same snapshot. What reconciliation compares is
taken out of each: the merchants' orders as ``Order``, and every gateway
transaction, hold, credit transfer and payment return as a ``Record`` in one
shape, kept by kind in a ``Table`` indexed the way orders look them up.

A store that does not exist is noted as a ``MissingStore``, not raised: the
rest of the network can still be reconciled. Stores are read one after
another, not in one snapshot across the network.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from interbank.v1 import authorization_pb2, order_pb2, settlement_pb2

from payment.config import NetworkConfig, NodeConfig, Role
from payment.storage import read_snapshot

__all__ = [
    "GATEWAY",
    "Books",
    "MissingStore",
    "Order",
    "Record",
    "Table",
    "bank_code",
    "read_books",
]

GATEWAY: Final = "gateway"
"""The holder of gateway records, beside the bank codes that hold the others."""
_STORE_FILES: Final = {
    Role.MERCHANT: "merchant.sqlite3",
    Role.GATEWAY: "gateway.sqlite3",
    Role.BANK: "bank.sqlite3",
    Role.SETTLEMENT: "settlement.sqlite3",
}
_HOLD_STATUS: Final = {
    value: name.removeprefix("HOLD_STATUS_") for name, value in authorization_pb2.HoldStatus.items()
}
# Columns in Record's order after where and holder: payer, ident, order_id, amount, status,
# link, refunded, account_id, transaction_id; :code is the bank's own code.
_BANK_QUERIES: Final = (
    (
        "hold",
        "issuer",
        "holds",
        "SELECT :code, hold_id, order_id, amount, status, COALESCE(instruction_id, ''),"
        " refunded_minor, account_id, transaction_id FROM holds",
    ),
    (
        "outgoing",
        "issuer",
        "outgoing_transfers",
        "SELECT :code, instruction_id, order_id, amount, settlement_state, '', 0, account_id, ''"
        " FROM outgoing_transfers WHERE kind = 'transfer'",
    ),
    (
        "return out",
        "acquirer",
        "outgoing_transfers",
        "SELECT :code, instruction_id, order_id, amount, settlement_state,"
        " COALESCE(original_instruction_id, ''), 0, account_id, ''"
        " FROM outgoing_transfers WHERE kind = 'return'",
    ),
    (
        "incoming",
        "acquirer",
        "incoming_transfers",
        "SELECT debtor_agent, instruction_id, end_to_end_id, amount, status, '', 0,"
        " COALESCE(account_id, ''), '' FROM incoming_transfers",
    ),
    (
        "return in",
        "issuer",
        "incoming_returns",
        "SELECT returning_agent, return_id, '', amount, status, original_instruction_id, 0,"
        " COALESCE(account_id, ''), '' FROM incoming_returns",
    ),
)


@dataclass(frozen=True)
class Order:
    """A merchant's order, the spine every other record is checked against."""

    merchant: str
    """The merchant node that keeps it."""
    order_id: str
    """The end-to-end id."""
    status: order_pb2.OrderStatus.ValueType
    """The order's status."""
    transaction_id: str
    """The gateway's transaction of its payment; "" if never authorized."""
    total: int
    """The amount due, in minor units."""
    refunded: int
    """The amount refunded so far, in minor units."""


@dataclass(frozen=True)
class Record:
    """A gateway transaction, a hold or an interbank message, as far as it is compared."""

    where: str
    """Role, node and table, e.g. "acquirer beta incoming_transfers"."""
    holder: str
    """Who keeps it: a bank code, or "gateway"."""
    payer: str
    """The paying agent's bank code (the issuer's, for a gateway transaction)."""
    ident: str
    """Its id in its table: transaction, hold, instruction or return id."""
    order_id: str
    """The end-to-end id it names; "" where the table does not say."""
    amount: int
    """The amount, in minor units."""
    status: str
    """Its status as its table spells it (a hold status by name)."""
    link: str = ""
    """The capture's instruction id (gateway, hold) or the one returned (returns)."""
    refunded: int = 0
    """Money refunded so far (gateway, hold)."""
    account_id: str = ""
    """The account debited (outgoing) or credited (incoming)."""
    transaction_id: str = ""
    """The gateway's transaction id (holds)."""

    @property
    def record(self) -> str:
        """The record's name in the report."""
        return f"{self.where} {self.ident}"


@dataclass(frozen=True)
class MissingStore:
    """A node whose store does not exist where its config says."""

    node: NodeConfig
    """The node."""
    path: Path
    """Where its store was looked for."""


class Table:
    """Records of one kind from every store that keeps them, indexed as orders look them up."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._by_key: dict[tuple[str, str, str], Record] = {}
        self._by_field: defaultdict[tuple[str, str], list[Record]] = defaultdict(list)

    def add(self, record: Record) -> None:
        """Keep and index a record."""
        self.records.append(record)
        self._by_key[(record.holder, record.payer, record.ident)] = record
        for name in ("ident", "order_id", "link", "transaction_id"):
            self._by_field[(name, getattr(record, name))].append(record)

    def get(self, holder: str, payer: str, ident: str) -> Record | None:
        """The record a store keeps under (paying agent, id), or None."""
        return self._by_key.get((holder, payer, ident)) if ident else None

    def where(self, name: str, value: str) -> list[Record]:
        """Records whose field name (ident, order_id, link or transaction_id) is value."""
        return self._by_field.get((name, value), []) if value else []


@dataclass
class Books:
    """Everything read from the stores."""

    orders: list[Order] = field(default_factory=list)
    """Every merchant's orders."""
    tables: defaultdict[str, Table] = field(default_factory=lambda: defaultdict(Table))
    """Every other record, by kind: gateway, hold, outgoing, settlement, incoming, return ..."""
    read: set[str] = field(default_factory=set)
    """Bank codes, merchant names and "gateway": whose store was read."""
    all_banks_read: bool = True
    """False if a commercial bank's store is missing."""
    missing: list[MissingStore] = field(default_factory=list)
    """Every store that does not exist, in the network's node order."""


def read_books(network: NetworkConfig) -> Books:
    """Read every node's store of the network, each from one read-only snapshot."""
    books = Books()
    for node in network.nodes:
        path = node.data_dir / _STORE_FILES[node.role]
        if not path.exists():
            books.missing.append(MissingStore(node, path))
            books.all_banks_read &= node.role is not Role.BANK
            continue
        with read_snapshot(path) as conn:
            if node.role is Role.MERCHANT:
                _read_orders(conn, node, books)
            elif node.role is Role.GATEWAY:
                _read_gateway(conn, books)
            elif node.role is Role.BANK:
                _read_bank(conn, node, books)
            else:
                _read_settlement(conn, node, books)
        books.read.add(GATEWAY if node.role is Role.GATEWAY else node.bank_code or node.name)
    return books


def bank_code(node: NodeConfig) -> str:
    """The node's bank code as records' holder and payer spell it; "" if it has none."""
    return node.bank_code or ""


def _read_orders(conn: sqlite3.Connection, node: NodeConfig, books: Books) -> None:
    for order_id, status, transaction_id, blob in conn.execute(
        "SELECT order_id, status, transaction_id, order_message FROM orders ORDER BY created_at"
    ):
        message = order_pb2.Order.FromString(blob)
        books.orders.append(
            Order(
                node.name,
                order_id,
                order_pb2.OrderStatus.ValueType(status),
                transaction_id,
                message.total.amount_minor,
                message.refunded_total.amount_minor,
            )
        )


def _read_gateway(conn: sqlite3.Connection, books: Books) -> None:
    for issuer, tid, order_id, amount, hold_status, instruction, refunded in conn.execute(
        "SELECT issuer_bank_code, transaction_id, order_id, amount_minor, hold_status,"
        " instruction_id, refunded_minor FROM payment_transaction"
    ):
        status = _HOLD_STATUS.get(hold_status, str(hold_status))
        where = "gateway payment_transaction"
        books.tables["gateway"].add(
            Record(where, GATEWAY, issuer, tid, order_id, amount, status, instruction, refunded)
        )


def _read_bank(conn: sqlite3.Connection, node: NodeConfig, books: Books) -> None:
    code = bank_code(node)
    for kind, role, table, query in _BANK_QUERIES:
        for row in conn.execute(query, {"code": code}):
            books.tables[kind].add(Record(f"{role} {node.name} {table}", code, *row))


def _read_settlement(conn: sqlite3.Connection, node: NodeConfig, books: Books) -> None:
    for payer, ident, kind, original, amount, status, blob in conn.execute(
        "SELECT debtor_agent, instruction_id, kind, COALESCE(original_instruction_id, ''),"
        " amount, status, message FROM settlement_transfers"
    ):
        # The table keeps the end-to-end id only inside the message.
        if kind == "transfer":
            order_id = settlement_pb2.CreditTransfer.FromString(blob).end_to_end_id
        else:
            order_id = settlement_pb2.PaymentReturn.FromString(blob).original_end_to_end_id
        books.tables["settlement" if kind == "transfer" else "return settled"].add(
            Record(
                "settlement settlement_transfers",
                bank_code(node),
                payer,
                ident,
                order_id,
                amount,
                status,
                original,
            )
        )
