"""
The benchmark still runs: C{python -m bench --quick} in a subprocess, from the
repository root, must exit 0 and write a JSON file with every server and every
metric in it, the server's CPU per operation included.  Nothing about speed is
asserted.  The report's per-operation rows and the servers' environments are
also checked without running the bench.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The bench is a package at the repository root, not part of tlsecho.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.certs import CertFiles  # noqa: E402
from bench.metrics import METRICS as ALL_METRICS  # noqa: E402
from bench.metrics import Sample  # noqa: E402
from bench.servers import SERVERS as ALL_SERVERS  # noqa: E402
from bench.servers import Server  # noqa: E402

PYOPENSSL = "tlsecho-pyopenssl"
SERVERS = {"tlsecho", PYOPENSSL, "asyncio", "uvloop", "twisted"}
METRICS = {"bulk", "handshakes", "pingpong", "memory", "backpressure"}
WORKERS = "tlsecho-workers2"
WORKER_METRICS = {"bulk", "handshakes", "pingpong"}
#: The server's CPU per operation: metric -> its unit and its row in the table.
PER_OP = {
    "handshakes": ("µs/hs", "  server cpu    µs/hs"),
    "pingpong": ("µs/rt", "  server cpu    µs/rt"),
    "bulk": ("µs/MB", "  server cpu    µs/MB"),
}
CPU_RATIO_ROW = "  tlsecho/x lower=better"


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


@pytest.mark.subprocess
def test_socat_is_there_where_required() -> None:
    """Under TLSECHO_REQUIRE_TOOLS the benchmark's socat peer cannot be dropped."""
    if not os.environ.get("TLSECHO_REQUIRE_TOOLS"):
        pytest.skip("TLSECHO_REQUIRE_TOOLS is not set")
    assert _socat()


@pytest.mark.subprocess
def test_quick_bench_writes_every_server_and_metric(tmp_path: Path) -> None:
    """
    The quick mode exits 0 and reports every metric for every server, tlsecho
    on both TLS transports, with the server's CPU per operation beside the
    figures that count operations, and its ratios.
    """
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
    for name in expected | {WORKERS}:
        metrics = results["servers"][name]["metrics"]
        for metric, (unit, _) in PER_OP.items():
            per_op = metrics[metric]["server_cpu_per_op"]
            assert per_op["unit"] == unit, (name, metric)
            # None where the server's CPU time (in 10 ms ticks) did not move in
            # so short a window; ping-pong keeps a server busy enough.
            if metric == "pingpong" or per_op["median"] is not None:
                assert 0 < per_op["min"] <= per_op["median"] <= per_op["max"], name
        for metric in METRICS - set(PER_OP):
            assert "server_cpu_per_op" not in metrics.get(metric, {}), (name, metric)
    cpu_ratios = results["server_cpu_per_op_ratios"]
    assert set(cpu_ratios) == expected - {"tlsecho"}
    for name in cpu_ratios:
        assert "pingpong" in cpu_ratios[name], name
        assert set(cpu_ratios[name]) <= set(PER_OP), name
    assert results["crypto"]["aes128gcm"] > 0
    assert results["failures"] == []
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("metric "))
    assert header.split()[:4] == ["metric", "unit", "tlsecho", PYOPENSSL]
    for _, row in PER_OP.values():
        assert sum(line.startswith(row) for line in lines) == 1, row
    assert sum(line.startswith(CPU_RATIO_ROW) for line in lines) == len(PER_OP)


def test_report_server_cpu_per_op() -> None:
    """
    The server's CPU per operation is summarized like the figures (median, min,
    max), divided tlsecho / each other server (not tlsecho --workers 2), and
    shown under the figure with its unit and a ratio row that says lower is
    better; metrics that count no operations get neither.
    """
    units = {m.name: m.per_op for m in ALL_METRICS}
    assert {name: unit for name, unit in units.items() if unit} == {
        metric: unit for metric, (unit, _) in PER_OP.items()
    }

    def samples(*per_op: float) -> list[Sample]:
        return [Sample(value=1.0, server_cpu=1.0, server_cpu_per_op=v) for v in per_op]

    summary = {
        "tlsecho": {
            "handshakes": report.summarize(samples(800, 700, 900), units["handshakes"]),
            "memory": report.summarize([Sample(value=26.0)], units["memory"]),
        },
        PYOPENSSL: {"handshakes": report.summarize(samples(1600), units["handshakes"])},
        WORKERS: {"handshakes": report.summarize(samples(400), units["handshakes"])},
        # The server's CPU time did not move: no figure, no ratio.
        "asyncio": {
            "handshakes": report.summarize(
                [Sample(value=1.0, server_cpu=0.0)], units["handshakes"]
            )
        },
    }
    assert summary["tlsecho"]["handshakes"]["server_cpu_per_op"] == {
        "unit": "µs/hs",
        "median": 800,
        "min": 700,
        "max": 900,
    }
    assert "server_cpu_per_op" not in summary["tlsecho"]["memory"]
    assert report.cpu_per_op_ratios(summary) == {PYOPENSSL: {"handshakes": 0.5}}
    text = report.table(
        {
            "servers": {name: {"metrics": metrics} for name, metrics in summary.items()},
            "ratios": report.ratios(summary),
            "server_cpu_per_op_ratios": report.cpu_per_op_ratios(summary),
        }
    )
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith(PER_OP["handshakes"][1]))
    assert row.split()[3:] == [
        "800",
        "(700-900)",
        "1,600",
        "(1,600-1,600)",
        "400",
        "(400-400)",
        "-",
    ]
    ratio = lines[lines.index(row) + 1]
    assert ratio.startswith(CPU_RATIO_ROW)
    assert ratio.split()[2:] == ["0.50x"]
    assert not any("KiB/conn" in line and "server cpu" in line for line in lines)


def test_tlsecho_servers_choose_their_tls_transport() -> None:
    """
    tlsecho-pyopenssl is tlsecho's command with TLSECHO_TLS_TRANSPORT=pyopenssl;
    tlsecho (and --workers 2) pin the lean transport, whatever the bench's
    own environment says.
    """
    servers = {s.name: s for s in ALL_SERVERS}
    names = [s.name for s in ALL_SERVERS]
    assert names.index(PYOPENSSL) == names.index("tlsecho") + 1
    assert "twisted" in names
    assert dict(servers["tlsecho"].env) == {"TLSECHO_TLS_TRANSPORT": "lean"}
    assert dict(servers[WORKERS].env) == {"TLSECHO_TLS_TRANSPORT": "lean"}
    assert dict(servers[PYOPENSSL].env) == {"TLSECHO_TLS_TRANSPORT": "pyopenssl"}
    certs = CertFiles(Path("ca.pem"), Path("chain.pem"), Path("key.pem"))
    assert servers[PYOPENSSL].command(certs, 0) == servers["tlsecho"].command(certs, 0)


@pytest.mark.subprocess
def test_server_env_reaches_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server's env is set in its process, over the bench's environment."""
    monkeypatch.setenv("TLSECHO_TLS_TRANSPORT", "from-the-bench")
    monkeypatch.setenv("BENCH_TEST_KEPT", "kept")
    script = (
        "import os, time\n"
        "print('listening on 127.0.0.1:1',"
        " os.environ['TLSECHO_TLS_TRANSPORT'], os.environ['BENCH_TEST_KEPT'],"
        " flush=True)\n"
        "time.sleep(60)\n"
    )
    server = Server(
        "envtest",
        "prints its environment",
        lambda certs, port: [sys.executable, "-c", script],
        env=(("TLSECHO_TLS_TRANSPORT", "pyopenssl"),),
    )
    certs = CertFiles(tmp_path / "ca.pem", tmp_path / "chain.pem", tmp_path / "key.pem")
    running = server.start(certs, tmp_path)
    try:
        assert "listening on 127.0.0.1:1 pyopenssl kept" in running.output()
    finally:
        running.stop()
