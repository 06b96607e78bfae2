"""``make bench``: durable end-to-end payments/s and latency, beside the ceiling.

In one run on this machine it measures:

- payments: N frictionless purchases at concurrency C over a fresh local
  network (every node its own process, mTLS, SQLite with full sync). A
  payment's latency is CreateOrder + SubmitPayment until the merchant answers
  CAPTURED; the run ends when every order is DELIVERY_CONFIRMED, and
  payments/s counts that whole time;
- a bare ``grpc.aio`` echo over the same mTLS: one hop, and a chain of as many
  servers as a payment has synchronous RPCs on its critical path.

The last line is one JSON object: payments_per_s, p50_ms, p99_ms,
echo_1hop_rps, echo_chain_rps, chain_hops, efficiency (payments_per_s /
echo_1hop_rps).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from interbank.v1 import order_pb2

from payment.config import NetworkConfig, load_network
from payment.customer import Customer
from payment.devnet import write_dev_network
from payment.launcher import LocalNetwork
from payment.pki import Pki, init_pki
from payment.tls import TlsIdentity, secure_channel

__all__ = ["main"]

# CreateOrder, SubmitPayment, AuthorizePayment, AuthorizeHold, CapturePayment, CaptureHold,
# SubmitCreditTransfer, ReceiveCreditTransfer: the RPCs one after another on a payment's path.
CHAIN_HOPS = 8
_ECHO = "/paynet.bench.Echo/Echo"
PAID = (
    order_pb2.ORDER_STATUS_CAPTURED,
    order_pb2.ORDER_STATUS_SETTLED,
    order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED,
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _bounded(n: int, concurrency: int, one: Callable[[int], Awaitable[float]]) -> list[float]:
    queue = iter(range(n))
    results: list[float] = []

    async def worker() -> None:
        for i in queue:
            results.append(await one(i))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def bench_payments(network: NetworkConfig, n: int, concurrency: int) -> dict[str, float]:
    """Run n payments at a concurrency; payments/s and latency percentiles."""
    merchant = network.merchants[0].name
    customers = [Customer(network, c.name) for c in network.customers]
    orders: list[tuple[Customer, str]] = []
    try:

        async def one(i: int) -> float:
            customer = customers[i % len(customers)]
            started = time.perf_counter()
            placed = await customer.create_order(merchant, [("book-001", 1)])
            order = await customer.submit_payment(
                placed, customer.seal_payment(placed, customer.instrument())
            )
            if order.status not in PAID:
                raise RuntimeError(f"payment {i} ended {order_pb2.OrderStatus.Name(order.status)}")
            orders.append((customer, order.order_id))
            return (time.perf_counter() - started) * 1000

        started = time.perf_counter()
        latencies = await _bounded(n, concurrency, one)
        for customer, order_id in orders:
            await customer.wait_for_order(
                merchant, order_id, order_pb2.ORDER_STATUS_DELIVERY_CONFIRMED, 120
            )
        elapsed = time.perf_counter() - started
    finally:
        for customer in customers:
            await customer.close()
    return {
        "payments": n,
        "payments_per_s": round(n / elapsed, 2),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
    }


async def bench_echo(pki: Pki, names: list[str], n: int, concurrency: int, hops: int) -> float:
    """Requests/s through a chain of `hops` bare grpc.aio echo servers over mTLS."""
    servers: list[grpc.aio.Server] = []
    channels: list[grpc.aio.Channel] = []
    next_stub: list[Callable[..., Any] | None] = [None] * hops
    ports: list[int] = []
    for i in range(hops):
        tls = TlsIdentity.load(pki, names[i % len(names)])

        def handler(index: int) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
            async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
                forward = next_stub[index]
                return request if forward is None else bytes(await forward(request, timeout=10))

            return echo

        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "paynet.bench.Echo",
                    {"Echo": grpc.unary_unary_rpc_method_handler(handler(i))},
                ),
            )
        )
        ports.append(server.add_secure_port("127.0.0.1:0", tls.server_credentials()))
        await server.start()
        servers.append(server)
    for i in range(hops - 1):
        tls = TlsIdentity.load(pki, names[i % len(names)])
        channel = secure_channel(f"127.0.0.1:{ports[i + 1]}", tls)
        channels.append(channel)
        next_stub[i] = channel.unary_unary(_ECHO)
    client_channel = secure_channel(f"127.0.0.1:{ports[0]}", TlsIdentity.load(pki, names[0]))
    channels.append(client_channel)
    call = client_channel.unary_unary(_ECHO)
    payload = b"x" * 256

    async def one(_i: int) -> float:
        await call(payload, timeout=10)
        return 0.0

    await _bounded(min(200, n), concurrency, one)  # warm up connections
    started = time.perf_counter()
    await _bounded(n, concurrency, one)
    elapsed = time.perf_counter() - started
    for channel in channels:
        await channel.close()
    for server in servers:
        await server.stop(None)
    return round(n / elapsed, 1)


async def run(n: int, concurrency: int, echo_n: int) -> dict[str, Any]:
    """The whole benchmark in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="paynet-bench-") as tmp:
        workdir = Path(tmp)
        path = write_dev_network(
            workdir,
            reflection=False,
            challenge_above_minor=10**12,
            velocity_max_payments=10**9,
            # Net settlement as in the dev network, with a cap no benchmark run reaches.
            net_debit_cap_minor=10**14,
        )
        text = path.read_text()
        path.write_text(
            re.sub(
                r"opening_balance_minor = [1-9]\d*", "opening_balance_minor = 100000000000", text
            )
        )
        network = load_network(path)
        pki = init_pki(network, network.pki_dir)
        net = LocalNetwork(network, path, log_dir=workdir / "logs")
        await net.start()
        try:
            payments = await bench_payments(network, n, concurrency)
        finally:
            await net.stop()
        names = [node.name for node in network.nodes]
        one_hop = await bench_echo(pki, names, echo_n, concurrency, 1)
        chain = await bench_echo(pki, names, echo_n, concurrency, CHAIN_HOPS)
    return {
        **payments,
        "concurrency": concurrency,
        "echo_1hop_rps": one_hop,
        "echo_chain_rps": chain,
        "chain_hops": CHAIN_HOPS,
        "efficiency": round(payments["payments_per_s"] / one_hop, 4),
    }


def main() -> int:
    """Entry point of make bench."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--payments", type=int, default=300)
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--echo-requests", type=int, default=5000)
    args = parser.parse_args()
    result = asyncio.run(run(args.payments, args.concurrency, args.echo_requests))
    print(
        f"payments: {result['payments']} at concurrency {result['concurrency']}: "
        f"{result['payments_per_s']}/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms"
    )
    print(
        f"bare grpc.aio echo over mTLS: 1 hop {result['echo_1hop_rps']} rps, "
        f"{CHAIN_HOPS}-hop chain {result['echo_chain_rps']} rps"
    )
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "payments_per_s",
                    "p50_ms",
                    "p99_ms",
                    "echo_1hop_rps",
                    "echo_chain_rps",
                    "chain_hops",
                    "efficiency",
                )
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
