"""``python -m bench.netbench``: how fast the settlement bank nets a settlement window.

It measures netting throughput: transfers netted per second when the settlement
bank closes a window of N accepted transfers (default 100,000) among B member
banks (default 8). The timed part is what ``Settlement.close_window`` runs, as
two Store transactions: ``windows.close_open_window`` (the multilateral netting,
a GROUP BY over the window's accepted transfers) and ``windows.settle_window``
(the net amounts moved between reserves through the clearing account).

Why it matters: in net mode the close is a write transaction on the store's
single connection, so no transfer can be recorded while it runs. How long it
takes is how long a busy window stops the network.

Filling the window is not timed. The transfers are inserted ACCEPTED in one
bulk transaction, and each also goes through ``record_pending`` and
``record_answer``, so the window's running positions are the ones production
would keep. After the close the run checks three things: every reserve moved by
exactly the bank's net position, computed here from the generated transfers; the
positions sum to 0; and the settlement ledger audit balances. It exits 1 if any
check fails.

The last line is one JSON object: ``{"netting": {...}}``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interbank.v1 import common_pb2
from interbank.v1 import settlement_pb2 as pb

from bank import books, ledger, windows
from bank.audit import SettlementTotals, settlement_totals
from bank.opening import CLEARING, open_settlement_books
from bank.schema import SETTLEMENT_SCHEMA
from payment.clock import now, timestamp
from payment.config import NetworkConfig, Role, parse_network
from payment.storage import Store

__all__ = ["NettingResult", "main", "run"]

MAX_AMOUNT_MINOR = 50_000
"""Largest transfer amount drawn; amounts are uniform in 1..MAX_AMOUNT_MINOR."""
SETTLEMENT_CODE = "SETLXX00"


@dataclass(frozen=True)
class _Transfer:
    """One generated interbank credit transfer."""

    instruction_id: str
    debtor: str
    creditor: str
    amount: int


@dataclass(frozen=True)
class NettingResult:
    """What one run measured and whether the close moved the right money."""

    transfers: int
    """Accepted transfers in the closed window."""
    banks: int
    """Member banks sending and receiving them."""
    fill_seconds: float
    """Time to record the window (not part of the figure)."""
    netting_seconds: float
    """close_open_window's transaction: netting the window."""
    settle_seconds: float
    """settle_window's transaction: moving the net amounts."""
    reserves_moved_by_net: bool
    """Every reserve moved by exactly its bank's independently computed net position."""
    balanced: bool
    """The settlement ledger's audit balances after the close."""
    problems: tuple[str, ...]
    """What failed verification, if anything."""

    @property
    def close_seconds(self) -> float:
        """The whole close: netting plus settling."""
        return self.netting_seconds + self.settle_seconds

    @property
    def transfers_per_second(self) -> float:
        """Transfers netted per second of close."""
        return self.transfers / self.close_seconds if self.close_seconds > 0 else 0.0


def bank_code(index: int) -> str:
    """The bank code of member bank index (1-based)."""
    return f"BANK{index:04d}"


def network_document(banks: int, transfers: int) -> dict[str, Any]:
    """A network file with a settlement node, `banks` member banks and one customer each.

    Each customer's opening balance funds its bank's reserve. The balance is set
    to transfers * MAX_AMOUNT_MINOR: no bank can owe more than that net, so the
    settle never fails for lack of reserve, and the net debit cap (bounded by the
    reserve) never refuses a transfer.
    """
    funding = transfers * MAX_AMOUNT_MINOR
    nodes: list[dict[str, Any]] = [
        {
            "name": "settlement",
            "role": "settlement",
            "address": "127.0.0.1:0",
            "data_dir": "data/settlement",
            "bank_code": SETTLEMENT_CODE,
        },
        {"name": "gateway", "role": "gateway", "address": "127.0.0.1:0"},
        {"name": "shop", "role": "merchant", "address": "127.0.0.1:0"},
    ]
    customers: list[dict[str, Any]] = []
    for i in range(1, banks + 1):
        nodes.append(
            {
                "name": f"bank-{i}",
                "role": "bank",
                "address": "127.0.0.1:0",
                "data_dir": f"data/bank-{i}",
                "bank_code": bank_code(i),
            }
        )
        customers.append(
            {
                "name": f"customer-{i}",
                "bank": f"bank-{i}",
                "account_id": f"customer-{i}-current",
                "opening_balance_minor": funding,
                "account_number": f"ACCT{i:08d}",
                "card_number": f"4000{i:012d}",
            }
        )
    return {
        "trust_domain": "paynet.bench",
        "currency": "EUR",
        "nodes": nodes,
        "customers": customers,
        "merchants": [
            {
                "name": "shop",
                "bank": "bank-1",
                "account_id": "shop-sales",
                "opening_balance_minor": 0,
                "products": [{"sku": "book-001", "name": "Book", "unit_price_minor": 4500}],
            }
        ],
        "settlement": {"mode": "net"},
    }


def generate_transfers(codes: list[str], n: int, seed: int) -> list[_Transfer]:
    """n transfers between random distinct banks with random amounts, reproducible by seed."""
    rng = random.Random(seed)
    transfers = []
    for i in range(n):
        debtor, creditor = rng.sample(codes, 2)
        amount = rng.randint(1, MAX_AMOUNT_MINOR)
        transfers.append(_Transfer(f"netbench-{i:08d}", debtor, creditor, amount))
    return transfers


def expected_positions(codes: list[str], transfers: list[_Transfer]) -> dict[str, int]:
    """Each bank's net position (received minus sent), computed without the database."""
    positions = dict.fromkeys(codes, 0)
    for transfer in transfers:
        positions[transfer.debtor] -= transfer.amount
        positions[transfer.creditor] += transfer.amount
    return positions


def _message(
    transfer: _Transfer, accounts: dict[str, str], currency: str, moment: dt.datetime
) -> pb.CreditTransfer:
    # A real pacs.008 blob, so rows are as wide as in production (width drives page reads).
    return pb.CreditTransfer(
        instruction_id=transfer.instruction_id,
        end_to_end_id=f"order-{transfer.instruction_id}",
        amount=common_pb2.Money(amount_minor=transfer.amount, currency_code=currency),
        debtor_agent=transfer.debtor,
        debtor_account=common_pb2.AccountRef(
            bank_code=transfer.debtor, account_id=accounts[transfer.debtor]
        ),
        creditor_agent=transfer.creditor,
        creditor_account=common_pb2.AccountRef(
            bank_code=transfer.creditor, account_id=accounts[transfer.creditor]
        ),
        created_at=timestamp(moment),
    )


def fill_window(
    conn: sqlite3.Connection,
    transfers: list[_Transfer],
    accounts: dict[str, str],
    currency: str,
    moment: dt.datetime,
) -> str:
    """Record every transfer as accepted in the open window; returns the window's id."""
    window_id = windows.open_window(conn, moment)
    books.record_accepted_transfers(
        conn, window_id, [_message(t, accounts, currency, moment) for t in transfers], moment
    )
    # Per transfer, not summed per bank: it keeps transfer_count and the positions exactly
    # as production does, and costs about a second per 100k in this untimed phase.
    for t in transfers:
        windows.record_pending(conn, window_id, t.debtor, t.amount)
        windows.record_answer(conn, window_id, t.debtor, t.creditor, t.amount, accepted=True)
    return window_id


def running_positions(conn: sqlite3.Connection, window_id: str) -> tuple[dict[str, int], int]:
    """The open window's running net positions and its total still pending out."""
    positions = books.window_positions(conn, window_id)
    return (
        {p.bank_code: p.net_minor for p in positions},
        sum(p.pending_out_minor for p in positions),
    )


def verify(
    expected: dict[str, int],
    running: tuple[dict[str, int], int],
    before: SettlementTotals,
    after: SettlementTotals,
    closed: windows.Window | None,
    clearing_booked: int,
    transfers: int,
) -> list[str]:
    """Every way the close could have moved the wrong money, as messages (empty: none)."""
    problems = []
    if running[0] != expected or running[1] != 0:
        problems.append(f"running positions {running} differ from the transfers' {expected}")
    if sum(expected.values()) != 0:
        problems.append(f"expected positions sum to {sum(expected.values())}, not 0")
    if closed is None or closed.status != windows.SETTLED:
        problems.append(f"closed window is {closed.status if closed else 'missing'}, not SETTLED")
    else:
        netted = {bank: net for bank, net in closed.positions.items() if net != 0}
        if netted != {bank: net for bank, net in expected.items() if net != 0}:
            problems.append(f"window positions {closed.positions} differ from {expected}")
        if closed.transfer_count != transfers:
            problems.append(f"window counts {closed.transfer_count} transfers, not {transfers}")
    for bank, net in sorted(expected.items()):
        moved = after.reserves.get(bank, 0) - before.reserves.get(bank, 0)
        if moved != net:
            problems.append(f"reserve of {bank} moved by {moved}, its net position is {net}")
    if clearing_booked != 0:
        problems.append(f"clearing account holds {clearing_booked}, not 0")
    if not after.balanced:
        problems.append(f"settlement ledger does not balance: {after}")
    return problems


def _clearing_booked(conn: sqlite3.Connection) -> int:
    found = ledger.account(conn, CLEARING)
    return found.booked if found else 0


async def _close(store: Store, currency: str) -> tuple[str, float, float]:
    """Close and settle the open window as Settlement.close_window does; ids and timings."""
    moment = now()
    started = time.perf_counter()
    closed = await store.transaction(lambda conn: windows.close_open_window(conn, moment))
    netted = time.perf_counter()
    await store.transaction(lambda conn: windows.settle_window(conn, closed, currency, moment))
    settled = time.perf_counter()
    return closed, netted - started, settled - netted


async def run(n: int, banks: int, seed: int) -> NettingResult:
    """Fill a window of n transfers among banks in a fresh store, then time its close."""
    with tempfile.TemporaryDirectory(prefix="netbench-") as tmp:
        base = Path(tmp)
        network = parse_network(network_document(banks, n), base_dir=base)
        codes = [bank_code(i) for i in range(1, banks + 1)]
        accounts = {bank_code(i): f"customer-{i}-current" for i in range(1, banks + 1)}
        transfers = generate_transfers(codes, n, seed)
        expected = expected_positions(codes, transfers)
        store = Store(network.the(Role.SETTLEMENT).store_path, SETTLEMENT_SCHEMA)
        await store.open()
        try:
            return await _measure(store, network, transfers, accounts, expected)
        finally:
            await store.close()


async def _measure(
    store: Store,
    network: NetworkConfig,
    transfers: list[_Transfer],
    accounts: dict[str, str],
    expected: dict[str, int],
) -> NettingResult:
    await store.transaction(lambda conn: open_settlement_books(conn, network, now=now()))
    started = time.perf_counter()
    window_id = await store.transaction(
        lambda conn: fill_window(conn, transfers, accounts, network.currency, now())
    )
    fill_seconds = time.perf_counter() - started
    running = await store.read(lambda conn: running_positions(conn, window_id))
    before = await store.read(settlement_totals)
    closed, netting_seconds, settle_seconds = await _close(store, network.currency)
    after = await store.read(settlement_totals)
    found = await store.read(lambda conn: windows.window(conn, closed))
    clearing = await store.read(_clearing_booked)
    problems = verify(expected, running, before, after, found, clearing, len(transfers))
    moved = all(
        after.reserves.get(bank, 0) - before.reserves.get(bank, 0) == net
        for bank, net in expected.items()
    )
    return NettingResult(
        transfers=len(transfers),
        banks=len(expected),
        fill_seconds=fill_seconds,
        netting_seconds=netting_seconds,
        settle_seconds=settle_seconds,
        reserves_moved_by_net=moved and sum(expected.values()) == 0,
        balanced=after.balanced and after.central_issued == network.total_opening_money(),
        problems=tuple(problems),
    )


def _report(result: NettingResult) -> dict[str, Any]:
    return {
        "netting": {
            "transfers": result.transfers,
            "banks": result.banks,
            "close_seconds": round(result.close_seconds, 4),
            "netting_seconds": round(result.netting_seconds, 4),
            "settle_seconds": round(result.settle_seconds, 4),
            "transfers_per_second": round(result.transfers_per_second),
            "fill_seconds": round(result.fill_seconds, 2),
            "reserves_moved_by_net": result.reserves_moved_by_net,
            "balanced": result.balanced,
        }
    }


def main() -> int:
    """Entry point: run once, print a human line and the JSON line; 1 if verification fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--transfers", type=int, default=100_000)
    parser.add_argument("--banks", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20_240_601)
    args = parser.parse_args()
    if args.transfers < 1 or args.banks < 2:
        parser.error("need at least 1 transfer and 2 banks")
    result = asyncio.run(run(args.transfers, args.banks, args.seed))
    for problem in result.problems:
        print(f"netbench: FAILED: {problem}", file=sys.stderr)
    print(
        f"netting: closed a window of {result.transfers} transfers among {result.banks} banks"
        f" in {result.close_seconds:.4f} s (netting {result.netting_seconds:.4f} s,"
        f" settling {result.settle_seconds:.4f} s): {result.transfers_per_second:,.0f}"
        f" transfers/s; reserves moved by net: {result.reserves_moved_by_net},"
        f" ledger balanced: {result.balanced} (filling took {result.fill_seconds:.2f} s)"
    )
    print(json.dumps(_report(result)))
    return 1 if result.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
