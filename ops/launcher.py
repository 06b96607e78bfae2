"""Run a whole network locally: every node as its own process.

:class:`LocalNetwork` is what ``paynet up`` and ``make run`` use: it starts
``paynet serve`` for each node, prefixes and relays their logs, waits until
each reports SERVING over mTLS, notices a node that dies, and stops them all
with SIGTERM (SIGKILL after a grace period).

A node's output is read with :func:`read_lines`, which survives a line of any
length: a reader that died on one would leave the node blocked on a full pipe.

:func:`serve_command` (a node's command line) and :func:`wait_until_serving`
(health over mTLS until every node answers SERVING) are the two steps of
starting a network; the test support starts its networks with them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from payment.config import NetworkConfig, NodeConfig
from payment.pki import Pki
from payment.tls import TlsIdentity, secure_channel

__all__ = [
    "MAX_RELAYED_LINE_BYTES",
    "HealthReport",
    "LocalNetwork",
    "NodeDied",
    "check_health",
    "read_lines",
    "serve_command",
    "wait_until_serving",
]

MAX_RELAYED_LINE_BYTES = 64 * 1024
"""Longest line relayed from a child; a longer one keeps its start and a cut marker."""
_CHUNK_BYTES = 64 * 1024


async def read_lines(
    stream: asyncio.StreamReader, max_line_bytes: int = MAX_RELAYED_LINE_BYTES
) -> AsyncIterator[bytes]:
    """Each line a child writes, newline-terminated, until its end of output, whatever its length.

    A line over max_line_bytes keeps its first max_line_bytes and a marker saying
    how many bytes were cut (``…[cut 935421 bytes]``), and reading goes on with
    the next line. Reading in chunks keeps memory bounded and never stops on a
    long line, as iterating the StreamReader does (its 64 KiB limit raises).
    """
    line = bytearray()
    cut = 0

    def finish() -> bytes:
        nonlocal cut
        marker = f"…[cut {cut} bytes]".encode() if cut else b""
        done = bytes(line) + marker + b"\n"
        line.clear()
        cut = 0
        return done

    def take(part: bytes) -> None:
        nonlocal cut
        room = max_line_bytes - len(line)
        line.extend(part[:room])
        cut += max(0, len(part) - room)

    while chunk := await stream.read(_CHUNK_BYTES):
        *ended, rest = chunk.split(b"\n")
        for part in ended:
            take(part)
            yield finish()
        take(rest)
    if line or cut:
        yield finish()


class NodeDied(Exception):
    """A node process exited while the network was meant to be running."""


@dataclass(frozen=True)
class HealthReport:
    """One node's answer to a health check over mTLS."""

    node: NodeConfig
    """The node checked."""
    status: str
    """SERVING, NOT_SERVING, UNKNOWN, or UNREACHABLE."""
    detail: str
    """Why, when not SERVING."""
    latency_ms: float
    """Round trip of the check."""


async def check_health(
    network: NetworkConfig, node: NodeConfig, timeout: float = 2.0
) -> HealthReport:
    """Ask a node's grpc.health.v1 service, authenticating with the node's own certificate."""
    started = time.perf_counter()
    tls = TlsIdentity.load(Pki(network.pki_dir), node.name)
    async with secure_channel(node.address, tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            detail = ""
        except grpc.aio.AioRpcError as exc:
            status, detail = "UNREACHABLE", f"{exc.code().name}: {exc.details()}"
    return HealthReport(node, status, detail, (time.perf_counter() - started) * 1000)


def serve_command(node: NodeConfig, network_file: Path) -> list[str]:
    """The command line that runs one node of the network file: ``paynet serve``."""
    return [
        sys.executable,
        "-m",
        "ops.cli",
        "serve",
        str(node.role),
        "--network",
        str(network_file),
        "--name",
        node.name,
    ]


async def wait_until_serving(
    network: NetworkConfig, timeout: float, exited: Callable[[], Mapping[str, int]]
) -> None:
    """Poll health over mTLS until every node of network is SERVING.

    exited names the node processes that have ended, with their exit codes:
    NodeDied on the first one; TimeoutError when timeout passes first.
    """
    deadline = time.monotonic() + timeout
    pending = list(network.nodes)
    while pending:
        for name, code in exited().items():
            raise NodeDied(f"node {name} exited with code {code}")
        reports = await asyncio.gather(*(check_health(network, n, 1.0) for n in pending))
        pending = [r.node for r in reports if r.status != "SERVING"]
        if pending and time.monotonic() > deadline:
            names = ", ".join(n.name for n in pending)
            raise TimeoutError(f"nodes not SERVING after {timeout:.0f}s: {names}")
        if pending:
            await asyncio.sleep(0.2)


class LocalNetwork:
    """The nodes of a network file, each running as a child process.

    wrap, if given, is a command put before each node's own (a profiler, say).
    """

    def __init__(
        self,
        network: NetworkConfig,
        network_file: Path,
        *,
        log_sink: TextIO | None = None,
        log_dir: Path | None = None,
        wrap: Callable[[NodeConfig], Sequence[str]] | None = None,
    ) -> None:
        self.network = network
        self.network_file = network_file
        self._wrap = wrap
        self._sink = log_sink
        self._log_dir = log_dir
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._pumps: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self, *, ready_timeout: float = 30.0) -> None:
        """Start every node and wait until all are SERVING (NodeDied or TimeoutError otherwise)."""
        for node in self.network.nodes:
            await self.start_node(node)
        await self.wait_until_serving(ready_timeout)

    async def start_node(self, node: NodeConfig) -> None:
        """Start one node's process."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = await asyncio.create_subprocess_exec(
            *(self._wrap(node) if self._wrap is not None else ()),
            *serve_command(node, self.network_file),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        self._procs[node.name] = proc
        self._pumps.append(asyncio.create_task(self._pump(node.name, proc)))

    async def wait_until_serving(self, timeout: float) -> None:
        """Poll health over mTLS until every node is SERVING."""
        await wait_until_serving(self.network, timeout, self._exited)

    def raise_if_any_died(self) -> None:
        """NodeDied if a node process has exited."""
        for name, code in self._exited().items():
            raise NodeDied(f"node {name} exited with code {code}")

    def _exited(self) -> dict[str, int]:
        return {n: p.returncode for n, p in self._procs.items() if p.returncode is not None}

    async def wait_for_death(self) -> str:
        """Wait until any node exits; return its name."""
        waits = {asyncio.create_task(p.wait()): name for name, p in self._procs.items()}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[done.pop()]

    def signal_node(self, name: str, sig: signal.Signals) -> None:
        """Send a signal to a node's process (SIGKILL, SIGSTOP, SIGCONT for fault injection)."""
        proc = self._procs[name]
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    async def kill_node(self, name: str) -> int:
        """SIGKILL a node (it gets no chance to clean up) and wait for it; its exit code."""
        self.signal_node(name, signal.SIGKILL)
        return await self._procs[name].wait()

    async def restart_node(self, name: str, *, ready_timeout: float = 30.0) -> None:
        """Start a stopped node again and wait until it is SERVING."""
        if self._procs[name].returncode is None:
            raise RuntimeError(f"node {name} is still running")
        node = self.network.node(name)
        await self.start_node(node)
        deadline = time.monotonic() + ready_timeout
        while (await check_health(self.network, node, 1.0)).status != "SERVING":
            if self._procs[name].returncode is not None:
                raise NodeDied(f"node {name} exited with code {self._procs[name].returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {name} not SERVING {ready_timeout:.0f}s after restart")
            await asyncio.sleep(0.1)

    def running(self, name: str) -> bool:
        """Whether a node's process is alive."""
        return name in self._procs and self._procs[name].returncode is None

    def pid(self, name: str) -> int:
        """The process id of a node."""
        return self._procs[name].pid

    async def stop(self, grace: float = 10.0) -> dict[str, int]:
        """SIGTERM every node, SIGKILL what is left after grace; returns exit codes."""
        self._stopping = True
        for proc in self._procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        codes: dict[str, int] = {}
        for name, proc in self._procs.items():
            try:
                codes[name] = await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                codes[name] = await proc.wait()
        for pump in self._pumps:
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        return codes

    async def _pump(self, name: str, proc: asyncio.subprocess.Process) -> None:
        """Relay a node's output to its log file and the sink until it ends.

        A destination that fails (a closed sink, a full disk) is dropped, and
        the node's output is still read: a node never waits on an unread pipe.
        """
        assert proc.stdout is not None
        log_file = None
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            log_file = (self._log_dir / f"{name}.log").open("ab")
        sink = self._sink
        width = max(len(n.name) for n in self.network.nodes)
        try:
            async for line in read_lines(proc.stdout):
                if log_file is not None:
                    try:
                        log_file.write(line)
                        log_file.flush()
                    except OSError:
                        with contextlib.suppress(OSError):
                            log_file.close()
                        log_file = None
                if sink is not None:
                    try:
                        sink.write(f"{name:<{width}} | {line.decode(errors='replace')}")
                        sink.flush()
                    except (OSError, ValueError):  # ValueError: the sink is closed
                        sink = None
        finally:
            if log_file is not None:
                with contextlib.suppress(OSError):
                    log_file.close()


async def run_until_signal(net: LocalNetwork, on_ready: Callable[[], None] | None = None) -> int:
    """``paynet up``: start, serve until SIGINT/SIGTERM or a node dies; the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await net.start()
    except (NodeDied, TimeoutError) as exc:
        print(f"paynet up: {exc}", file=sys.stderr)
        await net.stop()
        return 1
    if on_ready is not None:
        on_ready()
    death = asyncio.create_task(net.wait_for_death())
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({death, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if death in done:
        print(f"paynet up: node {death.result()} died; stopping the network", file=sys.stderr)
        await net.stop()
        return 1
    death.cancel()
    codes = await net.stop()
    bad = {n: c for n, c in codes.items() if c not in (0, -signal.SIGTERM)}
    if bad:
        print(f"paynet up: nodes exited uncleanly: {bad}", file=sys.stderr)
        return 1
    return 0
