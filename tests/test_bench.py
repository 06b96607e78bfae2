"""``make bench`` stays runnable: a tiny run over the real network and echo chains.

The figures are not judged here, not even against each other (performance is
measured by ``make bench``, not by tests, and a test's timings depend on what
else runs beside it); the run's shape is: every level paid, settled, compared
with its echo baselines, and drawn.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.bench import BATCH_METHODS, CHAIN_HOPS


def test_a_small_bench_run_pays_settles_and_reports_every_level(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.bench",
            *("-n", "12", "-c", "1", "4", "--warmup", "4", "--echo-requests", "300"),
            *("--out", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert [level["concurrency"] for level in summary["levels"]] == [1, 4]
    assert (summary["failed"], summary["lost"], summary["chain_hops"]) == (0, 0, CHAIN_HOPS)
    for level in summary["levels"]:
        assert level["payments"] == 12 and level["unsettled"] == 0
        assert 0 < level["p50_ms"] <= level["p99_ms"]
        # Rates are figures, not judged against each other: only that each was measured.
        assert level["echo_1hop_rps"] > 0 and level["echo_chain_rps"] > 0
        assert level["efficiency"] == round(level["payments_per_s"] / level["echo_1hop_rps"], 4)
        # The bare flow: the payment's calls alone, measured beside the payments.
        assert level["payments_per_s"] > 0
        assert level["bare_flow_rps"] > 0 and level["bare_flow_p99_ms"] > 0
        assert level["bare_flow_efficiency"] == round(
            level["bare_flow_rps"] / level["echo_1hop_rps"], 4
        )
        # Its servers stand for the network's nodes, so their CPU compares node by node.
        assert set(level["bare_flow_cpu_ms"]) == set(level["cpu_ms_per_payment"])
        assert all(ms > 0 for ms in level["bare_flow_cpu_ms"].values())
        # One payment at a time: every batch call carries that payment's entry alone.
        if level["concurrency"] == 1:
            assert level["entries_per_call"] == dict.fromkeys(BATCH_METHODS, 1.0)
        else:
            assert sorted(level["entries_per_call"]) == sorted(BATCH_METHODS)
            assert all(1.0 <= n <= 4.0 for n in level["entries_per_call"].values())
        picture = (tmp_path / f"latency-c{level['concurrency']}.svg").read_text()
        assert picture.startswith("<svg") and "p99" in picture
    assert "target no payment failed or lost: met" in run.stdout
    assert f"reach efficiency {summary['bare_flow_efficiency']} with p99" in run.stdout


def test_the_profile_summary_puts_each_sample_where_its_work_was_done(tmp_path: Path) -> None:
    from bench.bench import profile_summary

    loop = "run (asyncio/runners.py:190);Handle._run (asyncio/events.py:80)"
    access_log = "AccessLog.intercept_service.<locals>"
    rpc = f"{loop};{access_log}.unary.<locals>.logged (payment/interceptors.py:180)"
    (tmp_path / "node.txt").write_text(
        "\n".join(
            [
                # Work inside an RPC is the handler's, not the access log's wrapper.
                f"{rpc};Settlement._settle (bank/settlement.py:296) 10",
                f"{rpc};{access_log}.finish (payment/interceptors.py:165)"
                ";meth (structlog/_native.py:172) 20",
                # A paynet step on the store's thread is store work (SQLite has no frame).
                "_worker (concurrent/futures/thread.py:83)"
                ";Issuer._authorize (bank/issuer.py:140) 30",
                f"{rpc};UnaryUnaryCall._invoke (grpc/aio/_call.py:595) 35",
                "<module> (bank/app.py:31)"
                ";_call_with_frames_removed (<frozen importlib._bootstrap>:241) 5",
            ]
        )
        + "\n"
    )
    assert profile_summary(tmp_path) == (
        "node: 100 samples: gRPC and asyncio 35%, store (SQLite, its thread) 30%, logging 20%,"
        " paynet code 10%, other (start-up imports, interpreter) 5%\n"
    )
