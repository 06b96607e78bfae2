"""Read-only snapshots of every node's store for reconciliation.

Each node's SQLite store is opened read-only, in one read transaction, so all
of its tables come from the same snapshot, and read through its service's own
functions (:mod:`merchant.orders`, :mod:`merchant.cheque_deposits`,
:mod:`merchant.coin_deposits`, :mod:`gateway.store`, :mod:`bank.books`).
What reconciliation compares is taken out of each: the merchants' orders as
``Order``, and every gateway transaction, hold, credit transfer, payment
return, cheque and coin deposit as a ``Record`` in one shape, kept by kind in
a ``Table`` indexed the way orders look them up.

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

from interbank.v1 import authorization_pb2, order_pb2

from bank import books as bank_books
from gateway import store
from merchant import cheque_deposits, coin_deposits, orders
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
_HOLD_STATUS: Final = {
    value: name.removeprefix("HOLD_STATUS_") for name, value in authorization_pb2.HoldStatus.items()
}


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
    deposit_id: str = ""
    """For an order paid by cheque or with coins, the acquirer's deposit id ("" until it
    answered)."""
    by_cheque: bool = False
    """True if the merchant took a cheque for the order."""
    by_coins: bool = False
    """True if the merchant took coins for the order (a payment the issuer has not
    refused)."""


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
        path = node.store_path
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
    cheques = {c.order_id: c for c in cheque_deposits.all_cheque_payments(conn)}
    coins = {
        c.order_id: c
        for c in coin_deposits.all_coin_payments(conn)
        if c.state != coin_deposits.REJECTED
    }
    for record in orders.all_orders(conn):
        order = record.order
        cheque = cheques.get(order.order_id)
        paid = coins.get(order.order_id)
        deposit = cheque or paid
        books.orders.append(
            Order(
                node.name,
                order.order_id,
                order.status,
                record.transaction_id,
                order.total.amount_minor,
                order.refunded_total.amount_minor,
                deposit.deposit_id if deposit else "",
                cheque is not None,
                paid is not None,
            )
        )


def _read_gateway(conn: sqlite3.Connection, books: Books) -> None:
    where = "gateway payment_transaction"
    for t in store.all_transactions(conn):
        status = _HOLD_STATUS.get(t.hold_status, str(t.hold_status))
        books.tables["gateway"].add(
            Record(
                where,
                GATEWAY,
                t.issuer_bank_code,
                t.transaction_id,
                t.order_id,
                t.amount_minor,
                status,
                t.instruction_id,
                t.refunded_minor,
            )
        )


def _read_bank(conn: sqlite3.Connection, node: NodeConfig, books: Books) -> None:
    code = bank_code(node)

    for hold in bank_books.hold_records(conn):
        books.tables["hold"].add(
            Record(
                f"issuer {node.name} holds",
                code,
                code,
                hold.hold_id,
                hold.order_id,
                hold.amount,
                hold.status,
                hold.instruction_id,
                hold.refunded_minor,
                hold.account_id,
                hold.transaction_id,
            )
        )
    sent = bank_books.outgoing_records(conn)
    for out in (o for o in sent if o.kind == "transfer"):
        books.tables["outgoing"].add(
            Record(
                f"issuer {node.name} outgoing_transfers",
                code,
                code,
                out.instruction_id,
                out.order_id,
                out.amount,
                out.settlement_state,
                account_id=out.account_id,
            )
        )
    for out in (o for o in sent if o.kind == "return"):
        books.tables["return out"].add(
            Record(
                f"acquirer {node.name} outgoing_transfers",
                code,
                code,
                out.instruction_id,
                out.order_id,
                out.amount,
                out.settlement_state,
                out.original_instruction_id,
                account_id=out.account_id,
            )
        )
    for incoming in bank_books.incoming_transfer_records(conn):
        books.tables["incoming"].add(
            Record(
                f"acquirer {node.name} incoming_transfers",
                code,
                incoming.debtor_agent,
                incoming.instruction_id,
                incoming.end_to_end_id,
                incoming.amount,
                incoming.status,
                account_id=incoming.account_id,
            )
        )
    for deposit in bank_books.cheque_deposit_records(conn):
        books.tables["deposit"].add(
            Record(
                f"acquirer {node.name} cheque_deposits",
                code,
                deposit.drawee_bank_code,
                deposit.deposit_id,
                deposit.order_id,
                deposit.amount,
                deposit.state,
                account_id=deposit.account_id,
            )
        )
    for paid in bank_books.cheque_paid_records(conn):
        books.tables["cheque paid"].add(
            Record(
                f"drawee {node.name} cheques_paid",
                code,
                code,
                paid.presentment_id,
                "",
                paid.amount,
                "PAID",
                link=paid.presenting_agent,
            )
        )
    for coins in bank_books.coin_deposit_records(conn):
        books.tables["coin deposit"].add(
            Record(
                f"acquirer {node.name} coin_deposits",
                code,
                coins.issuing_bank_code,
                coins.deposit_id,
                coins.order_id,
                coins.amount,
                coins.state,
                account_id=coins.account_id,
            )
        )
    for taken in bank_books.coin_received_records(conn):
        books.tables["coins taken"].add(
            Record(
                f"issuer {node.name} coin_deposits_received",
                code,
                code,
                taken.deposit_id,
                taken.order_id,
                taken.amount,
                taken.status,
                link=taken.presenting_agent,
            )
        )
    for back in bank_books.incoming_return_records(conn):
        books.tables["return in"].add(
            Record(
                f"issuer {node.name} incoming_returns",
                code,
                back.returning_agent,
                back.return_id,
                "",
                back.amount,
                back.status,
                back.original_instruction_id,
                account_id=back.account_id,
            )
        )


def _read_settlement(conn: sqlite3.Connection, node: NodeConfig, books: Books) -> None:
    kinds = {
        "transfer": "settlement",
        "return": "return settled",
        "cheque": "cheque settled",
        "coins": "coins settled",
    }
    for entry in bank_books.settlement_records(conn):
        books.tables[kinds[entry.kind]].add(
            Record(
                "settlement settlement_transfers",
                bank_code(node),
                entry.debtor_agent,
                entry.instruction_id,
                entry.end_to_end_id,
                entry.amount,
                entry.status,
                entry.original_instruction_id,
            )
        )
