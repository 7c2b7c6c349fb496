"""
Attacks on the service around the echo (see L{hostile.service}): peers that
stall the shutdown, flood the metrics with SNI names, or hold the metrics
listener's connections; each against the real twistd plugin.
"""

from __future__ import annotations

import os
import secrets
import select
import shutil
import signal
import socket
import time

import psutil
import pytest

from tlsecho._app._metrics_site import METRICS_IDLE_TIMEOUT, METRICS_MAX_CONNECTIONS

from _processes import (
    TWISTD_COMMAND,
    ServerProcess,
    identity,
    metrics_of,
    run_client,
    start_server,
)
from conftest import TLSFiles
from hostile.service import (
    idle_connections,
    send_client_hellos,
    stalled_mid_handshake,
    stalled_reader,
)

#: How many different SNI names the flood sends.
FLOOD = 20_000

#: The server's descriptor limit in the metrics listener test (ulimit -n).
DESCRIPTORS = 256
PRLIMIT = shutil.which("prlimit") or "prlimit"

pytestmark = pytest.mark.subprocess

#: What the processes themselves may take to end once their reactor has
#: stopped (interpreter teardown; twice with workers), on top of the promise:
#: up to a second each on a loaded 2-core machine, with nothing to drain.
_PROCESS_SLACK = 3.0


def _random_names(count: int) -> list[str]:
    """C{count} distinct server names, all of the same length."""
    names = {f"x{secrets.token_hex(8)}.example" for _ in range(count)}
    assert len(names) == count
    return sorted(names)


def _wait_active(server: ServerProcess, count: int, timeout: float = 20.0) -> None:
    """Wait until the server's metrics show C{count} open connections."""
    deadline = time.monotonic() + timeout
    while True:
        active = metrics_of(server).get("tlsecho_connections_active")
        if active == count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{active} connections active, expected {count}")
        time.sleep(0.05)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_ends_within_shutdown_timeout_despite_stalled_peers(
    servers: list, tls_files: TLSFiles, workers: str
) -> None:
    """
    SIGTERM exits 0 within --shutdown-timeout plus 1 s, even with a peer that
    never reads nor closes and one stopped mid-handshake.
    """
    timeout = 2.0
    server = start_server(
        servers,
        *identity(tls_files),
        "--shutdown-timeout",
        f"{timeout:g}",
        # Not what ends the half-done handshake: the shutdown must.
        "--handshake-timeout",
        "120",
        "--metrics",
        "tcp:0:interface=127.0.0.1",
        "--workers",
        workers,
    )
    if workers != "1":
        server.wait_for(r"\[worker 2\] tlsecho listening on ")
        server.wait_for(r"\[worker 1\] tlsecho listening on ")
    reader = stalled_reader(server.port, tls_files.ca)
    halfway = stalled_mid_handshake(server.port)
    try:
        _wait_active(server, 2)
        signalled = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)
        status = server.process.wait(60)
        elapsed = time.monotonic() - signalled
    finally:
        reader.close()
        halfway.close()
    assert status == 0, server.output
    assert elapsed < timeout + 1.0 + _PROCESS_SLACK, (elapsed, server.output)
    # It did wait for the drain: the stalled peers were not cut off at once.
    assert elapsed >= timeout, (elapsed, server.output)
    assert "still open after 2s" in server.output


def _series(server: ServerProcess) -> list[str]:
    """The names (with labels) of every sample the server's /metrics serves."""
    return sorted(metrics_of(server))


def test_sni_flood_makes_no_metric_series(servers: list, tls_files: TLSFiles) -> None:
    """
    20,000 ClientHellos naming 20,000 different servers under --sni-strict
    add no metric series and no memory: peer text never becomes a label.
    """
    server = start_server(
        servers,
        *identity(tls_files),
        "--sni-strict",
        "--metrics",
        "tcp:0:interface=127.0.0.1",
    )
    process = psutil.Process(server.process.pid)
    # Warm up (allocator pools, the failure series of each class), then measure.
    assert send_client_hellos(server.port, _random_names(2_000)) == 2_000
    before = _series(server)
    rss_before = process.memory_info().rss
    started = time.monotonic()
    cpu_before = sum(process.cpu_times()[:2])
    assert send_client_hellos(server.port, _random_names(FLOOD)) == FLOOD
    flood_seconds = time.monotonic() - started
    after = _series(server)
    rss_after = process.memory_info().rss
    values = metrics_of(server)
    cpu_seconds = sum(process.cpu_times()[:2]) - cpu_before
    figures = f"{FLOOD} names in {flood_seconds:.1f}s, server CPU {cpu_seconds:.1f}s"
    assert after == before, figures
    assert rss_after - rss_before < 1024 * 1024, (rss_before, rss_after, figures)
    refused = [k for k in values if k.startswith("tlsecho_failures_total{")]
    assert sum(values[k] for k in refused) == 2_000 + FLOOD
    assert values['tlsecho_failures_total{reason="unrecognized name"}'] == 2_000 + FLOOD
    # The names go to the log instead.
    server.wait_for("unrecognized name 'x[0-9a-f]{16}\\.example' \\(--sni-strict\\)")


def _closed_by_peer(connections: list[socket.socket], wanted: int, limit: float) -> int:
    """
    Wait (at most C{limit} seconds) until C{wanted} of C{connections} have been
    closed by the server; return how many were.
    """
    closed: set[socket.socket] = set()
    deadline = time.monotonic() + limit
    while len(closed) < wanted and time.monotonic() < deadline:
        ready, _, _ = select.select(
            [c for c in connections if c not in closed], [], [], 0.2
        )
        for connection in ready:
            try:
                data = connection.recv(1)
            except ConnectionResetError:
                data = b""
            if data:
                raise AssertionError(f"the metrics listener sent {data!r} unasked")
            closed.add(connection)
    return len(closed)


def test_idle_metrics_connections_are_bounded(servers: list, tls_files: TLSFiles) -> None:
    """
    Idle connections to --metrics beyond its limit are closed at once, the
    rest after its idle timeout, and TLS clients are served meanwhile, even
    when the idle ones alone would use up the server's descriptors.
    """
    server = start_server(
        servers,
        *identity(tls_files),
        "--metrics",
        "tcp:0:interface=127.0.0.1",
        command=[PRLIMIT, f"--nofile={DESCRIPTORS}", *TWISTD_COMMAND],
    )
    port = int(server.wait_for(r"tlsecho metrics on http://127\.0\.0\.1:(\d+)/").group(1))
    extra = DESCRIPTORS + 44 - METRICS_MAX_CONNECTIONS
    idle = idle_connections(port, METRICS_MAX_CONNECTIONS + extra)
    try:
        # Well before the idle timeout: only the extra ones are closed.
        assert _closed_by_peer(idle, extra, METRICS_IDLE_TIMEOUT / 2) == extra
        assert _closed_by_peer(idle, extra + 1, 1.0) == extra
        result = run_client(server.address, "--ca", str(tls_files.ca), payload=b"served\n")
        assert (result.returncode, result.stdout) == (0, b"served\n"), result.stderr
        # The others go after the idle timeout (with slack for a loaded machine).
        assert _closed_by_peer(idle, len(idle), METRICS_IDLE_TIMEOUT + 15) == len(idle)
    finally:
        for connection in idle:
            connection.close()
    assert metrics_of(server)["tlsecho_connections_total"] == 1
    assert "not on loopback" not in server.output
    # The refusals are said, once, not once per connection.
    refusals = [line for line in server.output.splitlines() if "connections open;" in line]
    assert len(refusals) == 1, refusals
    assert f"--metrics: {METRICS_MAX_CONNECTIONS} connections open" in refusals[0]


@pytest.mark.parametrize(
    ("description", "warned"),
    [
        ("tcp:0", True),
        ("tcp6:0", True),
        ("tcp:0:interface=0.0.0.0", True),
        ("tcp:0:interface=127.0.0.1", False),
        ("tcp6:0:interface=\\:\\:1", False),
    ],
)
def test_metrics_beyond_loopback_warns(
    servers: list, tls_files: TLSFiles, description: str, warned: bool
) -> None:
    """--metrics bound beyond loopback is said at start, in one line."""
    server = start_server(servers, *identity(tls_files), "--metrics", description)
    server.wait_for("tlsecho metrics on http://")
    lines = [line for line in server.output.splitlines() if "not on loopback" in line]
    if warned:
        (line,) = lines
        assert f"--metrics {description}" in line
        assert "interface=127.0.0.1" in line
    else:
        assert lines == []
