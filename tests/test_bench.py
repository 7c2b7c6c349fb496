"""
The benchmark still runs: C{python -m bench --quick} in a subprocess, from the
repository root, must exit 0 and write a JSON file with every server and every
metric in it.  Nothing about speed is asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.subprocess

ROOT = Path(__file__).resolve().parent.parent
SERVERS = {"tlsecho", "asyncio", "uvloop", "twisted"}
METRICS = {"bulk", "handshakes", "pingpong", "memory", "backpressure"}
WORKERS = "tlsecho-workers2"
WORKER_METRICS = {"bulk", "handshakes", "pingpong"}


def _socat() -> bool:
    """
    Whether socat is there to be measured; where the tools are required
    (C{TLSECHO_REQUIRE_TOOLS}, set by C{.ci/run}), it must be.
    """
    if shutil.which("socat"):
        return True
    if os.environ.get("TLSECHO_REQUIRE_TOOLS"):
        pytest.fail("socat is not installed, and .ci/run requires it")
    return False


def test_socat_is_there_where_required() -> None:
    """Under TLSECHO_REQUIRE_TOOLS the benchmark's socat peer cannot be dropped."""
    if not os.environ.get("TLSECHO_REQUIRE_TOOLS"):
        pytest.skip("TLSECHO_REQUIRE_TOOLS is not set")
    assert _socat()


def test_quick_bench_writes_every_server_and_metric(tmp_path: Path) -> None:
    """The quick mode exits 0 and reports every metric for every server."""
    output = tmp_path / "latest.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(output.read_text())
    expected = SERVERS | ({"socat"} if _socat() else set())
    assert set(results["servers"]) == expected | {WORKERS}
    for name in expected:
        metrics = results["servers"][name]["metrics"]
        assert set(metrics) == METRICS, name
        for summary in metrics.values():
            assert summary["min"] <= summary["median"] <= summary["max"]
    # tlsecho --workers 2 is measured where it matters, against one process.
    assert set(results["servers"][WORKERS]["metrics"]) == WORKER_METRICS
    assert set(results["workers"]) == WORKER_METRICS
    assert "--workers 2 / one process: " in result.stdout
    assert set(results["ratios"]) == expected - {"tlsecho"}
    assert results["crypto"]["aes128gcm"] > 0
    assert results["failures"] == []
    assert "tlsecho" in result.stdout  # the table
