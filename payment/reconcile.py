"""``paynet reconcile``: match every order against every record of its payment, network-wide.

A paid order leaves a record in each store on its way: the gateway's
transaction, the issuer's hold and outgoing credit transfer, the settlement
bank's transfer and the acquirer's incoming credit; a refund adds a payment
return at the acquirer, the settlement bank and the issuer. Reconciliation
reads every node's SQLite store read-only, one snapshot per store, and checks
each of those records against the merchant's order (the spine), never against
its neighbour in the chain: one wrong record is then one mismatch, not a
cascade. Captures and credits that no order accounts for are reported too.

It is an operator tool, run where the stores are. Stores are read one after
another, so a payment moving while it runs can show as a passing mismatch.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from interbank.v1 import authorization_pb2, order_pb2, settlement_pb2

from payment.config import NetworkConfig, NodeConfig, Role

__all__ = ["Mismatch", "ReconcileReport", "reconcile", "render_table"]


@dataclass(frozen=True)
class Mismatch:
    """One record that disagrees with its order, is missing, or has no order."""

    order_id: str
    """The order's end-to-end id; "" if none is known."""
    record: str
    """Which record: role, node, table and id, e.g. "acquirer beta incoming_transfers <id>"."""
    check: str
    """What disagrees, in UPPER_SNAKE: AMOUNT_DIFFERS, STATUS_DIFFERS, MISSING, ORPHAN, ..."""
    expected: str
    """What the order implies for the record."""
    found: str
    """What the record holds."""


@dataclass(frozen=True)
class ReconcileReport:
    """The outcome of one reconciliation of the whole network."""

    transactions: int
    """Orders examined."""
    mismatches: tuple[Mismatch, ...]
    """Every disagreement found; empty in a healthy network."""

    @property
    def ok(self) -> bool:
        """True if every record matched its order."""
        return not self.mismatches

    def to_json(self) -> dict[str, object]:
        """The report as a JSON-ready dict."""
        return {
            "ok": self.ok,
            "transactions": self.transactions,
            "mismatches": [asdict(m) for m in self.mismatches],
        }


def reconcile(network: NetworkConfig) -> ReconcileReport:
    """Read every store of the network and match each order against its payment's records."""
    books = _read_books(network)
    claimed: set[_Record] = set()
    found = list(books.missing)
    for order in books.orders:
        payment = _link(network, books, order)
        claimed.update(r for r in (payment.gateway, payment.hold) if r)
        found.extend(_check_gateway_and_hold(network, books, payment))
        found.extend(_check_legs(network, books, payment, claimed))
        found.extend(_check_returns(network, books, payment))
    found.extend(_unclaimed(network, books, claimed))
    return ReconcileReport(transactions=len(books.orders), mismatches=tuple(found))


def render_table(report: ReconcileReport) -> str:
    """A plain-text table: a header and one row per mismatch."""
    if report.ok:
        return f"no mismatches: {report.transactions} transactions reconciled"
    header = ("ORDER", "CHECK", "RECORD", "EXPECTED", "FOUND")
    rows = [header] + [
        (m.order_id or "-", m.check, m.record, m.expected, m.found) for m in report.mismatches
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


# -- what an order implies ----------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """What an order's status allows for one record of its payment."""

    required: bool = False
    """The record must exist."""
    allowed: frozenset[str] | None = None
    """The statuses it may have; None for any."""
    forbidden: frozenset[str] = frozenset()
    """Statuses it may not have."""

    def breaks(self, status: str) -> bool:
        """True if a record in status breaks the rule."""
        return status in self.forbidden or (self.allowed is not None and status not in self.allowed)

    def describe(self) -> str:
        """The rule as the report's expected column."""
        if self.allowed is not None:
            return "|".join(sorted(self.allowed))
        return "not " + "|".join(sorted(self.forbidden)) if self.forbidden else "present"


@dataclass(frozen=True)
class _Expected:
    """What one family of order statuses implies for each record of the payment."""

    gateway: _Rule
    """The gateway's transaction (its status is the hold status it last heard)."""
    hold: _Rule
    """The issuer's hold."""
    outgoing: _Rule
    """The issuer's outgoing credit transfer (its settlement state)."""
    settlement: _Rule
    """The settlement bank's transfer."""
    incoming: _Rule
    """The acquirer's incoming credit transfer."""


def _must(status: str) -> _Rule:
    return _Rule(required=True, allowed=frozenset({status}))


def _never(status: str) -> _Rule:
    return _Rule(forbidden=frozenset({status}))


_PRESENT: Final = _Rule(required=True)
_PAID_OUT: Final = frozenset(
    {
        order_pb2.ORDER_STATUS_SETTLED,
        order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED,
        order_pb2.ORDER_STATUS_PARTIALLY_REFUNDED,
        order_pb2.ORDER_STATUS_REFUNDED,
    }
)
_EXPECTED: Final = {
    "paid out": _Expected(*map(_must, ("CAPTURED", "CAPTURED", "SETTLED", "ACCEPTED", "ACCEPTED"))),
    # The capture is recorded; its interbank leg may still be on its way.
    "captured": _Expected(_must("CAPTURED"), _must("CAPTURED"), _PRESENT, _Rule(), _Rule()),
    "reversed": _Expected(
        _PRESENT,
        _PRESENT,
        _must("REJECTED"),
        _Rule(allowed=frozenset({"REJECTED"})),
        _never("ACCEPTED"),
    ),
    "unpaid": _Expected(*map(_never, ("CAPTURED", "CAPTURED", "SETTLED", "ACCEPTED", "ACCEPTED"))),
}


def _expected(status: order_pb2.OrderStatus.ValueType) -> _Expected:
    if status in _PAID_OUT:
        return _EXPECTED["paid out"]
    if status == order_pb2.ORDER_STATUS_CAPTURED:
        return _EXPECTED["captured"]
    if status == order_pb2.ORDER_STATUS_REVERSED:
        return _EXPECTED["reversed"]
    return _EXPECTED["unpaid"]


# -- matching --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Order:
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
class _Record:
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
class _Payment:
    """An order and what ties it to the records of its payment."""

    order: _Order
    """The order."""
    acquirer: str
    """The merchant's bank code."""
    account_id: str
    """The merchant's account at the acquirer."""
    issuer: str
    """The paying bank's code, where the hold is (else the gateway's word); "" if unknown."""
    gateway: _Record | None
    """The gateway's transaction named by the order."""
    hold: _Record | None
    """The issuer's hold for that transaction."""
    instruction: str
    """The capture's instruction id, as most records have it; "" if never captured."""


def _link(network: NetworkConfig, books: _Books, order: _Order) -> _Payment:
    merchant = network.merchant(order.merchant)
    acquirer = _code(network.node(merchant.bank))
    gateway = next(iter(books.tables["gateway"].where("ident", order.transaction_id)), None)
    hold = next(iter(books.tables["hold"].where("transaction_id", order.transaction_id)), None)
    issuer = hold.holder if hold else gateway.payer if gateway else ""
    # A vote, not the hold's word: one record with a wrong id must stay that record's
    # mismatch and not unlink the rest of the payment.
    votes = Counter(r.link for r in (hold, gateway) if r and r.link)
    for kind in ("outgoing", "settlement", "incoming"):
        votes.update(
            r.ident
            for r in books.tables[kind].where("order_id", order.order_id)
            if r.payer == issuer
        )
    instruction = votes.most_common(1)[0][0] if votes else ""
    return _Payment(order, acquirer, merchant.account_id, issuer, gateway, hold, instruction)


def _check(order: _Order, record: _Record | None, rule: _Rule, missing: str) -> Iterator[Mismatch]:
    """A record against its rule and the order's total; missing names it if it is absent."""
    if record is None:
        if rule.required:
            yield Mismatch(order.order_id, missing, "MISSING", rule.describe(), "-")
        return
    if record.order_id != order.order_id:
        yield _mismatch(order, record, "ORDER_DIFFERS", order.order_id, record.order_id or "-")
    if rule.breaks(record.status):
        yield _mismatch(order, record, "STATUS_DIFFERS", rule.describe(), record.status)
    if record.amount != order.total:
        yield _mismatch(order, record, "AMOUNT_DIFFERS", order.total, record.amount)


def _check_gateway_and_hold(
    network: NetworkConfig, books: _Books, payment: _Payment
) -> Iterator[Mismatch]:
    order, rules = payment.order, _expected(payment.order.status)
    checks = []
    if _GATEWAY in books.read:
        rule = rules.gateway
        if order.transaction_id:  # the merchant learnt it from the gateway
            rule = _Rule(True, rule.allowed, rule.forbidden)
        missing = f"gateway payment_transaction {order.transaction_id or '-'}"
        checks.append((payment.gateway, rule, missing))
        if payment.gateway and payment.hold and payment.gateway.payer != payment.hold.holder:
            yield _mismatch(
                order, payment.gateway, "ISSUER_DIFFERS", payment.hold.holder, payment.gateway.payer
            )
    if payment.issuer in books.read or (not payment.issuer and books.all_banks_read):
        holds = _where(network, "issuer", payment.issuer, "holds")
        missing = f"{holds} transaction {order.transaction_id or '-'}"
        checks.append((payment.hold, rules.hold, missing))
    for record, rule, missing in checks:
        yield from _check(order, record, rule, missing)
        if record is None:
            continue
        if record.refunded != order.refunded:
            yield _mismatch(order, record, "REFUNDED_DIFFERS", order.refunded, record.refunded)
        if payment.instruction and record.link != payment.instruction:
            yield _mismatch(
                order, record, "INSTRUCTION_DIFFERS", payment.instruction, record.link or "-"
            )


def _check_legs(
    network: NetworkConfig, books: _Books, payment: _Payment, claimed: set[_Record]
) -> Iterator[Mismatch]:
    """The capture's credit transfer at the issuer, the settlement bank and the acquirer."""
    order, rules, instruction = payment.order, _expected(payment.order.status), payment.instruction
    legs = (
        ("outgoing", payment.issuer, rules.outgoing, "issuer"),
        ("settlement", _code(network.the(Role.SETTLEMENT)), rules.settlement, "settlement"),
        ("incoming", payment.acquirer, rules.incoming, "acquirer"),
    )
    for kind, holder, rule, role in legs:
        if holder not in books.read:
            continue
        leg = books.tables[kind].get(holder, payment.issuer, instruction)
        if leg is None:
            # Not under the instruction's key: the order's own record, if any, has the wrong key.
            leg = next(
                (
                    r
                    for r in books.tables[kind].where("order_id", order.order_id)
                    if r.holder == holder and r not in claimed
                ),
                None,
            )
        if leg is not None:
            claimed.add(leg)
        missing = f"{_where(network, role, holder, _TABLES[kind])} {instruction or '-'}"
        yield from _check(order, leg, rule, missing)
        if leg and instruction and (leg.payer, leg.ident) != (payment.issuer, instruction):
            expected = f"{payment.issuer} {instruction}"
            yield _mismatch(order, leg, "INSTRUCTION_DIFFERS", expected, f"{leg.payer} {leg.ident}")
        if kind == "incoming" and leg and leg.account_id != payment.account_id:
            yield _mismatch(order, leg, "ACCOUNT_DIFFERS", payment.account_id, leg.account_id)


def _check_returns(network: NetworkConfig, books: _Books, payment: _Payment) -> Iterator[Mismatch]:
    """Each store's settled returns of the capture must add up to the order's refunded total."""
    if not payment.instruction:
        return
    order = payment.order
    for kind, holder, settled, role in (
        ("return out", payment.acquirer, "SETTLED", "acquirer"),
        ("return settled", _code(network.the(Role.SETTLEMENT)), "ACCEPTED", "settlement"),
        ("return in", payment.issuer, "ACCEPTED", "issuer"),
    ):
        if holder not in books.read:
            continue
        returned = sum(
            r.amount
            for r in books.tables[kind].where("link", payment.instruction)
            if r.holder == holder and r.payer == payment.acquirer and r.status == settled
        )
        if returned != order.refunded:
            where = (
                f"{_where(network, role, holder, _TABLES[kind])} returns of {payment.instruction}"
            )
            yield Mismatch(
                order.order_id, where, "REFUNDED_DIFFERS", str(order.refunded), str(returned)
            )


def _unclaimed(network: NetworkConfig, books: _Books, claimed: set[_Record]) -> Iterator[Mismatch]:
    """Captures and credits no order accounted for: a second payment of an order, or orphans."""
    known = {order.order_id for order in books.orders}
    # With a merchant's store missing, its orders are unknown: nothing is provably an orphan.
    all_orders_read = all(m.name in books.read for m in network.merchants)
    for kind in ("hold", "outgoing", "settlement", "incoming"):
        for record in books.tables[kind].records:
            if record in claimed or (kind == "hold" and record.status != "CAPTURED"):
                continue
            if record.order_id in known:
                yield _mismatch(record, record, "UNMATCHED", "one payment per order", record.status)
            elif all_orders_read:
                yield _mismatch(record, record, "ORPHAN", "an order", "no such order")


def _mismatch(
    order: _Order | _Record, record: _Record, check: str, expected: object, found: object
) -> Mismatch:
    return Mismatch(order.order_id, record.record, check, str(expected), str(found))


def _where(network: NetworkConfig, role: str, code: str, table: str) -> str:
    """A record's role, node and table, e.g. "issuer alfa outgoing_transfers"."""
    if role == "settlement":
        return f"settlement {table}"
    node = network.bank_by_code(code) if code else None
    return f"{role} {node.name if node else code or '?'} {table}"


def _code(node: NodeConfig) -> str:
    return node.bank_code or ""


# -- reading the stores ----------------------------------------------------------------------

_GATEWAY: Final = "gateway"
"""The holder of gateway records, beside the bank codes that hold the others."""
_STORE_FILES: Final = {
    Role.MERCHANT: "merchant.sqlite3",
    Role.GATEWAY: "gateway.sqlite3",
    Role.BANK: "bank.sqlite3",
    Role.SETTLEMENT: "settlement.sqlite3",
}
_TABLES: Final = {
    "outgoing": "outgoing_transfers",
    "settlement": "settlement_transfers",
    "incoming": "incoming_transfers",
    "return out": "outgoing_transfers",
    "return settled": "settlement_transfers",
    "return in": "incoming_returns",
}
_HOLD_STATUS: Final = {
    value: name.removeprefix("HOLD_STATUS_") for name, value in authorization_pb2.HoldStatus.items()
}
# Columns in _Record's order after where and holder: payer, ident, order_id, amount, status,
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


class _Table:
    """Records of one kind from every store that keeps them, indexed as orders look them up."""

    def __init__(self) -> None:
        self.records: list[_Record] = []
        self._by_key: dict[tuple[str, str, str], _Record] = {}
        self._by_field: defaultdict[tuple[str, str], list[_Record]] = defaultdict(list)

    def add(self, record: _Record) -> None:
        """Keep and index a record."""
        self.records.append(record)
        self._by_key[(record.holder, record.payer, record.ident)] = record
        for name in ("ident", "order_id", "link", "transaction_id"):
            self._by_field[(name, getattr(record, name))].append(record)

    def get(self, holder: str, payer: str, ident: str) -> _Record | None:
        """The record a store keeps under (paying agent, id), or None."""
        return self._by_key.get((holder, payer, ident)) if ident else None

    def where(self, name: str, value: str) -> list[_Record]:
        """Records whose field name (ident, order_id, link or transaction_id) is value."""
        return self._by_field.get((name, value), []) if value else []


@dataclass
class _Books:
    """Everything read from the stores."""

    orders: list[_Order] = field(default_factory=list)
    """Every merchant's orders."""
    tables: defaultdict[str, _Table] = field(default_factory=lambda: defaultdict(_Table))
    """Every other record, by kind: gateway, hold, outgoing, settlement, incoming, return ..."""
    read: set[str] = field(default_factory=set)
    """Bank codes, merchant names and "gateway": whose store was read."""
    all_banks_read: bool = True
    """False if a commercial bank's store is missing."""
    missing: list[Mismatch] = field(default_factory=list)
    """One STORE_MISSING per store that does not exist."""


def _read_books(network: NetworkConfig) -> _Books:
    books = _Books()
    for node in network.nodes:
        path = node.data_dir / _STORE_FILES[node.role]
        if not path.exists():
            books.missing.append(
                Mismatch("", f"{node.role} {node.name}", "STORE_MISSING", str(path), "no such file")
            )
            books.all_banks_read &= node.role is not Role.BANK
            continue
        with _read_only(path) as conn:
            if node.role is Role.MERCHANT:
                _read_orders(conn, node, books)
            elif node.role is Role.GATEWAY:
                _read_gateway(conn, books)
            elif node.role is Role.BANK:
                _read_bank(conn, node, books)
            else:
                _read_settlement(conn, node, books)
        books.read.add(_GATEWAY if node.role is Role.GATEWAY else node.bank_code or node.name)
    return books


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        # One read transaction, so every table of the store comes from the same snapshot.
        conn.execute("BEGIN")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def _read_orders(conn: sqlite3.Connection, node: NodeConfig, books: _Books) -> None:
    for order_id, status, transaction_id, blob in conn.execute(
        "SELECT order_id, status, transaction_id, order_message FROM orders ORDER BY created_at"
    ):
        message = order_pb2.Order.FromString(blob)
        books.orders.append(
            _Order(
                node.name,
                order_id,
                order_pb2.OrderStatus.ValueType(status),
                transaction_id,
                message.total.amount_minor,
                message.refunded_total.amount_minor,
            )
        )


def _read_gateway(conn: sqlite3.Connection, books: _Books) -> None:
    for issuer, tid, order_id, amount, hold_status, instruction, refunded in conn.execute(
        "SELECT issuer_bank_code, transaction_id, order_id, amount_minor, hold_status,"
        " instruction_id, refunded_minor FROM payment_transaction"
    ):
        status = _HOLD_STATUS.get(hold_status, str(hold_status))
        where = "gateway payment_transaction"
        books.tables["gateway"].add(
            _Record(where, _GATEWAY, issuer, tid, order_id, amount, status, instruction, refunded)
        )


def _read_bank(conn: sqlite3.Connection, node: NodeConfig, books: _Books) -> None:
    code = _code(node)
    for kind, role, table, query in _BANK_QUERIES:
        for row in conn.execute(query, {"code": code}):
            books.tables[kind].add(_Record(f"{role} {node.name} {table}", code, *row))


def _read_settlement(conn: sqlite3.Connection, node: NodeConfig, books: _Books) -> None:
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
            _Record(
                "settlement settlement_transfers",
                _code(node),
                payer,
                ident,
                order_id,
                amount,
                status,
                original,
            )
        )
