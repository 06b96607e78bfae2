"""``make bench`` stays runnable: a tiny run over the real network and echo chains.

The figures are not judged here (performance is measured by ``make bench``,
not by tests); the run's shape is: every level paid, settled, compared with its
echo baselines, and drawn.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from payment.bench import CHAIN_HOPS


def test_a_small_bench_run_pays_settles_and_reports_every_level(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "payment.bench",
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
        assert level["echo_1hop_rps"] > level["echo_chain_rps"] > 0
        assert level["efficiency"] == round(level["payments_per_s"] / level["echo_1hop_rps"], 4)
        picture = (tmp_path / f"latency-c{level['concurrency']}.svg").read_text()
        assert picture.startswith("<svg") and "p99" in picture
    assert "target no payment failed or lost: met" in run.stdout
