"""The launcher reads its nodes' output whatever they print: a line of any length
is relayed cut, and every line after it still arrives."""

from __future__ import annotations

import asyncio
import io
import sys
import time

from ops.launcher import MAX_RELAYED_LINE_BYTES, LocalNetwork, check_health, read_lines
from payment.config import NodeConfig
from tests.conftest import DevNet

LONG_LINE = 1_000_000
# Run before a node's own command: one 1 MB line and two ordinary ones, then the node.
PRINT_THEN_SERVE = (
    "import os, sys\n"
    f"sys.stdout.buffer.write(b'x' * {LONG_LINE} + b'\\n' + b'after one\\n' + b'after two\\n')\n"
    "sys.stdout.flush()\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def _print_then_serve(_node: NodeConfig) -> list[str]:
    return [sys.executable, "-c", PRINT_THEN_SERVE]


async def test_a_node_printing_a_1_mb_line_is_relayed_cut_and_its_later_lines_arrive(
    devnet: DevNet,
) -> None:
    relayed = io.StringIO()
    log_dir = devnet.path.parent / "logs"
    net = LocalNetwork(
        devnet.network, devnet.path, log_sink=relayed, log_dir=log_dir, wrap=_print_then_serve
    )
    node = devnet.network.node("settlement")
    await net.start_node(node)
    try:
        deadline = time.monotonic() + 30
        while (await check_health(devnet.network, node, 1.0)).status != "SERVING":
            assert net.running(node.name) and time.monotonic() < deadline, relayed.getvalue()
            await asyncio.sleep(0.2)
    finally:
        codes = await asyncio.wait_for(net.stop(), 30)
    assert codes == {"settlement": 0}
    lines = relayed.getvalue().splitlines()
    assert lines[0].startswith("settlement | xxx") and lines[0].endswith(" bytes]")
    assert len(lines[0]) < 70 * 1024
    assert lines[1:3] == ["settlement | after one", "settlement | after two"]
    assert any('"node.serving"' in line for line in lines[3:])
    assert any('"node.stopped"' in line for line in lines[3:])
    logged = (log_dir / "settlement.log").read_bytes().splitlines()
    assert logged[1:3] == [b"after one", b"after two"] and b"node.stopped" in logged[-1]


async def test_read_lines_cuts_an_over_long_line_and_ends_an_unfinished_last_line() -> None:
    stream = asyncio.StreamReader()
    stream.feed_data(b"y" * 200_000 + b"\nnext\n" + b"z" * 10 + b"\nunfinished")
    stream.feed_eof()
    lines = [line async for line in read_lines(stream)]
    cut = 200_000 - MAX_RELAYED_LINE_BYTES
    assert lines == [
        b"y" * MAX_RELAYED_LINE_BYTES + f"…[cut {cut} bytes]\n".encode(),
        b"next\n",
        b"z" * 10 + b"\n",
        b"unfinished\n",
    ]
