"""
Attacks on the service around the echo (see L{hostile.service}): peers that
stall the shutdown, flood the metrics with SNI names, or hold the metrics
listener's connections; each against the real twistd plugin.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from _processes import identity, metrics_of, start_server
from conftest import TLSFiles
from hostile.service import stalled_mid_handshake, stalled_reader

#: What the processes themselves may take to end once their reactor has
#: stopped (interpreter teardown; twice with workers), on top of the promise:
#: up to a second each on this shared 2-core machine, with nothing to drain.
_PROCESS_SLACK = 3.0


def _wait_active(server: object, count: int, timeout: float = 20.0) -> None:
    """Wait until the server's metrics show C{count} open connections."""
    deadline = time.monotonic() + timeout
    while True:
        active = metrics_of(server).get("tlsecho_connections_active")  # type: ignore[arg-type]
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
