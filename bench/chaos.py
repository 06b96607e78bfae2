"""``make chaos``: the whole network under faults, judged like Jepsen's bank test.

Every node runs as its own process. A seeded load generator pays from many
concurrent customers (frictionless purchases, challenged ones answered from
the device inbox, refunds of settled orders, cheques, cheques stopped before
they are submitted, payments with coins withdrawn for them, and attempts to
spend those coins a second time), retrying each step with the same request ids
whenever its outcome is unknown. Meanwhile a seeded fault
injector SIGKILLs and restarts a node, or SIGSTOPs and SIGCONTs one, every
few seconds; the same seed gives the same fault schedule.

At the end every node runs again, the network is left to settle, and the
books are read through the banks' own APIs (AuditService, AccountService as
each holder) and every store is reconciled. The last line is one JSON object::

    {"seed", "payments", "acknowledged", "lost", "duplicated", "wrong_total",
     "negative", "stuck_holds", "disagreements", "kills", "pauses", ...}

- ``acknowledged``: payments whose capture the customer saw acknowledged;
- ``lost`` / ``duplicated``: acknowledged payments (and refunds) missing from,
  or present more than once in, the issuer's (drawee's) or the acquirer's
  ledger; a stopped cheque found in either ledger counts as duplicated;
- ``wrong_total``: how far total money (holders' and coins outstanding) is from
  the opening total;
- ``double_spends``: second spendings of paid coins tried, and how many were
  refused COIN_DOUBLE_SPENT (all must be; one accepted counts as duplicated);
- ``negative``: holders' balances below zero (no account has an overdraft);
- ``stuck_holds``: holds still pending past their expiry;
- ``disagreements``: reconciliation mismatches between merchant, gateway,
  issuer, settlement bank and acquirer, plus acknowledged orders whose final
  state is not a paid one.

Exit 1 if any of lost, duplicated, wrong_total, negative, stuck_holds or
disagreements is not zero.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import logging
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import grpc
from interbank.v1 import (
    account_pb2,
    account_pb2_grpc,
    authorization_pb2,
    authorization_pb2_grpc,
    cash_pb2,
    cash_pb2_grpc,
    cheque_pb2,
    cheque_pb2_grpc,
    common_pb2,
    notification_pb2,
    order_pb2,
    order_pb2_grpc,
)

from customer.cheques import ChequeBook
from customer.client import Customer, PlacedOrder
from customer.coins import (
    KeySet,
    blind_withdrawal,
    check_key_set,
    choose_denominations,
    finish_withdrawal,
    sign_coins,
)
from ops.audit import check_books, collect_books
from ops.devnet import add_customers, write_dev_network
from ops.launcher import LocalNetwork
from ops.reconcile import reconcile
from payment.cheque_trust import ChequeKeys
from payment.clock import now
from payment.config import NetworkConfig, load_network
from payment.errors import OUTCOME_UNKNOWN_CODES, PaynetError, from_rpc_error
from payment.logs import configure_logging
from payment.pki import Pki, init_pki
from payment.tls import TlsIdentity, secure_channel

__all__ = ["ChaosResult", "Fault", "fault_schedule", "main", "run_chaos"]

T = TypeVar("T")
S = order_pb2.OrderStatus

RETRYABLE = OUTCOME_UNKNOWN_CODES | {grpc.StatusCode.ABORTED}
"""Codes after which a step is sent again with the same request: its outcome is unknown
(payment.errors.OUTCOME_UNKNOWN_CODES), or it was ABORTED, which gRPC asks to be retried."""
STEP_GIVE_UP_S = 120.0
"""A step still failing after this long is left unresolved (not acknowledged)."""
BUYERS = tuple(f"buyer{i:02d}" for i in range(14))
"""The load's customers, added to the dev network, each with money for the whole run."""
OPENING_BALANCE_MINOR = 10_000_000
CHEQUE_BOOK_SIZE = 1000
"""Serials per customer's cheque book (one book per customer per run)."""
PAID = frozenset(
    {S.ORDER_STATUS_CAPTURED, S.ORDER_STATUS_SETTLED, S.ORDER_STATUS_DELIVERY_CONFIRMED}
)
SETTLED_OR_LATER = frozenset(
    {
        S.ORDER_STATUS_SETTLED,
        S.ORDER_STATUS_DELIVERY_CONFIRMED,
        S.ORDER_STATUS_PARTIALLY_REFUNDED,
        S.ORDER_STATUS_REFUNDED,
    }
)


# -- the fault schedule ----------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One fault: after a pause of gap_s, kill or pause a node for down_s."""

    gap_s: float
    """Seconds since the previous fault ended."""
    action: str
    """"kill" (SIGKILL, then restart) or "pause" (SIGSTOP, then SIGCONT)."""
    node: str
    """The node hit."""
    down_s: float
    """How long the node stays dead or stopped."""


def fault_schedule(
    seed: int, nodes: list[str], min_kills: int, gap_s: tuple[float, float]
) -> Iterator[Fault]:
    """The faults of a seed, forever: first every node killed min_kills times (with
    pauses in between, in a seeded order), then seeded random faults."""
    rng = random.Random(f"faults:{seed}")
    first = [("kill", n) for n in nodes for _ in range(min_kills)]
    first += [("pause", n) for n in nodes]
    rng.shuffle(first)
    for action, node in first:
        yield _fault(rng, action, node, gap_s)
    while True:
        yield _fault(rng, rng.choice(("kill", "kill", "pause")), rng.choice(nodes), gap_s)


def schedule_digest(
    seed: int, nodes: list[str], min_kills: int, gap_s: tuple[float, float], faults: int = 100
) -> str:
    """A short fingerprint of a seed's first faults: equal digests, equal schedules."""
    planned = itertools.islice(fault_schedule(seed, nodes, min_kills, gap_s), faults)
    text = ";".join(f"{f.gap_s},{f.action},{f.node},{f.down_s}" for f in planned)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fault(rng: random.Random, action: str, node: str, gap_s: tuple[float, float]) -> Fault:
    down = rng.uniform(0.2, 1.5) if action == "kill" else rng.uniform(0.3, 2.0)
    return Fault(round(rng.uniform(*gap_s), 3), action, node, round(down, 3))


@dataclass
class FaultLog:
    """What the injector did."""

    kills: Counter[str] = field(default_factory=Counter)
    pauses: Counter[str] = field(default_factory=Counter)


async def inject_faults(
    net: LocalNetwork, faults: Iterator[Fault], log: FaultLog, until: asyncio.Event, floor: int
) -> None:
    """Apply faults until `until` is set, every node was killed at least floor times and
    paused at least once."""
    nodes = [n.name for n in net.network.nodes]
    for fault in faults:
        if until.is_set() and all(log.kills[n] >= floor and log.pauses[n] for n in nodes):
            return
        await asyncio.sleep(fault.gap_s)
        if fault.action == "kill":
            await net.kill_node(fault.node)
            log.kills[fault.node] += 1
            await asyncio.sleep(fault.down_s)
            await net.restart_node(fault.node)
        else:
            net.signal_node(fault.node, signal.SIGSTOP)
            log.pauses[fault.node] += 1
            try:
                await asyncio.sleep(fault.down_s)
            finally:
                net.signal_node(fault.node, signal.SIGCONT)


# -- the load ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one payment's customer saw."""

    index: int
    customer: str
    kind: str
    order_id: str = ""
    amount_minor: int = 0
    acknowledged: bool = False
    """The customer saw the capture acknowledged (CAPTURED or later)."""
    refused: str = ""
    """The reason of a definite refusal."""
    unresolved: str = ""
    """Why the generator gave up on an unknown outcome."""
    refunds_minor: list[int] = field(default_factory=list)
    """Refunds the merchant saw acknowledged."""
    withdrawn_minor: int = 0
    """Coins withdrawn for the payment (coins only)."""
    double_spend: str = ""
    """A second spending of the paid coins: "" if none was tried, else its answer."""
    second_order_id: str = ""
    """The order a double spend was (wrongly) accepted for."""


async def retried(step: Callable[[], Awaitable[T]], give_up_s: float = STEP_GIVE_UP_S) -> T:
    """A step's result, sending it again while its outcome is unknown.

    The step must send the same request (the same request_id) each time.
    Raises the last PaynetError once give_up_s have passed, or at once when
    the refusal is definite.
    """
    deadline = time.monotonic() + give_up_s
    backoff = 0.1
    while True:
        try:
            return await step()
        except grpc.aio.AioRpcError as exc:
            error = from_rpc_error(exc)
            if exc.code() not in RETRYABLE or time.monotonic() > deadline:
                raise error from None
        await asyncio.sleep(backoff * (0.5 + random.random()))
        backoff = min(backoff * 2, 1.0)


class Load:
    """The seeded load: payments from many customers, some challenged, some refunded."""

    def __init__(self, network: NetworkConfig, seed: int) -> None:
        self.network = network
        self.seed = seed
        self.merchant = network.merchants[0].name
        self.customers = {name: Customer(network, name) for name in BUYERS}
        self._call_timeout_s = network.timeouts.client_call_seconds
        pki = Pki(network.pki_dir)
        self._back_office = secure_channel(
            network.node(self.merchant).address, TlsIdentity.load(pki, self.merchant)
        )
        self._books: dict[str, asyncio.Task[ChequeBook]] = {}
        self._key_sets: dict[str, asyncio.Future[KeySet]] = {}
        # One date for every cheque of the run, so a retried step writes the same bytes.
        self._today = now().date()
        self._serials: Counter[str] = Counter()

    async def close(self) -> None:
        """Close every channel."""
        for customer in self.customers.values():
            await customer.close()
        await self._back_office.close()

    async def run(self, payments: int, concurrency: int) -> list[Outcome]:
        """Run the payments with concurrency workers; every outcome, in index order."""
        queue = iter(range(payments))
        outcomes: list[Outcome] = []

        async def worker() -> None:
            for index in queue:
                outcomes.append(await self.pay(index))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return sorted(outcomes, key=lambda o: o.index)

    async def pay(self, index: int) -> Outcome:
        """One seeded payment, retried through faults until its outcome is definite."""
        rng = random.Random(f"payment:{self.seed}:{index}")
        name = rng.choice(sorted(self.customers))
        roll = rng.random()
        kind = (
            "challenged"
            if roll < 0.15
            else "refunded"
            if roll < 0.30
            else "cheque"
            if roll < 0.42
            else "cheque-stopped"
            if roll < 0.45
            else "coins"
            if roll < 0.50
            else "frictionless"
        )
        lines = (
            [("bike-003", 1)]
            if kind == "challenged"
            else [(rng.choice(("book-001", "lamp-002")), rng.randint(1, 3))]
        )
        outcome = Outcome(index, name, kind)
        customer = self.customers[name]
        key = f"chaos-{self.seed}-{index}"
        try:
            placed = await self._create(customer, key, lines)
            outcome.order_id = placed.order.order_id
            outcome.amount_minor = placed.order.total.amount_minor
            if kind.startswith("cheque"):
                await self._pay_by_cheque(customer, key, placed.order, outcome)
                return outcome
            if kind == "coins":
                await self._pay_with_coins(customer, key, placed.order, outcome, rng)
                return outcome
            order = await self._submit(customer, key, placed)
            if order.status == S.ORDER_STATUS_CHALLENGE_REQUIRED:
                order = await self._challenge(customer, key, order)
            outcome.acknowledged = order.status in PAID or order.status in SETTLED_OR_LATER
            if outcome.acknowledged and kind == "refunded":
                await self._refund(customer, key, outcome, rng)
        except PaynetError as exc:
            if exc.code in RETRYABLE:
                outcome.unresolved = exc.reason
            else:
                outcome.refused = exc.reason
        except TimeoutError:
            outcome.unresolved = "TIMEOUT"
        return outcome

    async def _create(
        self, customer: Customer, key: str, lines: list[tuple[str, int]]
    ) -> PlacedOrder:
        stub = order_pb2_grpc.OrderServiceStub(customer.channel(self.merchant))
        request = order_pb2.CreateOrderRequest(
            request_id=f"{key}-order",
            lines=[order_pb2.CreateOrderLine(sku=sku, quantity=qty) for sku, qty in lines],
        )
        reply = await retried(lambda: stub.CreateOrder(request, timeout=self._call_timeout_s))
        return PlacedOrder(reply.order, reply.gateway_public_key, reply.gateway_key_id)

    async def _submit(self, customer: Customer, key: str, placed: PlacedOrder) -> order_pb2.Order:
        stub = order_pb2_grpc.OrderServiceStub(customer.channel(self.merchant))
        request = order_pb2.SubmitPaymentRequest(
            request_id=f"{key}-pay",
            order_id=placed.order.order_id,
            payment=customer.seal_payment(placed, customer.instrument()),
        )
        reply = await retried(lambda: stub.SubmitPayment(request, timeout=self._call_timeout_s))
        order: order_pb2.Order = reply.order
        return order

    async def _book(self, customer: Customer) -> ChequeBook:
        """The customer's cheque book for the run, issued once (the same request_id)."""
        name = customer.config.name
        if name not in self._books:
            self._books[name] = asyncio.ensure_future(self._issue_book(customer))
        return await self._books[name]

    async def _issue_book(self, customer: Customer) -> ChequeBook:
        stub = cheque_pb2_grpc.ChequeServiceStub(customer.channel(customer.config.bank))
        request = cheque_pb2.IssueChequeBookRequest(
            request_id=f"chaos-{self.seed}-{customer.config.name}-book",
            account_id=customer.config.account_id,
            book_size=CHEQUE_BOOK_SIZE,
        )
        reply = await retried(lambda: stub.IssueChequeBook(request, timeout=self._call_timeout_s))
        return ChequeBook.from_proto(reply.book)

    async def _pay_by_cheque(
        self, customer: Customer, key: str, order: order_pb2.Order, outcome: Outcome
    ) -> None:
        """Pay by cheque (stopping it first for cheque-stopped) and follow the order until
        the drawee decided: acknowledged when it settles, refused with the return reason."""
        book = await self._book(customer)
        serial = book.first_serial + self._serials[customer.config.name]
        self._serials[customer.config.name] += 1
        signed = customer.write_cheque(order, book, serial=serial, date=self._today)
        if outcome.kind == "cheque-stopped":
            bank = cheque_pb2_grpc.ChequeServiceStub(customer.channel(customer.config.bank))
            stop = cheque_pb2.StopChequeRequest(
                request_id=f"{key}-stop", account_reference=book.account_reference, serial=serial
            )
            await retried(lambda: bank.StopCheque(stop, timeout=self._call_timeout_s))
        stub = order_pb2_grpc.OrderServiceStub(customer.channel(self.merchant))
        request = order_pb2.SubmitChequeRequest(
            request_id=f"{key}-cheque",
            order_id=order.order_id,
            signed_cheque=signed,
            signed_certificate=book.signed_certificate,
        )
        await retried(lambda: stub.SubmitCheque(request, timeout=self._call_timeout_s))
        decided = await self._until(customer, order.order_id, S.ORDER_STATUS_FAILED)
        if decided.status in SETTLED_OR_LATER:
            outcome.acknowledged = True
        else:
            outcome.refused = decided.failure_reason or S.Name(decided.status)

    async def _key_set(self, customer: Customer) -> KeySet:
        bank = customer.config.bank
        if bank not in self._key_sets:
            self._key_sets[bank] = asyncio.ensure_future(self._fetch_keys(customer))
        return await self._key_sets[bank]

    async def _fetch_keys(self, customer: Customer) -> KeySet:
        stub = cash_pb2_grpc.CashServiceStub(customer.channel(customer.config.bank))
        reply = await retried(
            lambda: stub.GetDenominations(
                cash_pb2.GetDenominationsRequest(), timeout=self._call_timeout_s
            )
        )
        bank_code = self.network.node(customer.config.bank).bank_code or ""
        return check_key_set(reply, bank_code, ChequeKeys(self.network))

    async def _pay_with_coins(
        self,
        customer: Customer,
        key: str,
        order: order_pb2.Order,
        outcome: Outcome,
        rng: random.Random,
    ) -> None:
        """Withdraw the order's total in coins, pay with them, and (one time in two) try
        to spend the same coins on a second order: it must be refused COIN_DOUBLE_SPENT.
        The wallet's own steps (customer.coins), without its file: the run keeps them."""
        key_set = await self._key_set(customer)
        total = order.total
        chosen = choose_denominations(total.amount_minor, total.currency_code, key_set, now())
        pending = blind_withdrawal(
            chosen, key_set.bank_code, customer.config.account_id, f"{key}-withdraw"
        )
        bank = cash_pb2_grpc.CashServiceStub(customer.channel(customer.config.bank))
        withdrawal = pending.request()
        reply = await retried(lambda: bank.Withdraw(withdrawal, timeout=self._call_timeout_s))
        coins = finish_withdrawal(pending, reply, key_set)
        outcome.withdrawn_minor = pending.amount_minor

        stub = order_pb2_grpc.OrderServiceStub(customer.channel(self.merchant))
        request = order_pb2.SubmitCoinsRequest(
            request_id=f"{key}-coins", order_id=order.order_id, coins=sign_coins(coins, order)
        )
        await retried(lambda: stub.SubmitCoins(request, timeout=self._call_timeout_s))
        decided = await self._until(customer, order.order_id, S.ORDER_STATUS_FAILED)
        if decided.status not in SETTLED_OR_LATER:
            outcome.refused = decided.failure_reason or S.Name(decided.status)
            return
        outcome.acknowledged = True
        if rng.random() < 1 / 2:
            outcome.double_spend = "TRIED"
            lines = [(order.lines[0].sku, order.lines[0].quantity)]
            second = (await self._create(customer, f"{key}-again", lines)).order
            again = order_pb2.SubmitCoinsRequest(
                request_id=f"{key}-coins-again",
                order_id=second.order_id,
                coins=sign_coins(coins, second),
            )
            try:
                answered = await retried(
                    lambda: stub.SubmitCoins(again, timeout=self._call_timeout_s)
                )
            except PaynetError as exc:
                outcome.double_spend = exc.reason
            else:
                # A retry of a refused attempt is answered with the order as it is now:
                # open again (CREATED) if the coins were refused. Paid means they were not.
                final = answered.order
                if final.status not in SETTLED_OR_LATER:
                    final = await self._until(customer, second.order_id, S.ORDER_STATUS_CREATED)
                if final.status in SETTLED_OR_LATER:
                    outcome.double_spend = "ACCEPTED"
                    outcome.second_order_id = second.order_id
                else:
                    outcome.double_spend = "COIN_DOUBLE_SPENT"

    async def _until(
        self, customer: Customer, order_id: str, also: order_pb2.OrderStatus.ValueType
    ) -> order_pb2.Order:
        """The order once it is settled (or later) or in status also: FAILED for a
        cheque returned, CREATED for coins refused and the order open again."""
        stub = order_pb2_grpc.OrderServiceStub(customer.channel(self.merchant))
        request = order_pb2.GetOrderRequest(order_id=order_id)
        deadline = time.monotonic() + STEP_GIVE_UP_S
        while time.monotonic() < deadline:
            reply = await retried(lambda: stub.GetOrder(request, timeout=self._call_timeout_s))
            if reply.order.status in SETTLED_OR_LATER or reply.order.status == also:
                found: order_pb2.Order = reply.order
                return found
            await asyncio.sleep(0.5)
        raise TimeoutError

    async def _challenge(
        self, customer: Customer, key: str, order: order_pb2.Order
    ) -> order_pb2.Order:
        challenge_id = order.challenge.challenge_id
        code = await customer.read_one_time_code(challenge_id, timeout=STEP_GIVE_UP_S)
        bank = authorization_pb2_grpc.ChallengeServiceStub(customer.channel(customer.config.bank))
        answer = authorization_pb2.AnswerChallengeRequest(
            request_id=f"{key}-answer", challenge_id=challenge_id, code=code
        )
        await retried(lambda: bank.AnswerChallenge(answer, timeout=self._call_timeout_s))
        stub = order_pb2_grpc.OrderServiceStub(customer.channel(self.merchant))
        complete = order_pb2.CompletePaymentRequest(
            request_id=f"{key}-complete", order_id=order.order_id
        )
        reply = await retried(lambda: stub.CompletePayment(complete, timeout=self._call_timeout_s))
        completed: order_pb2.Order = reply.order
        return completed

    async def _refund(
        self, customer: Customer, key: str, outcome: Outcome, rng: random.Random
    ) -> None:
        await self._until_settled(customer, outcome.order_id)
        stub = order_pb2_grpc.BackOfficeServiceStub(self._back_office)
        parts = [outcome.amount_minor // 2, outcome.amount_minor - outcome.amount_minor // 2]
        if rng.random() < 0.5:
            parts = [outcome.amount_minor]
        for number, part in enumerate(parts):
            request = order_pb2.RefundOrderRequest(
                request_id=f"{key}-refund-{number}",
                order_id=outcome.order_id,
                amount=common_pb2.Money(amount_minor=part, currency_code=self.network.currency),
            )
            timeout = self.network.timeouts.operator_call_seconds
            await retried(partial(stub.RefundOrder, request, timeout=timeout))
            outcome.refunds_minor.append(part)

    async def _until_settled(self, customer: Customer, order_id: str) -> None:
        stub = order_pb2_grpc.OrderServiceStub(customer.channel(self.merchant))
        request = order_pb2.GetOrderRequest(order_id=order_id)
        deadline = time.monotonic() + STEP_GIVE_UP_S
        while time.monotonic() < deadline:
            reply = await retried(lambda: stub.GetOrder(request, timeout=self._call_timeout_s))
            if reply.order.status in SETTLED_OR_LATER:
                return
            await asyncio.sleep(0.5)
        raise TimeoutError


# -- the verdict -------------------------------------------------------------------------------


@dataclass
class ChaosResult:
    """The checks over the books after the run."""

    lost: int = 0
    duplicated: int = 0
    wrong_total: int = 0
    negative: int = 0
    stuck_holds: int = 0
    disagreements: int = 0
    details: list[str] = field(default_factory=list)


async def _account(
    network: NetworkConfig, holder: str, bank: str, account_id: str
) -> tuple[list[account_pb2.StatementEntry], bool]:
    """An account's statement lines, and whether its balance is below zero, asked by its holder."""
    identity = TlsIdentity.load(Pki(network.pki_dir), holder)
    async with secure_channel(network.node(bank).address, identity) as channel:
        stub = account_pb2_grpc.AccountServiceStub(channel)
        reply = await retried(
            lambda: stub.ListStatement(
                account_pb2.ListStatementRequest(account_id=account_id),
                timeout=network.timeouts.operator_call_seconds,
            )
        )
        balance = await retried(
            lambda: stub.GetBalance(
                account_pb2.GetBalanceRequest(account_id=account_id),
                timeout=network.timeouts.client_call_seconds,
            )
        )
    negative = balance.booked.amount_minor < 0 or balance.available.amount_minor < 0
    return list(reply.entries), negative


async def judge(network: NetworkConfig, outcomes: list[Outcome], opening_total: int) -> ChaosResult:
    """Read every bank's books through its APIs and check the run's invariants."""
    result = ChaosResult()
    books = await collect_books(network)
    report = check_books(network, books)
    for check in report.checks:
        if not check.ok:
            result.details.append(f"audit {check.name}: {check.detail}")
    result.stuck_holds = sum(b.member.overdue_holds for b in books if b.HasField("member"))
    holders_total = sum(
        b.member.holder_balance_minor + b.member.cash_outstanding_minor
        for b in books
        if b.HasField("member")
    )
    result.wrong_total = abs(holders_total - opening_total)

    merchant = network.merchants[0]
    merchant_lines, negative = await _account(
        network, merchant.name, merchant.bank, merchant.account_id
    )
    result.negative += negative
    customer_lines: dict[str, list[account_pb2.StatementEntry]] = {}
    for c in network.customers:
        customer_lines[c.name], negative = await _account(network, c.name, c.bank, c.account_id)
        result.negative += negative

    orders = await _merchant_orders(network, outcomes)
    credit, debit = (
        notification_pb2.ACCOUNT_ENTRY_DIRECTION_CREDIT,
        notification_pb2.ACCOUNT_ENTRY_DIRECTION_DEBIT,
    )
    for outcome in outcomes:
        if outcome.kind == "cheque-stopped" and outcome.order_id:
            moved = [
                line
                for line in customer_lines[outcome.customer] + merchant_lines
                if line.order_id == outcome.order_id
            ]
            if moved:
                result.duplicated += 1
                result.details.append(f"paid although stopped: {outcome.order_id}")
            if outcome.refused not in ("PAYMENT_STOPPED", ""):
                result.disagreements += 1
                result.details.append(f"stopped cheque {outcome.order_id} ended {outcome.refused}")
        if not outcome.acknowledged:
            continue
        status = orders.get(outcome.order_id)
        reversed_ = status == S.ORDER_STATUS_REVERSED
        paid = [
            line
            for line in customer_lines[outcome.customer]
            if line.order_id == outcome.order_id and line.direction == debit
        ]
        received = [
            line
            for line in merchant_lines
            if line.order_id == outcome.order_id and line.direction == credit
        ]
        refunded = [
            line
            for line in merchant_lines
            if line.order_id == outcome.order_id and line.direction == debit
        ]
        if outcome.double_spend == "ACCEPTED":
            result.duplicated += 1
            result.details.append(f"coins spent twice: {outcome.order_id}")
        elif outcome.double_spend and outcome.double_spend != "COIN_DOUBLE_SPENT":
            result.disagreements += 1
            result.details.append(f"double spend of {outcome.order_id}: {outcome.double_spend}")
        # Coins are paid for at withdrawal, a line with no order: the issuer's side of a
        # coin payment is the withdrawal, the order's money reaches the merchant once.
        wanted_debits = 0 if outcome.kind == "coins" else 1
        expected = {
            "issuer": (len(paid), wanted_debits),
            "acquirer": (len(received), 0 if reversed_ else 1),
        }
        expected["refunds"] = (len(refunded), len(outcome.refunds_minor))
        for ledger, (found, wanted) in expected.items():
            if found < wanted:
                result.lost += 1
                result.details.append(
                    f"lost: {ledger} has {found} of {wanted} for {outcome.order_id}"
                )
            elif found > wanted and not (ledger == "refunds" and status == S.ORDER_STATUS_REFUNDED):
                result.duplicated += 1
                result.details.append(
                    f"duplicated: {ledger} has {found} of {wanted} for {outcome.order_id}"
                )
        if status not in SETTLED_OR_LATER and status != S.ORDER_STATUS_REVERSED:
            result.disagreements += 1
            name = "missing" if status is None else S.Name(status)
            result.details.append(f"acknowledged order {outcome.order_id} ended {name}")

    mismatches = (await asyncio.to_thread(reconcile, network)).mismatches
    result.disagreements += len(mismatches)
    result.details.extend(
        f"reconcile: {m.check} {m.record} expected {m.expected}, found {m.found}"
        for m in mismatches[:20]
    )
    return result


async def _merchant_orders(
    network: NetworkConfig, outcomes: list[Outcome]
) -> dict[str, order_pb2.OrderStatus.ValueType]:
    """Each order's final status, as its customer reads it from the merchant."""
    statuses: dict[str, order_pb2.OrderStatus.ValueType] = {}
    merchant = network.merchants[0].name
    customers = {c.name: Customer(network, c.name) for c in network.customers}
    try:
        for outcome in outcomes:
            if not outcome.order_id:
                continue
            stub = order_pb2_grpc.OrderServiceStub(customers[outcome.customer].channel(merchant))
            try:
                reply = await retried(
                    partial(
                        stub.GetOrder,
                        order_pb2.GetOrderRequest(order_id=outcome.order_id),
                        timeout=network.timeouts.client_call_seconds,
                    )
                )
            except PaynetError as exc:
                if exc.reason != "ORDER_NOT_FOUND":
                    raise
                continue  # the merchant has no such order: the judge counts it missing
            statuses[outcome.order_id] = reply.order.status
    finally:
        for customer in customers.values():
            await customer.close()
    return statuses


async def settle_down(network: NetworkConfig, outcomes: list[Outcome], timeout: float) -> None:
    """Wait until nothing is in flight: no unsettled transfer, every paid order settled,
    and every node's records agree (nodes finish interrupted work in the background).

    After timeout, the judge counts whatever still disagrees.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        books = await collect_books(network)
        in_flight = sum(b.member.unsettled_outgoing for b in books if b.HasField("member"))
        in_flight += sum(b.member.cheques_in_clearing for b in books if b.HasField("member"))
        in_flight += sum(b.settlement.pending_transfers for b in books if b.HasField("settlement"))
        if in_flight == 0:
            orders = await _merchant_orders(network, [o for o in outcomes if o.acknowledged])
            settled = all(
                s in SETTLED_OR_LATER or s == S.ORDER_STATUS_REVERSED for s in orders.values()
            )
            if settled and (await asyncio.to_thread(reconcile, network)).ok:
                return
        await asyncio.sleep(1.0)


# -- the run -----------------------------------------------------------------------------------


def write_chaos_network(directory: Path) -> Path:
    """The dev network with more customers, no velocity challenges, windows of 2 s."""
    path = write_dev_network(
        directory,
        settlement_mode="net",
        window_seconds=2,
        velocity_max_payments=10**9,
        net_debit_cap_minor=10**12,
    )
    add_customers(path, BUYERS, OPENING_BALANCE_MINOR, banks=("alfa", "beta"))
    return path


async def run_chaos(
    *,
    seed: int,
    payments: int,
    concurrency: int,
    min_kills: int,
    gap_s: tuple[float, float],
    workdir: Path,
) -> dict[str, Any]:
    """Run the load under the seed's faults, settle, judge; the summary."""
    path = write_chaos_network(workdir)
    network = load_network(path)
    init_pki(network, network.pki_dir)
    net = LocalNetwork(network, path, log_dir=workdir / "logs")
    await net.start()
    log = FaultLog()
    started = time.monotonic()
    try:
        opening = await collect_books(network)
        opening_total = sum(b.member.holder_balance_minor for b in opening if b.HasField("member"))
        load = Load(network, seed)
        load_done = asyncio.Event()
        nodes = [n.name for n in network.nodes]
        injector = asyncio.create_task(
            inject_faults(
                net, fault_schedule(seed, nodes, min_kills, gap_s), log, load_done, min_kills
            )
        )
        try:
            outcomes = await load.run(payments, concurrency)
        finally:
            load_done.set()
            await injector
            await load.close()
        load_seconds = time.monotonic() - started
        await settle_down(network, outcomes, timeout=120.0)
        result = await judge(network, outcomes, opening_total)
    finally:
        codes = await net.stop()
    kinds = Counter(o.kind for o in outcomes)
    summary: dict[str, Any] = {
        "seed": seed,
        "payments": len(outcomes),
        "acknowledged": sum(o.acknowledged for o in outcomes),
        "lost": result.lost,
        "duplicated": result.duplicated,
        "wrong_total": result.wrong_total,
        "negative": result.negative,
        "stuck_holds": result.stuck_holds,
        "disagreements": result.disagreements,
        "kills": sum(log.kills.values()),
        "pauses": sum(log.pauses.values()),
        "schedule_digest": schedule_digest(seed, nodes, min_kills, gap_s),
        "kills_by_node": dict(sorted(log.kills.items())),
        "pauses_by_node": dict(sorted(log.pauses.items())),
        "kinds": dict(sorted(kinds.items())),
        "refused": dict(Counter(o.refused for o in outcomes if o.refused)),
        "unresolved": dict(Counter(o.unresolved for o in outcomes if o.unresolved)),
        "refunds": sum(len(o.refunds_minor) for o in outcomes),
        "double_spends": {
            "tried": sum(1 for o in outcomes if o.double_spend),
            "refused": sum(1 for o in outcomes if o.double_spend == "COIN_DOUBLE_SPENT"),
        },
        "load_seconds": round(load_seconds, 1),
        "exit_codes": codes,
    }
    return {"summary": summary, "details": result.details}


FAILURES = ("lost", "duplicated", "wrong_total", "negative", "stuck_holds", "disagreements")


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.chaos``: the exit code (1 if any invariant broke)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="seeds the load and the faults")
    parser.add_argument("--payments", type=int, default=2000, help="how many payments")
    parser.add_argument("--concurrency", type=int, default=24, help="payments in flight")
    parser.add_argument(
        "--min-kills", type=int, default=2, help="kill every node at least this many times"
    )
    parser.add_argument(
        "--gap",
        type=float,
        nargs=2,
        default=(1.0, 3.0),
        metavar=("MIN", "MAX"),
        help="seconds between faults",
    )
    parser.add_argument("--keep", action="store_true", help="keep the network's directory")
    parser.add_argument(
        "--dir",
        type=Path,
        help="run the network in this new directory, and keep it (network.toml, logs/, data)",
    )
    args = parser.parse_args(argv)
    # The generator's own reconnects are expected under faults: only warnings and errors.
    configure_logging(level=logging.WARNING)
    if args.dir is not None:
        try:
            args.dir.mkdir(parents=True)
        except FileExistsError:
            parser.error(f"--dir {args.dir} exists; name a new directory")
        workdir, args.keep = args.dir, True
    else:
        workdir = Path(tempfile.mkdtemp(prefix="paynet-chaos-"))
    print(f"paynet chaos: seed {args.seed}, network in {workdir} (node logs in {workdir / 'logs'})")
    try:
        outcome = asyncio.run(
            run_chaos(
                seed=args.seed,
                payments=args.payments,
                concurrency=args.concurrency,
                min_kills=args.min_kills,
                gap_s=(args.gap[0], args.gap[1]),
                workdir=workdir,
            )
        )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    for line in outcome["details"]:
        print(f"  {line}")
    summary = outcome["summary"]
    broken = [name for name in FAILURES if summary[name]]
    print(f"paynet chaos: {'FAILED: ' + ', '.join(broken) if broken else 'all invariants hold'}")
    print(json.dumps(summary, sort_keys=False))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
