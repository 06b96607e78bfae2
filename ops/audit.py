"""``paynet audit``: ask every bank for its books over mTLS and check the network's invariants.

The settlement bank supervises the network, so the audit calls each bank's
``AuditService.GetBooks`` with the settlement bank's certificate. The checks:

- ``ledgers_balanced``: in every bank's ledger, debits equal credits (posted and pending);
- ``holders_backed``: at every bank, holders' money plus money in suspense plus its
  e-cash outstanding liability equals the bank's reserve mirror;
- ``positions_mirror``: every bank's reserve mirror equals its reserve at the
  settlement bank plus its accepted, not yet settled net position;
- ``total_money``: holders' money across all banks (plus money in flight and coins in
  circulation) equals the opening total, which equals what the settlement bank issued
  and the sum of reserves;
- ``cash_outstanding``: at every bank, the outstanding liability equals the face value
  of the coins withdrawn from it less those deposited back;
- ``no_overdue_holds``: no hold is still pending past its expiry;
- ``cheques_cleared``: what each bank paid out for cheques drawn on it, and collected
  for cheques it presented, equals what the settlement bank settled for it (cheques
  paid inside one bank move no reserve and count on neither side); the provisional
  credits of cheques still in clearing are reported beside it.

Books are read bank by bank, so a transfer in flight can make a snapshot
disagree for a moment: the audit reads again until every check passes or the
settle time is up, and reports the last reading.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from interbank.v1 import audit_pb2, audit_pb2_grpc

from payment.config import NetworkConfig, NodeConfig, Role
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

__all__ = ["AuditCheck", "AuditReport", "audit_network", "check_books", "collect_books"]


@dataclass(frozen=True)
class AuditCheck:
    """One invariant and whether it holds."""

    name: str
    """The check's name, for example total_money."""
    ok: bool
    """True if the invariant holds."""
    detail: dict[str, Any] = field(default_factory=dict)
    """The figures behind the verdict."""


@dataclass(frozen=True)
class AuditReport:
    """Every check of one audit."""

    checks: tuple[AuditCheck, ...]
    """The checks, in a fixed order."""
    in_flight: int
    """Transfers still waiting for an answer when the books were read."""

    @property
    def ok(self) -> bool:
        """True if every check passed."""
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready object."""
        return {
            "ok": self.ok,
            "in_flight": self.in_flight,
            "checks": {c.name: {"ok": c.ok, **c.detail} for c in self.checks},
        }


async def collect_books(network: NetworkConfig) -> list[audit_pb2.GetBooksResponse]:
    """Every bank's books (the settlement bank's first), read over mTLS."""
    settlement = network.the(Role.SETTLEMENT)
    identity = TlsIdentity.load(Pki(network.pki_dir), settlement.name)
    banks = [settlement, *network.nodes_with_role(Role.BANK)]
    return list(
        await asyncio.gather(
            *(_books(node, identity, network.timeouts.audit_call_seconds) for node in banks)
        )
    )


async def _books(
    node: NodeConfig, identity: TlsIdentity, timeout_s: float
) -> audit_pb2.GetBooksResponse:
    async with secure_channel(node.address, identity) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        response: audit_pb2.GetBooksResponse = await stub.GetBooks(
            audit_pb2.GetBooksRequest(), timeout=timeout_s
        )
        return response


def check_books(network: NetworkConfig, books: Sequence[audit_pb2.GetBooksResponse]) -> AuditReport:
    """Check the network's invariants on a set of books (one per bank)."""
    settlement = next(b for b in books if b.WhichOneof("books") == "settlement").settlement
    members = {b.bank_code: b.member for b in books if b.WhichOneof("books") == "member"}
    opening = network.total_opening_money()
    unbalanced = {
        code: _sums(sums)
        for code, sums in [("settlement", settlement.sums)]
        + [(code, m.sums) for code, m in members.items()]
        if sums.debits_posted != sums.credits_posted or sums.debits_pending != sums.credits_pending
    }
    unbacked = {
        code: {
            "holders": m.holder_balance_minor,
            "suspense": m.suspense_minor,
            "cash_outstanding": m.cash_outstanding_minor,
            "reserve_mirror": m.reserve_mirror_minor,
        }
        for code, m in members.items()
        if m.holder_balance_minor + m.suspense_minor + m.cash_outstanding_minor
        != m.reserve_mirror_minor
    }
    reserves = {r.bank_code: r for r in settlement.reserves}
    mirrors = {}
    for code, m in members.items():
        position = reserves.get(code)
        expected = position.reserve_minor + position.unsettled_net_minor if position else 0
        if m.reserve_mirror_minor != expected:
            mirrors[code] = {"bank_mirror": m.reserve_mirror_minor, "settlement_side": expected}
    holders = sum(
        m.holder_balance_minor + m.suspense_minor + m.cash_outstanding_minor
        for m in members.values()
    )
    coins_off = {
        code: {
            "outstanding": m.cash_outstanding_minor,
            "issued": m.cash_issued_minor,
            "deposited": m.cash_deposited_minor,
        }
        for code, m in members.items()
        if m.cash_outstanding_minor != m.cash_issued_minor - m.cash_deposited_minor
    }
    reserve_total = sum(r.reserve_minor for r in settlement.reserves)
    overdue = {code: m.overdue_holds for code, m in members.items() if m.overdue_holds}
    settled = {c.bank_code: c for c in settlement.cheques}
    cheques_off = {}
    for code, m in members.items():
        side = settled.get(code)
        settled_side = [side.paid_out_minor, side.collected_minor] if side else [0, 0]
        bank_side = [m.cheques_paid_out_minor, m.cheques_collected_minor]
        if bank_side != settled_side:
            cheques_off[code] = {"bank": bank_side, "settlement_side": settled_side}
    checks = (
        AuditCheck("ledgers_balanced", not unbalanced, {"unbalanced": unbalanced}),
        AuditCheck("holders_backed", not unbacked, {"unbacked": unbacked}),
        AuditCheck("positions_mirror", not mirrors, {"mismatched": mirrors}),
        AuditCheck(
            "total_money",
            holders == opening == settlement.central_issued_minor == reserve_total,
            {
                "opening_total": opening,
                "holders_and_suspense": holders,
                "central_issued": settlement.central_issued_minor,
                "reserves": reserve_total,
            },
        ),
        AuditCheck("no_overdue_holds", not overdue, {"overdue": overdue}),
        AuditCheck(
            "cash_outstanding",
            not coins_off,
            {
                "mismatched": coins_off,
                "outstanding": sum(m.cash_outstanding_minor for m in members.values()),
                "issued": sum(m.cash_issued_minor for m in members.values()),
                "deposited": sum(m.cash_deposited_minor for m in members.values()),
            },
        ),
        AuditCheck(
            "cheques_cleared",
            not cheques_off,
            {
                "mismatched": cheques_off,
                "in_clearing": sum(m.cheques_in_clearing for m in members.values()),
                "provisional_credit": sum(m.provisional_credit_minor for m in members.values()),
                "paid_out": sum(m.cheques_paid_out_minor for m in members.values()),
                "returned": sum(m.cheques_returned for m in members.values()),
            },
        ),
    )
    in_flight = (
        settlement.pending_transfers
        + sum(m.unsettled_outgoing for m in members.values())
        + sum(m.cheques_in_clearing for m in members.values())
    )
    return AuditReport(checks, in_flight)


async def audit_network(network: NetworkConfig, *, settle_seconds: float = 5.0) -> AuditReport:
    """Audit a running network, reading again while transfers in flight blur the picture."""
    deadline = time.monotonic() + settle_seconds
    while True:
        report = check_books(network, await collect_books(network))
        if report.ok or time.monotonic() >= deadline:
            return report
        await asyncio.sleep(0.2)


def _sums(sums: audit_pb2.LedgerSums) -> dict[str, int]:
    return {
        "debits_posted": sums.debits_posted,
        "credits_posted": sums.credits_posted,
        "debits_pending": sums.debits_pending,
        "credits_pending": sums.credits_pending,
    }
