"""
``--workers N``: the main process binds once, N workers adopt the sockets and
serve; a dead worker is replaced; SIGHUP and SIGTERM reach every worker; the
workers' log events come out of the main process.  Real ``twistd`` processes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import psutil
import pytest
from twisted.python import usage

from tlsecho.tap import Options

from _processes import (
    TWIST_COMMAND,
    TWISTD_COMMAND,
    ServerProcess,
    identity,
    metrics_of,
    run_client,
    start_json_server,
    start_server,
)
from conftest import TLSFiles


def _workers(
    servers: list[ServerProcess], tls_files: TLSFiles, *extra: str
) -> ServerProcess:
    """Start ``--workers 2`` and wait until both workers listen."""
    server = start_server(servers, "--workers", "2", *identity(tls_files), *extra)
    server.wait_for(r"\[worker 1\] tlsecho listening on")
    server.wait_for(r"\[worker 2\] tlsecho listening on")
    return server


def _worker_pids(server: ServerProcess) -> dict[int, int]:
    """The PID of each worker number, from the main process's latest log lines."""
    pids: dict[int, int] = {}
    for line in server.lines:
        match = re.search(r"started worker (\d+) \(pid (\d+)\)", line)
        if match:
            pids[int(match.group(1))] = int(match.group(2))
    return pids


def _open(port: int, tls_files: TLSFiles) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(tls_files.ca))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def _echoes(connection: ssl.SSLSocket, payload: bytes) -> bool:
    """Whether ``payload`` comes back whole on ``connection``."""
    try:
        connection.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = connection.recv(65536)
            if not chunk:
                return False
            received += chunk
        return received == payload
    except OSError:
        return False


def _served_by(pid: int, connections: list[ssl.SSLSocket]) -> list[ssl.SSLSocket]:
    """Those of ``connections`` whose server end is in process ``pid``."""
    ports = {
        c.raddr.port
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.status == psutil.CONN_ESTABLISHED
    }
    return [c for c in connections if c.getsockname()[1] in ports]


def _spread(
    server: ServerProcess, tls_files: TLSFiles, pids: dict[int, int], minimum: int
) -> tuple[list[ssl.SSLSocket], dict[int, list[ssl.SSLSocket]]]:
    """
    Open echoing connections (at least ``minimum``) until every worker holds
    some; return them all, and those of each worker number.
    """
    connections: list[ssl.SSLSocket] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        connections.append(_open(server.port, tls_files))
        assert _echoes(connections[-1], b"spread\n")
        held = {n: _served_by(pid, connections) for n, pid in pids.items()}
        if len(connections) >= minimum and all(held.values()):
            return connections, held
    raise AssertionError("the kernel gave every connection to one worker")


def test_workers_serve_the_same_port(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """Two workers adopt the one socket the main process bound; clients get echo."""
    server = _workers(servers, tls_files)
    pids = _worker_pids(server)
    assert sorted(pids) == [1, 2]
    main = psutil.Process(server.process.pid)
    assert {child.pid for child in main.children()} == set(pids.values())
    for _ in range(5):
        result = run_client(server.address, "--ca", str(tls_files.ca), payload=b"w\n")
        assert (result.returncode, result.stdout) == (0, b"w\n"), result.stderr
    # Each worker's connection log comes out of the main process, marked.
    # Formatted as in one process: the duration with three decimals.
    server.wait_for(
        r"\[worker \d\] 127\.0\.0\.1:\d+: closed after 2 bytes echoed in \d+\.\d{3}s "
    )


def test_killed_worker_is_replaced_and_the_others_go_on(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """
    SIGKILL one worker: its connections end, every other connection goes on
    echoing, new connections keep succeeding while it is replaced.
    """
    server = _workers(servers, tls_files)
    pids = _worker_pids(server)
    # Both workers hold connections (the kernel decides which gets which).
    connections, held = _spread(server, tls_files, pids, 8)
    victim, survivor = 1, 2
    failures: list[BaseException] = []
    stop = threading.Event()

    def keep_connecting() -> None:
        while not stop.is_set():
            try:
                with _open(server.port, tls_files) as connection:
                    if not _echoes(connection, b"during\n"):
                        failures.append(AssertionError("no echo"))
            except OSError as e:
                failures.append(e)

    # New connections start only after the kill: one in flight on the victim
    # at that moment would be lost with it, which is not what is tested here.
    os.kill(pids[victim], signal.SIGKILL)
    load = threading.Thread(target=keep_connecting)
    load.start()
    try:
        server.wait_for(rf"worker {victim} \(pid {pids[victim]}\) was killed by signal 9")
        server.wait_for(rf"started worker {victim} \(pid (?!{pids[victim]}\))\d+\)")
        time.sleep(1.0)
    finally:
        stop.set()
        load.join(30)
    assert failures == []
    for connection in held[survivor]:
        assert _echoes(connection, b"after\n")
    for connection in held[victim]:
        assert not _echoes(connection, b"after\n")
    replacement = _worker_pids(server)[victim]
    assert replacement != pids[victim]
    assert psutil.Process(replacement).ppid() == server.process.pid
    for connection in connections:
        connection.close()


def test_sighup_reloads_every_worker(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """SIGHUP to the main process: each worker reloads."""
    server = _workers(servers, tls_files)
    os.kill(server.process.pid, signal.SIGHUP)
    server.wait_for(r"\[worker 1\] reloaded the TLS configuration")
    server.wait_for(r"\[worker 2\] reloaded the TLS configuration")


def test_sigterm_drains_every_worker_and_exits_0(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """An open connection keeps echoing through the drain; then all exit, status 0."""
    server = _workers(servers, tls_files, "--shutdown-timeout", "30")
    pids = _worker_pids(server)
    connection = _open(server.port, tls_files)
    assert _echoes(connection, b"first\n")
    os.kill(server.process.pid, signal.SIGTERM)
    server.wait_for(r"\[worker \d\] stopped listening; waiting up to 30s for 1 connection")
    assert _echoes(connection, b"still draining\n")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    connection.close()
    assert server.process.wait(30) == 0
    for pid in pids.values():
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def test_workers_stop_when_the_main_process_dies(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """SIGKILL the main process: the workers notice and exit by themselves."""
    server = _workers(servers, tls_files)
    workers = [psutil.Process(pid) for pid in _worker_pids(server).values()]
    os.kill(server.process.pid, signal.SIGKILL)
    _, alive = psutil.wait_procs(workers, timeout=20)
    for process in alive:  # ours, started by this test: do not leave them
        process.kill()
    assert alive == []


def test_proxy_protocol_under_workers(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """Workers adopt a haproxy: listener too, PROXY header first, then TLS."""
    from test_proxy_protocol import echo_through_proxy, v2_header

    server = start_server(
        servers,
        "--workers",
        "2",
        *identity(tls_files),
        listen="haproxy:tcp:0:interface=127.0.0.1",
    )
    header = v2_header("192.0.2.9", 7000, server.port)
    assert echo_through_proxy(server.port, header, tls_files) == b"proxied\n"
    server.wait_for(r"\[worker \d\] 192\.0\.2\.9:7000: \w[\w ]* after 8 bytes echoed")


def test_json_logs_carry_the_worker(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """With --log-format json, worker events are JSON lines with a worker field."""
    server, port = start_json_server(servers, "--workers", "2", *identity(tls_files))
    server.wait_for(r'"worker":2\b')
    result = run_client(f"127.0.0.1:{port}", "--ca", str(tls_files.ca))
    assert result.returncode == 0, result.stderr
    line = server.wait_for(r'"bytes_in":6,').string
    event = json.loads(line)
    assert event["worker"] in (1, 2)
    assert event["peer"].startswith("127.0.0.1:")
    assert event["tls_version"] == "TLSv1.3"


def test_auto_is_one_worker_per_cpu(tls_files: TLSFiles) -> None:
    """--workers auto: as many workers as the machine has CPUs."""
    options = Options()
    options.parseOptions(["--workers", "auto", *identity(tls_files)])
    assert options["workers"] == (os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--workers", "0"], "--workers: must be at least 1, not 0"),
        (["--workers", "two"], "--workers: not a whole number: 'two'"),
    ],
)
def test_bad_worker_settings(arguments: list[str], message: str) -> None:
    """Each is a one-line configuration error."""
    with pytest.raises(usage.UsageError) as raised:
        Options().parseOptions(arguments)
    assert str(raised.value).startswith(message)


def test_metrics_add_up_every_worker(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """The main process serves --metrics: every worker's connections, added up."""
    server = _workers(servers, tls_files, "--metrics", "tcp:0:interface=127.0.0.1")
    pids = _worker_pids(server)
    held, by_worker = _spread(server, tls_files, pids, 6)
    on_first = len(by_worker[1])
    values = metrics_of(server)
    assert values["tlsecho_connections_total"] == len(held)
    assert values["tlsecho_connections_active"] == len(held)
    # A worker that dies takes its open connections out of the live gauge; its
    # counts stay in the totals.
    os.kill(pids[1], signal.SIGKILL)
    server.wait_for(rf"started worker 1 \(pid (?!{pids[1]}\))\d+\)")
    deadline = time.monotonic() + 10
    while metrics_of(server)["tlsecho_connections_active"] != len(held) - on_first:
        assert time.monotonic() < deadline, metrics_of(server)
        time.sleep(0.1)
    for connection in held:
        connection.close()
    deadline = time.monotonic() + 10
    while (values := metrics_of(server))["tlsecho_connections_active"] != 0:
        assert time.monotonic() < deadline, values
        time.sleep(0.1)
    assert values["tlsecho_connections_total"] == len(held)
    assert (
        values[
            'tlsecho_handshakes_total{cipher="TLS_AES_128_GCM_SHA256",group="X25519",outcome="ok",version="TLSv1.3"}'
        ]
        == len(held) - on_first
    )


@pytest.mark.parametrize(
    "command", [TWISTD_COMMAND, TWIST_COMMAND], ids=["twistd", "twist"]
)
@pytest.mark.parametrize("option", ["--listen", "--metrics"])
def test_port_in_use_fails_startup_with_one_line(
    tls_files: TLSFiles, command: list[str], option: str
) -> None:
    """With workers too, a port already bound ends start-up: one line, no traceback."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        taken_description = f"tcp:{port}:interface=127.0.0.1"
        listen = taken_description if option == "--listen" else "tcp:0:interface=127.0.0.1"
        extra = ["--metrics", taken_description] if option == "--metrics" else []
        result = subprocess.run(
            [
                *command,
                "tlsecho",
                "--workers",
                "2",
                *identity(tls_files),
                "--listen",
                listen,
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"tlsecho: {option}: ")
    assert f"{port}:interface=127.0.0.1: cannot listen: " in line
    assert "Traceback" not in output
    assert "started worker" not in output


def test_workers_under_twist(servers: list[ServerProcess], tls_files: TLSFiles) -> None:
    """``twist tlsecho --workers 2`` (which binds late) serves echo from its workers."""
    server = start_server(
        servers, "--workers", "2", *identity(tls_files), command=TWIST_COMMAND
    )
    server.wait_for(r"\[worker 2\] tlsecho listening on")
    result = run_client(server.address, "--ca", str(tls_files.ca), payload=b"twist\n")
    assert (result.returncode, result.stdout) == (0, b"twist\n"), result.stderr
    assert server.stop() == 0
