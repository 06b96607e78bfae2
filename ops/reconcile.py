"""``paynet reconcile``: match every order against every record of its payment, network-wide.

A paid order leaves a record in each store on its way: the gateway's
transaction, the issuer's hold and outgoing credit transfer, the settlement
bank's transfer and the acquirer's incoming credit; a refund adds a payment
return at the acquirer, the settlement bank and the issuer. A payment between
two holders of one bank has no record at the settlement bank: it is booked
inside that bank. An order paid by cheque leaves instead the acquirer's
deposit, the drawee's record of the paid serial (under the deposit's id) and,
between two banks, the settlement bank's presentment; an order paid with coins
the acquirer's coin deposit, the issuer's record of the deposit it took (under
the deposit's id) and, between two banks, the settlement bank's. Reconciliation
reads every node's SQLite store read-only, one snapshot per store (see
``ops.reconcile_books``), and checks each of those records against the
merchant's order (the spine), never against its neighbour in the chain: one
wrong record is then one mismatch, not a cascade. Captures and credits that no
order accounts for are reported too.

It is an operator tool, run where the stores are. Stores are read one after
another, so a payment moving while it runs can show as a passing mismatch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Final

from interbank.v1 import order_pb2

from ops.reconcile_books import GATEWAY, Books, Order, Record, bank_code, read_books
from payment.config import NetworkConfig, Role

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
    books = read_books(network)
    claimed: set[Record] = set()
    found = [
        Mismatch("", f"{s.node.role} {s.node.name}", "STORE_MISSING", str(s.path), "no such file")
        for s in books.missing
    ]
    for order in books.orders:
        if order.by_cheque:
            found.extend(_check_cheque(network, books, order, claimed))
            continue
        if order.by_coins:
            found.extend(_check_coins(network, books, order, claimed))
            continue
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

_TABLES: Final = {
    "outgoing": "outgoing_transfers",
    "settlement": "settlement_transfers",
    "incoming": "incoming_transfers",
    "return out": "outgoing_transfers",
    "return settled": "settlement_transfers",
    "return in": "incoming_returns",
    "deposit": "cheque_deposits",
    "cheque paid": "cheques_paid",
    "cheque settled": "settlement_transfers",
    "coin deposit": "coin_deposits",
    "coins taken": "coin_deposits_received",
    "coins settled": "settlement_transfers",
}
"""Each kind of leg or return by the table that keeps it, to name it in the report."""


@dataclass(frozen=True)
class _Payment:
    """An order and what ties it to the records of its payment."""

    order: Order
    """The order."""
    acquirer: str
    """The merchant's bank code."""
    account_id: str
    """The merchant's account at the acquirer."""
    issuer: str
    """The paying bank's code, where the hold is (else the gateway's word); "" if unknown."""
    gateway: Record | None
    """The gateway's transaction named by the order."""
    hold: Record | None
    """The issuer's hold for that transaction."""
    instruction: str
    """The capture's instruction id, as most records have it; "" if never captured."""


def _link(network: NetworkConfig, books: Books, order: Order) -> _Payment:
    merchant = network.merchant(order.merchant)
    acquirer = bank_code(network.node(merchant.bank))
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


def _check(order: Order, record: Record | None, rule: _Rule, missing: str) -> Iterator[Mismatch]:
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
    network: NetworkConfig, books: Books, payment: _Payment
) -> Iterator[Mismatch]:
    order, rules = payment.order, _expected(payment.order.status)
    checks = []
    if GATEWAY in books.read:
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
    network: NetworkConfig, books: Books, payment: _Payment, claimed: set[Record]
) -> Iterator[Mismatch]:
    """The capture's credit transfer at the issuer, the settlement bank and the acquirer."""
    order, rules, instruction = payment.order, _expected(payment.order.status), payment.instruction
    legs = (
        ("outgoing", payment.issuer, rules.outgoing, "issuer"),
        ("settlement", bank_code(network.the(Role.SETTLEMENT)), rules.settlement, "settlement"),
        ("incoming", payment.acquirer, rules.incoming, "acquirer"),
    )
    for kind, holder, rule, role in legs:
        if kind == "settlement" and payment.issuer == payment.acquirer:
            continue  # one bank paid itself: booked inside it, never at the settlement bank
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


def _check_returns(network: NetworkConfig, books: Books, payment: _Payment) -> Iterator[Mismatch]:
    """Each store's settled returns of the capture must add up to the order's refunded total."""
    if not payment.instruction:
        return
    order = payment.order
    for kind, holder, settled, role in (
        ("return out", payment.acquirer, "SETTLED", "acquirer"),
        ("return settled", bank_code(network.the(Role.SETTLEMENT)), "ACCEPTED", "settlement"),
        ("return in", payment.issuer, "ACCEPTED", "issuer"),
    ):
        if holder not in books.read or (
            kind == "return settled" and payment.issuer == payment.acquirer
        ):
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


_CHEQUE_PAID: Final = _Expected(
    gateway=_Rule(),
    hold=_Rule(),
    outgoing=_must("PAID"),  # the acquirer's deposit
    settlement=_must("ACCEPTED"),  # the settlement bank's presentment
    incoming=_must("PAID"),  # the drawee's paid serial
)
_CHEQUE_RETURNED: Final = _Expected(
    _Rule(), _Rule(), _must("RETURNED"), _never("ACCEPTED"), _Rule(allowed=frozenset())
)
_CHEQUE_CLEARING: Final = _Expected(_Rule(), _Rule(), _Rule(), _Rule(), _Rule())
_CHEQUE_UNPAID: Final = _Expected(
    _Rule(), _Rule(), _never("PAID"), _never("ACCEPTED"), _Rule(allowed=frozenset())
)


def _check_cheque(
    network: NetworkConfig, books: Books, order: Order, claimed: set[Record]
) -> Iterator[Mismatch]:
    """An order paid by cheque against its deposit, the drawee's paid serial and the
    settlement bank's presentment, all under the deposit's id."""
    merchant = network.merchant(order.merchant)
    acquirer = bank_code(network.node(merchant.bank))
    if order.status in _PAID_OUT:
        rules = _CHEQUE_PAID
    elif order.status == order_pb2.ORDER_STATUS_FAILED:
        rules = _CHEQUE_RETURNED
    elif order.status == order_pb2.ORDER_STATUS_PAYMENT_PENDING:
        rules = _CHEQUE_CLEARING
    else:
        rules = _CHEQUE_UNPAID
    deposit = next(
        (
            r
            for r in books.tables["deposit"].where("order_id", order.order_id)
            if r.holder == acquirer
        ),
        None,
    )
    if acquirer in books.read:
        where = _where(network, "acquirer", acquirer, "cheque_deposits")
        yield from _check(order, deposit, rules.outgoing, f"{where} {order.deposit_id or '-'}")
        if deposit is not None:
            claimed.add(deposit)
            if order.deposit_id and deposit.ident != order.deposit_id:
                yield _mismatch(order, deposit, "DEPOSIT_DIFFERS", order.deposit_id, deposit.ident)
            if deposit.account_id != merchant.account_id:
                yield _mismatch(
                    order, deposit, "ACCOUNT_DIFFERS", merchant.account_id, deposit.account_id
                )
    deposit_id = order.deposit_id or (deposit.ident if deposit else "")
    drawee = deposit.payer if deposit else ""
    if drawee in books.read:
        paid = books.tables["cheque paid"].get(drawee, drawee, deposit_id)
        if paid is not None:
            claimed.add(paid)
        where = _where(network, "drawee", drawee, "cheques_paid")
        if paid is None and rules.incoming.required:
            yield Mismatch(order.order_id, f"{where} {deposit_id or '-'}", "MISSING", "PAID", "-")
        elif paid is not None and rules.incoming.breaks(paid.status):
            yield _mismatch(order, paid, "UNEXPECTED", "no payment", "PAID")
        elif paid is not None and paid.amount != order.total:
            yield _mismatch(order, paid, "AMOUNT_DIFFERS", order.total, paid.amount)
    settlement = bank_code(network.the(Role.SETTLEMENT))
    if drawee and drawee != acquirer and settlement in books.read:
        presented = books.tables["cheque settled"].get(settlement, drawee, deposit_id)
        if presented is not None:
            claimed.add(presented)
        where = f"settlement settlement_transfers {deposit_id or '-'}"
        yield from _check(order, presented, rules.settlement, where)


_COINS_TAKEN: Final = _must("ACCEPTED")
_COINS_NOT_TAKEN: Final = _never("ACCEPTED")


def _check_coins(
    network: NetworkConfig, books: Books, order: Order, claimed: set[Record]
) -> Iterator[Mismatch]:
    """An order paid with coins against the acquirer's deposit, the issuer's record of the
    deposit it took and, between two banks, the settlement bank's, all under the deposit's
    id: each ACCEPTED for the order's total once it is paid, none ACCEPTED before."""
    merchant = network.merchant(order.merchant)
    acquirer = bank_code(network.node(merchant.bank))
    if order.status in _PAID_OUT:
        rule = _COINS_TAKEN
    elif order.status == order_pb2.ORDER_STATUS_PAYMENT_PENDING:
        rule = _Rule()  # the issuer may have decided already: the answer is on its way
    else:
        rule = _COINS_NOT_TAKEN
    deposit = next(
        (
            r
            for r in books.tables["coin deposit"].where("order_id", order.order_id)
            if r.holder == acquirer and (r.ident == order.deposit_id or not order.deposit_id)
        ),
        None,
    )
    deposit_id = order.deposit_id or (deposit.ident if deposit else "")
    if acquirer in books.read:
        where = _where(network, "acquirer", acquirer, "coin_deposits")
        yield from _check(order, deposit, rule, f"{where} {deposit_id or '-'}")
        if deposit is not None:
            claimed.add(deposit)
            if deposit.account_id != merchant.account_id:
                yield _mismatch(
                    order, deposit, "ACCOUNT_DIFFERS", merchant.account_id, deposit.account_id
                )
    issuer = deposit.payer if deposit else ""
    if issuer in books.read:
        taken = next(
            (
                r
                for r in books.tables["coins taken"].where("ident", deposit_id)
                if r.holder == issuer and r.link == acquirer
            ),
            None,
        )
        if taken is not None:
            claimed.add(taken)
        where = f"{_where(network, 'issuer', issuer, 'coin_deposits_received')} {deposit_id}"
        if taken is None and rule.required:
            yield Mismatch(order.order_id, where, "MISSING", rule.describe(), "-")
        elif taken is not None and rule.breaks(taken.status):
            yield _mismatch(order, taken, "STATUS_DIFFERS", rule.describe(), taken.status)
        elif taken is not None and taken.status == "ACCEPTED":
            if taken.order_id != order.order_id:
                yield _mismatch(order, taken, "ORDER_DIFFERS", order.order_id, taken.order_id)
            if taken.amount != order.total:
                yield _mismatch(order, taken, "AMOUNT_DIFFERS", order.total, taken.amount)
    settlement = bank_code(network.the(Role.SETTLEMENT))
    if issuer and issuer != acquirer and settlement in books.read:
        settled = books.tables["coins settled"].get(settlement, issuer, deposit_id)
        if settled is not None:
            claimed.add(settled)
        yield from _check(order, settled, rule, f"settlement settlement_transfers {deposit_id}")


def _unclaimed(network: NetworkConfig, books: Books, claimed: set[Record]) -> Iterator[Mismatch]:
    """Captures and credits no order accounted for: a second payment of an order, or orphans."""
    known = {order.order_id for order in books.orders}
    # With a merchant's store missing, its orders are unknown: nothing is provably an orphan.
    all_orders_read = all(m.name in books.read for m in network.merchants)
    moved = {
        "hold": "CAPTURED",
        "deposit": "PAID",
        "cheque settled": "ACCEPTED",
        "coin deposit": "ACCEPTED",
        "coins taken": "ACCEPTED",
        "coins settled": "ACCEPTED",
    }
    kinds = ("hold", "outgoing", "settlement", "incoming", "deposit", "cheque paid")
    coins = ("coin deposit", "coins taken", "coins settled")
    for kind in (*kinds, "cheque settled", *coins):
        for record in books.tables[kind].records:
            if record in claimed or record.status != moved.get(kind, record.status):
                continue
            if record.order_id in known:
                yield _mismatch(record, record, "UNMATCHED", "one payment per order", record.status)
            elif all_orders_read:
                yield _mismatch(record, record, "ORPHAN", "an order", "no such order")


def _mismatch(
    order: Order | Record, record: Record, check: str, expected: object, found: object
) -> Mismatch:
    return Mismatch(order.order_id, record.record, check, str(expected), str(found))


def _where(network: NetworkConfig, role: str, code: str, table: str) -> str:
    """A record's role, node and table, e.g. "issuer alfa outgoing_transfers"."""
    if role == "settlement":
        return f"settlement {table}"
    node = network.bank_by_code(code) if code else None
    return f"{role} {node.name if node else code or '?'} {table}"
