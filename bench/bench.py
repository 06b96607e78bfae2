"""``make bench``: durable end-to-end payments/s and latency, beside the bare-RPC ceiling.

One run on this machine:

1. starts the network as separate processes (mTLS, SQLite with full sync, net
   settlement in 2 s windows) with one funded buyer per concurrent worker;
2. warms up (payments not counted);
3. for each concurrency (1, 16, 64): N frictionless payments. A payment's
   latency is CreateOrder + SubmitPayment until the merchant answers with the
   capture acknowledged (the customer's debit is booked at its bank);
   payments/s is N over the time they took. Then the run waits until every
   one of them has settled between the banks (order SETTLED or later): a
   payment that failed, or never settled, is counted and fails the run;
4. at the same concurrency, a bare ``grpc.aio`` echo over the same mTLS
   certificates, each server its own process (:mod:`bench.echo`): one hop,
   a chain of as many hops as a payment's synchronous path
   (:data:`CHAIN_HOPS`), and the bare flow: five echo servers wired as a
   payment travels, the same calls, batches and notice stream, with none of
   a payment's work.

``efficiency`` = payments/s / single-hop echo rps; the bare flow's own
efficiency is the most a payment over these calls can reach here. Per level it also reports
the CPU each process spent per payment and how many payments shared each
batch call (from the nodes' access logs). It prints a table, writes a
latency histogram (SVG) per concurrency, and ends with one JSON line: the
figures at the highest concurrency, and ``levels`` with every concurrency's.
``--profile DIR`` runs every node under py-spy and writes, per node, the
collapsed stacks and where its CPU went.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
from interbank.v1 import order_pb2

from bench.echo import ECHO_METHOD, FORWARD_METHOD, EchoWiring, flow_wiring
from customer.client import Customer
from ops.devnet import add_customers, free_ports, write_dev_network
from ops.launcher import LocalNetwork, read_lines
from payment.config import NetworkConfig, NodeConfig, Role, load_network
from payment.errors import PaynetError
from payment.pki import Pki, init_pki
from payment.tls import TlsIdentity, secure_channel

__all__ = ["CHAIN_HOPS", "EchoServers", "chain_wiring", "main"]

SYNCHRONOUS_PATH = (
    "CreateOrder",
    "SubmitPayment",
    "AuthorizePayment",
    "AuthorizeHolds",  # a sale: the capture rides on the authorization
    "SubmitCreditTransfers",  # batches: concurrent payments share these three calls
    "ReceiveCreditTransfers",
)
"""The RPCs a payment makes one after another before its capture is acknowledged."""
CHAIN_HOPS = len(SYNCHRONOUS_PATH)
BATCH_METHODS = ("AuthorizeHolds", "SubmitCreditTransfers", "ReceiveCreditTransfers")
"""The batch RPCs on the path: every payment is one entry of each."""
CONCURRENCIES = (1, 16, 64)
TARGET_EFFICIENCY = 0.25
TARGET_P99_MS = 100.0
_ACKNOWLEDGED = (
    order_pb2.ORDER_STATUS_CAPTURED,
    order_pb2.ORDER_STATUS_SETTLED,
    order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED,
)
_SETTLED = (order_pb2.ORDER_STATUS_SETTLED, order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED)
_PAYLOAD = b"x" * 256


@dataclass
class Level:
    """What one concurrency measured."""

    concurrency: int
    payments: int
    payments_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    failed: int = 0
    """Payments refused or ended in another status than acknowledged."""
    unsettled: int = 0
    """Acknowledged payments that did not settle before the timeout (lost)."""
    settled_after_s: float = 0.0
    """Time from the last acknowledgement until every payment had settled."""
    echo_1hop_rps: float = 0.0
    echo_chain_rps: float = 0.0
    bare_flow_rps: float = 0.0
    """Rounds/s of the payment's calls between echo servers wired as a payment travels,
    with none of its work (:func:`bench.echo.flow_wiring`)."""
    efficiency: float = 0.0
    bare_flow_efficiency: float = 0.0
    """bare_flow_rps / echo_1hop_rps: the efficiency of a payment whose work cost nothing,
    the most any payment over these calls reaches on this machine."""
    bare_flow_p99_ms: float = 0.0
    """p99 latency of the bare flow's rounds: the least any payment over these calls has."""
    bare_flow_cpu_ms: dict[str, float] = field(default_factory=dict)
    """CPU per bare flow round, under the name of the node each echo server stands for:
    what the calls alone cost of cpu_ms_per_payment."""
    cpu_ms_per_payment: dict[str, float] = field(default_factory=dict)
    """CPU time (user + system) each process spent per payment, and the total."""
    entries_per_call: dict[str, float] = field(default_factory=dict)
    """Per batch RPC: the level's payments (one entry each) over its calls, from the
    nodes' access logs. 1.0 means no batching; 4.0, four payments per call."""
    latencies_ms: list[float] = field(default_factory=list, repr=False)


def _log_sizes(log_dir: Path) -> dict[Path, int]:
    """How far each node's log has been written."""
    return {path: path.stat().st_size for path in log_dir.glob("*.log")}


def _calls_since(log_dir: Path, sizes: dict[Path, int]) -> collections.Counter[str]:
    """Calls served per method name since sizes, from the access log lines ("rpc")."""
    calls: collections.Counter[str] = collections.Counter()
    for path in log_dir.glob("*.log"):
        with path.open("rb") as log:
            log.seek(sizes.get(path, 0))
            for line in log.read().splitlines():
                if b'"rpc"' not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut by the read, or not JSON
                if record.get("event") == "rpc":
                    calls[str(record.get("method", "")).rpartition("/")[2]] += 1
    return calls


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of values, nearest rank; values must not be empty."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _bounded(n: int, concurrency: int, one: Callable[[int, int], Awaitable[None]]) -> None:
    """Run one(i, worker) for i in range(n), concurrency at a time."""
    queue = iter(range(n))

    async def worker(index: int) -> None:
        for i in queue:
            await one(i, index)

    await asyncio.gather(*(worker(w) for w in range(concurrency)))


_CUSTOMERS = "customers (bench)"
"""The benchmark's own process, which plays every customer."""


def _cpu_ms_per(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    """CPU ms per payment (or round) of each process between two readings, and the total;
    empty where a reading is."""
    if not (before and after):
        return {}
    spent = {name: (after[name] - before[name]) * 1000 / count for name in before}
    spent["total"] = sum(spent.values())
    return {name: round(ms, 2) for name, ms in spent.items()}


def _cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds of each process so far (Linux /proc; empty elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    found = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return {}
        found[name] = (int(fields[11]) + int(fields[12])) / ticks
    return found


class PaymentLoad:
    """Frictionless purchases by one buyer per worker, against a running network."""

    def __init__(self, network: NetworkConfig, buyers: Sequence[str]) -> None:
        self._merchant = network.merchants[0].name
        self._customers = [Customer(network, name) for name in buyers]

    async def close(self) -> None:
        for customer in self._customers:
            await customer.close()

    async def run(self, n: int, concurrency: int) -> tuple[list[float], list[tuple[int, str]], int]:
        """n payments; (latencies in ms, (buyer, order id) acknowledged, failures)."""
        latencies: list[float] = []
        acknowledged: list[tuple[int, str]] = []
        failed = 0

        async def one(_i: int, worker: int) -> None:
            nonlocal failed
            customer = self._customers[worker]
            started = time.perf_counter()
            try:
                placed = await customer.create_order(self._merchant, [("book-001", 1)])
                order = await customer.submit_payment(
                    placed, customer.seal_payment(placed, customer.instrument())
                )
            except PaynetError:  # a refusal or a peer failure: counted, the run goes on
                failed += 1
                return
            if order.status not in _ACKNOWLEDGED:
                failed += 1
                return
            latencies.append((time.perf_counter() - started) * 1000)
            acknowledged.append((worker, order.order_id))

        await _bounded(n, concurrency, one)
        return latencies, acknowledged, failed

    async def wait_settled(self, orders: list[tuple[int, str]], timeout: float) -> int:
        """Poll GetOrder until every order has settled; how many had not by the timeout."""
        pending = list(orders)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            still = []
            for start in range(0, len(pending), 64):
                chunk = pending[start : start + 64]
                seen = await asyncio.gather(
                    *(self._customers[w].get_order(self._merchant, o) for w, o in chunk)
                )
                still += [
                    key
                    for key, order in zip(chunk, seen, strict=True)
                    if order.status not in _SETTLED
                ]
            pending = still
            if pending:
                await asyncio.sleep(0.25)
        return len(pending)


@dataclass
class EchoRun:
    """What one echo measurement found."""

    rounds_per_s: float
    p99_ms: float
    cpu_ms_per_round: dict[str, float]
    """CPU time (user + system) each server and the caller spent per round, and the total."""


class EchoServers:
    """Echo servers (:mod:`bench.echo`), each its own process, wired by their options.

    wiring(addresses) gives each server's options, knowing every server's
    address; the first server is the one called, over mTLS.
    """

    def __init__(
        self,
        pki: Pki,
        names: Sequence[str],
        count: int,
        wiring: Callable[[list[str]], Sequence[EchoWiring]],
    ) -> None:
        self._pki = pki
        self._names = names
        self._count = count
        self._wiring = wiring
        self._procs: list[asyncio.subprocess.Process] = []
        self._channel: grpc.aio.Channel | None = None
        self.addresses: list[str] = []
        """Each server's host:port, once started."""

    def _name(self, index: int) -> str:
        """Whose certificate the index-th server serves with."""
        return self._names[index % len(self._names)]

    async def __aenter__(self) -> EchoServers:
        self.addresses = addresses = [f"127.0.0.1:{port}" for port in free_ports(self._count)]
        for i, (address, options) in enumerate(
            zip(addresses, self._wiring(addresses), strict=True)
        ):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.echo",
                "--pki",
                str(self._pki.root),
                "--name",
                self._name(i),
                "--port",
                address.rpartition(":")[2],
                *options,
                stdout=asyncio.subprocess.PIPE,
            )
            self._procs.append(proc)
            assert proc.stdout is not None
            line = await asyncio.wait_for(anext(read_lines(proc.stdout)), 30)
            if line.strip() != b"listening":
                raise RuntimeError(f"echo server {i} did not start")
        tls = TlsIdentity.load(self._pki, self._names[0])
        self._channel = secure_channel(addresses[0], tls)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._channel is not None:
            await self._channel.close()
        for proc in self._procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            await proc.wait()

    async def rate(self, n: int, concurrency: int, methods: Sequence[str]) -> EchoRun:
        """Rounds at a concurrency, after a warm-up: a round calls methods one after
        another on the first server, each with the same 256 bytes, which must come back."""
        assert self._channel is not None
        calls = [self._channel.unary_unary(method) for method in methods]
        latencies: list[float] = []

        async def one(_i: int, _worker: int) -> None:
            started = time.perf_counter()
            for call in calls:
                if await call(_PAYLOAD, timeout=10) != _PAYLOAD:
                    raise RuntimeError("an echo server answered other bytes than it was sent")
            latencies.append((time.perf_counter() - started) * 1000)

        await _bounded(min(n, 500), concurrency, one)
        latencies.clear()
        pids = {self._name(i): proc.pid for i, proc in enumerate(self._procs)}
        pids[_CUSTOMERS] = os.getpid()
        before = _cpu_seconds(pids)
        started = time.perf_counter()
        await _bounded(n, concurrency, one)
        elapsed = time.perf_counter() - started
        return EchoRun(
            rounds_per_s=round(n / elapsed, 1),
            p99_ms=round(percentile(latencies, 0.99), 1),
            cpu_ms_per_round=_cpu_ms_per(before, _cpu_seconds(pids), n),
        )


def chain_wiring(addresses: list[str]) -> list[EchoWiring]:
    """Each server passes Forward on to the next one; the last answers."""
    return [("--next", after) for after in addresses[1:]] + [()]


FLOW_SERVERS = 5
FLOW_ROUND = (ECHO_METHOD, FORWARD_METHOD)
"""A bare flow's round: the customer's two calls to the merchant (order, then payment)."""


@dataclass
class Baselines:
    """The bare echo figures at one concurrency."""

    single_rps: float
    chain_rps: float
    bare_flow: EchoRun


async def echo_rates(
    pki: Pki, names: Sequence[str], flow_names: Sequence[str], n: int, concurrency: int
) -> Baselines:
    """The single hop, the CHAIN_HOPS-hop chain and the bare flow at a concurrency.

    flow_names are the nodes the bare flow's servers stand for, in
    :func:`bench.echo.flow_wiring`'s order: each serves with that node's
    certificate, and its CPU is reported under that node's name.
    """
    async with EchoServers(pki, names, 1, chain_wiring) as one_hop:
        single = await one_hop.rate(n, concurrency, (FORWARD_METHOD,))
    fewer = max(n // CHAIN_HOPS, 200)
    async with EchoServers(pki, names, CHAIN_HOPS, chain_wiring) as chain:
        chained = await chain.rate(fewer, concurrency, (FORWARD_METHOD,))
    async with EchoServers(pki, flow_names, FLOW_SERVERS, flow_wiring) as flow:
        bare_flow = await flow.rate(fewer, concurrency, FLOW_ROUND)
    return Baselines(single.rounds_per_s, chained.rounds_per_s, bare_flow)


def flow_nodes(network: NetworkConfig) -> list[str]:
    """The nodes a bench payment crosses, in flow_wiring's order: the merchant, the
    gateway, an issuer other than the acquirer, the settlement bank, the acquirer."""
    merchant = network.merchants[0]
    (gateway,) = network.nodes_with_role(Role.GATEWAY)
    (settlement,) = network.nodes_with_role(Role.SETTLEMENT)
    banks = [bank.name for bank in network.nodes_with_role(Role.BANK)]
    issuer = next((bank for bank in banks if bank != merchant.bank), merchant.bank)
    return [merchant.name, gateway.name, issuer, settlement.name, merchant.bank]


def write_bench_network(workdir: Path, buyers: Sequence[str]) -> Path:
    """The dev network for the benchmark: nothing challenged, 2 s windows, funded buyers."""
    path = write_dev_network(
        workdir,
        reflection=False,
        challenge_above_minor=10**12,
        velocity_max_payments=10**9,
        window_seconds=2,
        # Net settlement as in the dev network, with a cap no benchmark run reaches.
        net_debit_cap_minor=10**14,
    )
    path.write_text(
        re.sub(
            r"opening_balance_minor = [1-9]\d*",
            "opening_balance_minor = 100000000000",
            path.read_text(),
        )
    )
    add_customers(path, tuple(buyers), 10**11, banks=("alfa", "beta"))
    return path


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("--profile needs py-spy: run make venv (it is a dev dependency)")
    return found


async def run(
    *,
    payments: int,
    concurrencies: Sequence[int],
    warmup: int,
    echo_requests: int,
    out_dir: Path,
    profile_dir: Path | None = None,
) -> list[Level]:
    """The whole benchmark in a temporary directory."""
    buyers = [f"bench{i:03d}" for i in range(max(concurrencies))]
    with tempfile.TemporaryDirectory(prefix="paynet-bench-") as tmp:
        workdir = Path(tmp)
        path = write_bench_network(workdir, buyers)
        network = load_network(path)
        pki = init_pki(network, network.pki_dir)
        wrap = None
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
            spy = _py_spy()

            def wrap(node: NodeConfig) -> Sequence[str]:
                output = profile_dir / f"{node.name}.txt"
                # --gil: only samples where a thread holds the GIL, so shares are of CPU work.
                return (
                    spy,
                    "record",
                    "--gil",
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "-o",
                    str(output),
                    "--",
                )

        log_dir = workdir / "logs"
        net = LocalNetwork(network, path, log_dir=log_dir, wrap=wrap)
        await net.start()
        load = PaymentLoad(network, buyers)
        levels = []
        try:
            # Every buyer pays during the warm-up, so no channel connects while measuring.
            await load.run(max(warmup, len(buyers)), len(buyers))
            pids = {n.name: net.pid(n.name) for n in network.nodes}
            pids[_CUSTOMERS] = os.getpid()
            if profile_dir is not None:
                pids = {}  # the node pids are py-spy's: no CPU figures under --profile
            for concurrency in concurrencies:
                level = Level(concurrency=concurrency, payments=payments)
                before = _cpu_seconds(pids)
                logged = _log_sizes(log_dir)
                started = time.perf_counter()
                latencies, acknowledged, level.failed = await load.run(payments, concurrency)
                elapsed = time.perf_counter() - started
                after = _cpu_seconds(pids)
                calls = _calls_since(log_dir, logged)
                level.entries_per_call = {
                    method: round(len(acknowledged) / calls[method], 2)
                    for method in BATCH_METHODS
                    if calls[method]
                }
                settling = time.perf_counter()
                level.unsettled = await load.wait_settled(acknowledged, timeout=60)
                level.settled_after_s = round(time.perf_counter() - settling, 2)
                level.payments_per_s = round(len(acknowledged) / elapsed, 1)
                level.p50_ms = round(statistics.median(latencies), 1) if latencies else 0.0
                level.p99_ms = round(percentile(latencies, 0.99), 1) if latencies else 0.0
                level.latencies_ms = latencies
                level.cpu_ms_per_payment = _cpu_ms_per(before, after, payments)
                levels.append(level)
        finally:
            await load.close()
            if profile_dir is not None:
                for node in network.nodes:
                    net.signal_node(node.name, signal.SIGINT)  # py-spy writes, then ends the node
                await asyncio.sleep(2)
            await net.stop()
        names = [node.name for node in network.nodes]
        flow_names = flow_nodes(network)
        for level in levels:
            baselines = await echo_rates(pki, names, flow_names, echo_requests, level.concurrency)
            level.echo_1hop_rps = baselines.single_rps
            level.echo_chain_rps = baselines.chain_rps
            level.bare_flow_rps = baselines.bare_flow.rounds_per_s
            level.bare_flow_p99_ms = baselines.bare_flow.p99_ms
            level.bare_flow_cpu_ms = baselines.bare_flow.cpu_ms_per_round
            level.efficiency = round(level.payments_per_s / level.echo_1hop_rps, 4)
            level.bare_flow_efficiency = round(level.bare_flow_rps / level.echo_1hop_rps, 4)
    out_dir.mkdir(parents=True, exist_ok=True)
    for level in levels:
        write_histogram(out_dir / f"latency-c{level.concurrency}.svg", level)
    if profile_dir is not None:
        (profile_dir / "summary.txt").write_text(profile_summary(profile_dir))
    return levels


def write_histogram(path: Path, level: Level) -> None:
    """A latency histogram as SVG: 40 bins up to the largest latency, p50 and p99 marked."""
    values = level.latencies_ms or [0.0]
    top = max(values) * 1.02 or 1.0
    bins = [0] * 40
    for value in values:
        bins[min(39, int(value / top * 40))] += 1
    width, height, left, bottom = 640, 320, 56, 40
    plot_w, plot_h = width - left - 16, height - bottom - 36
    tallest = max(bins) or 1
    bar_w = plot_w / len(bins)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="14">paynet payment latency at concurrency '
        f"{level.concurrency}: {len(level.latencies_ms)} payments, {level.payments_per_s}/s, "
        f"p50 {level.p50_ms} ms, p99 {level.p99_ms} ms</text>",
    ]
    for i, count in enumerate(bins):
        bar_h = count / tallest * plot_h
        x = left + i * bar_w
        y = height - bottom - bar_h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" height="{bar_h:.1f}" '
            f'fill="#4a78b0"><title>{i * top / 40:.1f}-{(i + 1) * top / 40:.1f} ms: '
            f"{count}</title></rect>"
        )
    for label, value, colour in (
        ("p50", level.p50_ms, "#2a9d3a"),
        ("p99", level.p99_ms, "#c0392b"),
    ):
        x = left + value / top * plot_w
        parts.append(
            f'<line x1="{x:.1f}" y1="30" x2="{x:.1f}" y2="{height - bottom}" stroke="{colour}" '
            f'stroke-dasharray="4 3"/><text x="{x + 3:.1f}" y="42" fill="{colour}">{label}</text>'
        )
    axis_y = height - bottom
    parts.append(
        f'<line x1="{left}" y1="{axis_y}" x2="{width - 16}" y2="{axis_y}" stroke="black"/>'
    )
    for tick in range(6):
        x = left + tick * plot_w / 5
        parts.append(
            f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle">{tick * top / 5:.0f}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">'
        "latency (ms): CreateOrder + SubmitPayment until the capture is acknowledged</text>"
    )
    parts.append(
        f'<text x="14" y="{30 + plot_h / 2}" transform="rotate(-90 14 {30 + plot_h / 2})" '
        f'text-anchor="middle">payments (tallest bar {tallest})</text></svg>'
    )
    path.write_text("\n".join(parts) + "\n")


_STORE = "store (SQLite, its thread)"
_CATEGORIES = (
    # The access log's own work is its finish(); its wrapper frame encloses every RPC.
    (
        "logging",
        (
            "structlog",
            "payment/logs.py",
            "logging/",
            "json/",
            "AccessLog.intercept_service.<locals>.finish",
        ),
    ),
    (_STORE, ("storage.py", "sqlite3", "concurrent/futures", "threading")),
    ("cryptography", ("cryptography", "envelope.py", "otp.py")),
    ("peer identity", ("PeerAuthorization.authenticate", "identity.py")),
    ("protobuf", ("protobuf", "_pb2")),
    ("gRPC and asyncio", ("grpc", "asyncio", "selectors")),
    ("paynet code", ("payment/", "gateway/", "bank/", "merchant/")),
)
"""Categories of a profile sample, by its innermost frame that names one (first match wins)."""
_STORE_THREAD = "concurrent/futures/thread.py"


def _category(frames: Sequence[str]) -> str:
    """What a sample's stack was doing: see _CATEGORIES."""
    # Everything on the store's thread is store work: SQLite's C calls have no frame of
    # their own, so they show as the paynet line that made them.
    if any(_STORE_THREAD in frame for frame in frames):
        return _STORE
    if not any("<frozen importlib" in frame for frame in frames):  # else: start-up imports
        for frame in reversed(frames):
            for category, keys in _CATEGORIES:
                if any(key in frame for key in keys):
                    return category
    return "other (start-up imports, interpreter)"


def profile_summary(profile_dir: Path) -> str:
    """Per node: samples by what they were doing (innermost recognised frame wins)."""
    lines = []
    for path in sorted(profile_dir.glob("*.txt")):
        if path.name == "summary.txt":
            continue
        counts: collections.Counter[str] = collections.Counter()
        total = 0
        for line in path.read_text().splitlines():
            stack, _, number = line.rpartition(" ")
            if not number.isdigit():
                continue
            total += int(number)
            category = _category(stack.split(";"))
            counts[category] += int(number)
        shares = ", ".join(f"{c} {n / total:.0%}" for c, n in counts.most_common()) if total else ""
        lines.append(f"{path.stem}: {total} samples: {shares}")
    return "\n".join(lines) + "\n"


def table(levels: Sequence[Level]) -> str:
    """The figures for people."""
    head = (
        f"{'concurrency':>11} {'payments':>8} {'payments/s':>10} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'echo 1-hop':>10} {f'echo {CHAIN_HOPS}-hop':>10} {'bare flow':>9} {'efficiency':>10} "
        f"{'bare eff.':>9} {'failed':>6} {'lost':>4} {'settled in':>10} {'CPU ms/pay':>10}"
    )
    rows = [head]
    for lv in levels:
        rows.append(
            f"{lv.concurrency:>11} {lv.payments:>8} {lv.payments_per_s:>10} {lv.p50_ms:>7} "
            f"{lv.p99_ms:>7} {lv.echo_1hop_rps:>10} {lv.echo_chain_rps:>10} "
            f"{lv.bare_flow_rps:>9} {lv.efficiency:>10} {lv.bare_flow_efficiency:>9} "
            f"{lv.failed:>6} {lv.unsettled:>4} "
            f"{lv.settled_after_s:>9}s {lv.cpu_ms_per_payment.get('total', 0):>10}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Entry point of make bench: 1 if a payment failed or was lost."""
    # The echo servers and nodes inherit it: gRPC's INFO lines (a GOAWAY as a server
    # stops) would bury the table.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--payments", type=int, default=400, help="payments per level")
    parser.add_argument(
        "-c",
        "--concurrency",
        type=int,
        nargs="+",
        default=list(CONCURRENCIES),
        help="concurrency levels",
    )
    parser.add_argument("--warmup", type=int, default=100, help="payments before measuring")
    parser.add_argument("--echo-requests", type=int, default=5000)
    parser.add_argument(
        "--out", type=Path, default=Path("build/bench"), help="where the histograms go"
    )
    parser.add_argument("--profile", type=Path, help="profile every node with py-spy into DIR")
    args = parser.parse_args(argv)
    levels = asyncio.run(
        run(
            payments=args.payments,
            concurrencies=args.concurrency,
            warmup=args.warmup,
            echo_requests=args.echo_requests,
            out_dir=args.out,
            profile_dir=args.profile,
        )
    )
    print(table(levels))
    for level in levels:
        at = f"at concurrency {level.concurrency}"
        print(f"CPU ms per payment {at}: {level.cpu_ms_per_payment}")
        print(f"CPU ms per bare flow round {at}: {level.bare_flow_cpu_ms}")
        print(f"entries per batch call {at}: {level.entries_per_call}")
    pictures = [str(args.out / f"latency-c{lv.concurrency}.svg") for lv in levels]
    print(f"latency histograms: {', '.join(pictures)}")
    if args.profile is not None:
        print((args.profile / "summary.txt").read_text(), end="")
    last = levels[-1]
    failed = sum(lv.failed for lv in levels)
    lost = sum(lv.unsettled for lv in levels)
    targets = {
        f"efficiency >= {TARGET_EFFICIENCY} at concurrency {last.concurrency}": last.efficiency
        >= TARGET_EFFICIENCY,
        f"p99 <= {TARGET_P99_MS:g} ms at concurrency {last.concurrency}": last.p99_ms
        <= TARGET_P99_MS,
        "no payment failed or lost": failed == 0 and lost == 0,
    }
    for name, met in targets.items():
        print(f"target {name}: {'met' if met else 'NOT met'}")
    print(
        f"the payment's calls alone, between bare echo servers (bare flow), reach efficiency "
        f"{last.bare_flow_efficiency} with p99 {last.bare_flow_p99_ms} ms at concurrency "
        f"{last.concurrency}: no payment over these calls does better on this machine"
    )
    summary: dict[str, Any] = {
        "payments_per_s": last.payments_per_s,
        "p50_ms": last.p50_ms,
        "p99_ms": last.p99_ms,
        "echo_1hop_rps": last.echo_1hop_rps,
        "echo_chain_rps": last.echo_chain_rps,
        "chain_hops": CHAIN_HOPS,
        "bare_flow_rps": last.bare_flow_rps,
        "efficiency": last.efficiency,
        "bare_flow_efficiency": last.bare_flow_efficiency,
        "bare_flow_p99_ms": last.bare_flow_p99_ms,
        "concurrency": last.concurrency,
        "failed": failed,
        "lost": lost,
        "levels": [{k: v for k, v in asdict(lv).items() if k != "latencies_ms"} for lv in levels],
    }
    print(json.dumps(summary))
    return 1 if failed or lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
