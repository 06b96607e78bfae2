"""No field a caller sends and no reader that stops reading can freeze a node through
its log: a huge request_id is cut in the line, the launcher relays whatever it gets,
and a node whose output nobody reads keeps serving."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from interbank.v1 import order_pb2, order_pb2_grpc

from ops.launcher import LocalNetwork, check_health
from tests.conftest import DevNet

HUGE_REQUEST_ID = "r" * 70_000
PIPE_BYTES = 64 * 1024


async def _create_order(store: order_pb2_grpc.OrderServiceStub, request_id: str) -> str:
    """CreateOrder's status code, whatever it is."""
    try:
        await store.CreateOrder(
            order_pb2.CreateOrderRequest(
                request_id=request_id,
                lines=[order_pb2.CreateOrderLine(sku="book-001", quantity=1)],
            ),
            timeout=5,
        )
    except grpc.aio.AioRpcError as exc:
        return str(exc.code().name)
    return "OK"


async def test_a_70000_character_request_id_neither_freezes_the_merchant_nor_paynet_up(
    devnet: DevNet,
) -> None:
    relayed = io.StringIO()
    net = LocalNetwork(devnet.network, devnet.path, log_sink=relayed)
    await net.start()
    shop = devnet.network.node("shop")
    try:
        async with devnet.channel("alice", shop.address) as channel:
            store = order_pb2_grpc.OrderServiceStub(channel)
            # Enough of them to fill a dead reader's buffer and the pipe behind it.
            for _ in range(6):
                await _create_order(store, HUGE_REQUEST_ID)
            health = await check_health(devnet.network, shop, timeout=5)
            assert health.status == "SERVING", health
            assert await _create_order(store, "an-ordinary-request-id") == "OK"
    finally:
        started = time.monotonic()
        codes = await asyncio.wait_for(net.stop(), 60)
        stopped_in = time.monotonic() - started
    assert codes == {node.name: 0 for node in devnet.network.nodes}
    assert stopped_in < 8, stopped_in
    shop_lines = [line for line in relayed.getvalue().splitlines() if line.startswith("shop ")]
    assert max(len(line) for line in shop_lines) < 16 * 1024
    assert HUGE_REQUEST_ID not in relayed.getvalue()
    assert any('"node.stopped"' in line for line in shop_lines)


async def test_a_node_whose_output_is_never_read_keeps_serving_and_stops_cleanly(
    devnet: DevNet,
) -> None:
    node = devnet.network.node("settlement")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ops.cli",
            "serve",
            str(node.role),
            "--network",
            str(devnet.path),
            "--name",
            node.name,
        ],
        stdout=subprocess.PIPE,  # never read: the pipe fills after 64 KiB
        stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        deadline = time.monotonic() + 30
        while (await check_health(devnet.network, node, 1.0)).status != "SERVING":
            assert proc.poll() is None and time.monotonic() < deadline, "node did not start"
            await asyncio.sleep(0.2)
        async with devnet.channel("settlement", node.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            # One access-log line each: several times what the pipe holds.
            calls = 8 * PIPE_BYTES // 200
            for _ in range(calls):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 15)
        stopped_in = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0
    assert stopped_in < 10, stopped_in  # the last lines are given a few seconds, not forever
    assert proc.stdout is not None
    written = proc.stdout.read().decode()
    # What the pipe held; the writer may have been cut off in the middle of its last line.
    lines = written[: written.rfind("\n") + 1].splitlines()
    assert "node.serving" in [json.loads(line)["event"] for line in lines]
