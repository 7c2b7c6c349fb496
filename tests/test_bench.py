"""
The benchmark still runs: C{python -m bench --quick} in a subprocess, from the
repository root, must exit 0 and write a JSON file with every server and every
metric in it, the server's CPU per operation and the warm-up before each
included.  Nothing about speed is asserted.  The report's per-operation rows,
its verdicts on the targets, the workers' log lines and the servers'
environments are also checked without running the bench.
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
from bench.procs import ServerProcess  # noqa: E402
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
    # Every server was warm for every metric: connections that moved data and
    # closed, and each worker of tlsecho --workers 2 served one of them.
    for name in expected | {WORKERS}:
        for metric, summary in results["servers"][name]["metrics"].items():
            warmup = summary["warmup"]
            assert warmup["rounds"] == warmup["of_rounds"] == 1, (name, metric)
            assert warmup["connections"] >= 1, (name, metric)
            assert warmup["bytes"] >= 1, (name, metric)
            if metric == "bulk":
                assert warmup["bytes"] >= 1 << 20, name
            sample = summary["samples"][0]["warmup"]
            if name == WORKERS:
                assert set(sample["workers_echoed"]) == {"1", "2"}, metric
                assert all(sample["workers_echoed"].values()), metric
            else:
                assert "workers_echoed" not in sample, (name, metric)
    assert {t["metric"] for t in results["targets"]} == METRICS
    assert all(t["verdict"] in ("met", "missed", "unknown") for t in results["targets"])
    assert "targets (issue 14):" in result.stdout
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


def _summary(
    value: float,
    server_cpu: float | None = None,
    client_cpu: float | None = None,
    per_op: float | None = None,
    unit: str | None = None,
) -> dict[str, object]:
    return report.summarize(
        [
            Sample(
                value=value,
                server_cpu=server_cpu,
                client_cpu=client_cpu,
                server_cpu_per_op=per_op,
            )
        ],
        unit,
    )


def test_report_targets() -> None:
    """
    Each target of issue 14 gets a verdict from made-up figures, with the
    figures it rests on, in the JSON and in the printed report: ping-pong is
    met by throughput, or by CPU per round trip where the load clients
    saturate (and not where they do not); handshakes need both the rate and
    the CPU per handshake; a target whose figures are missing is unknown.
    """
    assert report.TARGETS == {
        "pingpong": (
            ">= 1.0x asyncio and >= 1.0x uvloop in round trips/s, or server CPU per "
            "round trip <= uvloop's where the load clients saturate"
        ),
        "handshakes": (
            ">= 1.0x uvloop in handshakes/s, and server CPU per handshake <= uvloop's"
        ),
        "bulk": ">= 1.0x asyncio in MB/s",
        "memory": "<= 32 KiB per idle connection",
        "backpressure": "< 16 MiB growth under a client that never reads",
    }
    rt, hs = "µs/rt", "µs/hs"
    summary = {
        "tlsecho": {
            "memory": _summary(26.0),
            # Behind uvloop in round trips, cheaper per round trip, and the
            # machine is full: 1.00 + 0.95 = 1.95 of 2 cores.
            "pingpong": _summary(60_000, 1.00, 0.95, 12.0, rt),
            # Ahead of uvloop in handshakes, dearer per handshake.
            "handshakes": _summary(1300, 0.80, 0.90, 700.0, hs),
            "bulk": _summary(600),
            "backpressure": _summary(20.0),
        },
        "asyncio": {
            "pingpong": _summary(55_000, 1.00, 0.90, 17.0, rt),
            "handshakes": _summary(1100, 0.70, 0.80, 650.0, hs),
            "bulk": _summary(600),
        },
        "uvloop": {
            "pingpong": _summary(80_000, 0.75, 0.80, 13.0, rt),
            "handshakes": _summary(1250, 0.68, 0.95, 600.0, hs),
            "bulk": _summary(500),
        },
    }
    checks = {c["metric"]: c for c in report.targets(summary, cores=2)}
    assert [c["metric"] for c in report.targets(summary, cores=2)] == [
        "memory",
        "handshakes",
        "pingpong",
        "bulk",
        "backpressure",
    ]
    assert {name: c["verdict"] for name, c in checks.items()} == {
        "memory": "met",
        "handshakes": "missed",
        "pingpong": "met",
        "bulk": "met",
        "backpressure": "missed",
    }
    pingpong = checks["pingpong"]
    assert pingpong["met"] is True
    assert pingpong["figures"]["saturated"] is True
    assert pingpong["figures"]["uvloop"] == pytest.approx(0.75)
    assert pingpong["figures"]["server_cpu_per_op_uvloop"] == pytest.approx(12 / 13)
    assert pingpong["words"] == (
        "tlsecho 1.09x asyncio, 0.75x uvloop in rt/s; server 12.0 vs uvloop 13.0 µs/rt "
        "(0.92x); load clients saturate: yes (server 1.00 + clients 0.95 = 1.95 of 2 "
        "cores; >= 1.90: the machine is full)"
    )
    assert checks["handshakes"]["words"] == (
        "tlsecho 1.04x uvloop in hs/s (1,300 vs 1,250); server 700 vs uvloop 600 µs/hs "
        "(1.17x)"
    )
    assert checks["bulk"]["words"] == "tlsecho 1.00x asyncio in MB/s (600 vs 600)"
    assert checks["memory"]["words"] == "tlsecho 26.0 KiB/conn"
    assert checks["backpressure"]["words"] == "tlsecho 20.0 MiB"

    # Not saturated (the server pinned at a core, the clients with a core
    # spare): cheaper per round trip is not enough.
    summary["tlsecho"]["pingpong"] = _summary(60_000, 1.00, 0.50, 12.0, rt)
    pingpong = next(c for c in report.targets(summary, 2) if c["metric"] == "pingpong")
    assert pingpong["verdict"] == "missed"
    assert pingpong["words"].endswith(
        "load clients saturate: no (server 1.00 + clients 0.50 = 1.50 of 2 cores)"
    )
    # The server below a core waited for the clients: they saturate.
    summary["tlsecho"]["pingpong"] = _summary(60_000, 0.80, 0.50, 12.0, rt)
    saturated, words = report.saturated(summary["tlsecho"]["pingpong"], 2)
    assert saturated is True
    assert words.endswith("server < 0.90 core: it waited for the clients)")
    # Ahead of both in round trips: met whatever the CPU.
    summary["tlsecho"]["pingpong"] = _summary(90_000, 1.00, 0.50, 20.0, rt)
    pingpong = next(c for c in report.targets(summary, 2) if c["metric"] == "pingpong")
    assert pingpong["verdict"] == "met"

    # Without uvloop (or its CPU figure) a target naming it cannot be judged.
    del summary["uvloop"]
    checks = {c["metric"]: c for c in report.targets(summary, 2)}
    assert checks["handshakes"]["verdict"] == "unknown"
    assert checks["handshakes"]["met"] is None
    assert checks["pingpong"]["verdict"] == "unknown"
    assert checks["bulk"]["verdict"] == "met"

    lines = report.table(
        {
            "servers": {name: {"metrics": metrics} for name, metrics in summary.items()},
            "ratios": report.ratios(summary),
            "targets": report.targets(summary, 2),
        }
    ).splitlines()
    start = lines.index("targets (issue 14):")
    assert lines[start + 1].split()[:2] == ["MET", "memory"]
    assert lines[start + 2].split() == ["tlsecho", "26.0", "KiB/conn"]
    assert lines[start + 3].split()[:3] == ["UNKNOWN", "handshakes", ">="]
    assert lines[start + 3].endswith(report.TARGETS["handshakes"])


def test_warmup_is_summarized() -> None:
    """The summary says how many rounds were warmed, and the least they did."""
    samples = [
        Sample(value=1.0, warmup={"connections": 8, "bytes": 6400}),
        Sample(value=2.0, warmup={"connections": 16, "bytes": 512}),
    ]
    assert report.summarize(samples)["warmup"] == {
        "rounds": 2,
        "of_rounds": 2,
        "connections": 8,
        "bytes": 512,
    }
    assert report.summarize([Sample(value=1.0)])["warmup"] == {
        "rounds": 0,
        "of_rounds": 1,
        "connections": None,
        "bytes": None,
    }


def test_workers_echoed_from_the_log(tmp_path: Path) -> None:
    """
    For tlsecho --workers N, which workers listen and what each echoed come
    from the worker-marked lines of the main process's log, from a point on.
    """
    log = tmp_path / "server.log"
    log.write_text(
        "T [tlsecho._app._workers#info] tlsecho listening on 127.0.0.1:5 (tcp:0) "
        "with 2 workers\n"
        "T [worker 2] tlsecho listening on 127.0.0.1:5 (tcp:0:interface=127.0.0.1)\n"
        "T [worker 1] tlsecho listening on 127.0.0.1:5 (tcp:0:interface=127.0.0.1)\n"
        "T [worker 1] 127.0.0.1:4000: connection lost after 64 bytes echoed (of 64 "
        "received) in 0.1s (TLSv1.3, TLS_AES_256_GCM_SHA384, group X25519, SNI "
        "localhost, ALPN None, client None)\n"
    )
    since = len(log.read_text())
    with log.open("a") as more:
        more.write(
            "T [worker 2] 127.0.0.1:4001: closed after 100 bytes echoed (of 100 ...)\n"
            "T [worker 2] 127.0.0.1:4002: closed after 28 bytes echoed (of 28 ...)\n"
            "T [worker 1] 127.0.0.1:4003: TLS handshake failed: reset\n"
        )
    server = ServerProcess.__new__(ServerProcess)
    server.log, server.workers = log, 2
    assert server.workers_echoed() == {1: 64, 2: 128}
    assert server.workers_echoed(since) == {2: 128}
