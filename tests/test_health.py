"""
Health checks and systemd notify: C{/healthz} and C{/readyz} on the metrics
listener, curled across start, reload and SIGTERM; the sd_notify datagrams
(READY, RELOADING, STOPPING, WATCHDOG) received on a Unix datagram socket
standing in for systemd; and the real systemd tools where the machine has them.
"""

from __future__ import annotations

import array
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from tlsecho._app._health import Lifecycle
from tlsecho._app._metrics_site import _MetricsResource
from tlsecho._app._notify import Notifier, watchdog_interval
from tlsecho._app._worker_process import handover

from _processes import TWISTD, ServerProcess, identity, run_client
from conftest import TLSFiles

LOOPBACK = "tcp:0:interface=127.0.0.1"


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("TLSECHO_REQUIRE_TOOLS"):
            pytest.fail(f"{tool} is not installed, and .ci/run requires it")
        pytest.skip(f"{tool} is not installed")
    return path


def _curl(url: str) -> tuple[int, str]:
    """GET C{url} with curl: (status, body)."""
    result = subprocess.run(
        [_need("curl"), "-sS", "--max-time", "10", "-w", "\n%{http_code}", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


class SystemdStandIn:
    """
    A Unix datagram socket where notifications arrive as systemd gets them,
    each with the sender's PID (SO_PASSCRED), as NotifyAccess=main checks it.
    """

    def __init__(self, path: str):
        self.address = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.socket.bind(path.replace("@", "\0", 1) if path.startswith("@") else path)
        self.socket.settimeout(0.2)
        self.received: list[tuple[int, list[str]]] = []
        self._changed = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        size = struct.calcsize("3i")
        while not self._done:
            try:
                data, ancillary, _, _ = self.socket.recvmsg(4096, socket.CMSG_SPACE(size))
            except TimeoutError:
                continue
            except OSError:
                return
            pid = -1
            for level, kind, value in ancillary:
                if (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS):
                    pid = array.array("i", value[:size])[0]
            with self._changed:
                self.received.append((pid, data.decode().split("\n")))
                self._changed.notify_all()

    def wait_for(self, field: str, count: int = 1, timeout: float = 20.0) -> None:
        """Wait until C{count} datagrams carrying C{field} have come."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(field in fields for _, fields in self.received) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"not {count}x {field}: {self.received}"
                self._changed.wait(remaining)

    def close(self) -> None:
        self._done = True
        self._thread.join(5)
        self.socket.close()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[SystemdStandIn]:
    stand_in = SystemdStandIn(str(tmp_path / "notify"))
    yield stand_in
    stand_in.close()


def _open(port: int, tls_files: TLSFiles) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(tls_files.ca))
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    connection = context.wrap_socket(raw, server_hostname="localhost")
    connection.sendall(b"x")
    assert connection.recv(1) == b"x"
    return connection


@pytest.mark.parametrize("workers", ["1", "2"])
def test_health_and_notify_across_start_reload_and_sigterm(
    servers: list, tls_files: TLSFiles, systemd: SystemdStandIn, workers: str
) -> None:
    """
    /healthz says ok while the process serves; /readyz 200 once listening,
    through a reload, and 503 while draining; systemd hears READY=1,
    RELOADING=1 with the reload's CLOCK_MONOTONIC time, READY=1, STOPPING=1,
    and WATCHDOG=1 every WATCHDOG_USEC/2, all from the main process.
    """
    server = ServerProcess(
        [
            "--listen",
            LOOPBACK,
            *identity(tls_files),
            "--metrics",
            LOOPBACK,
            "--workers",
            workers,
            "--shutdown-timeout",
            "30",
        ],
        env={"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "200000"},
    )
    servers.append(server)
    port = server.wait_listening()[0][1]
    base = server.wait_for(r"tlsecho metrics on (http://\S+)/metrics").group(1)
    systemd.wait_for("READY=1")
    assert _curl(base + "/healthz") == (200, "ok\n")
    if workers == "2":
        # Ready once both workers run (they queue connections until then).
        server.wait_for(r"\[worker 2\] tlsecho listening on")
    assert _curl(base + "/readyz") == (200, "ready\n")
    # Keep-alives go on, every 100 ms here: wait for a few.
    systemd.wait_for("WATCHDOG=1", count=3)

    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    os.kill(server.process.pid, signal.SIGHUP)
    systemd.wait_for("READY=1", count=2)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert _curl(base + "/readyz") == (200, "ready\n")
    assert _curl(base + "/healthz") == (200, "ok\n")

    # An open connection keeps the drain going (up to the 30 s timeout).
    connection = _open(port, tls_files)
    try:
        os.kill(server.process.pid, signal.SIGTERM)
        systemd.wait_for("STOPPING=1")
        assert _curl(base + "/readyz") == (503, "not ready: draining\n")
        assert _curl(base + "/healthz") == (200, "ok\n")
    finally:
        connection.close()
    assert server.process.wait(30) == 0, server.output

    with systemd._changed:
        received = list(systemd.received)
    assert {pid for pid, _ in received} == {server.process.pid}
    states = [fields for _, fields in received if fields != ["WATCHDOG=1"]]
    assert [fields[0] for fields in states] == [
        "READY=1",
        "RELOADING=1",
        "READY=1",
        "STOPPING=1",
    ], received
    reloading = dict(field.split("=", 1) for field in states[1])
    assert before <= int(reloading["MONOTONIC_USEC"]) <= after
    assert states[0][1].startswith("STATUS=serving on 1 listener(s)")


def test_readyz_is_503_before_listening_and_while_draining() -> None:
    """The resource follows the lifecycle: starting, ready, draining."""
    lifecycle = Lifecycle(Clock())
    resource = _MetricsResource(CollectorRegistry(), lifecycle.readiness)

    def get(path: bytes) -> tuple[int, bytes]:
        request = DummyRequest([path.lstrip(b"/")])
        request.path = path  # type: ignore[attr-defined]
        body = resource.render_GET(request)
        return request.responseCode or 200, body

    assert get(b"/readyz") == (503, b"not ready: starting\n")
    assert get(b"/healthz") == (200, b"ok\n")
    lifecycle.listening("serving")
    assert get(b"/readyz") == (200, b"ready\n")
    lifecycle.conditions.append(lambda: "1 of 2 workers running")
    assert get(b"/readyz") == (503, b"not ready: 1 of 2 workers running\n")
    lifecycle.conditions.clear()
    lifecycle.stopping()
    assert get(b"/readyz") == (503, b"not ready: draining\n")
    assert get(b"/healthz") == (200, b"ok\n")


def test_notify_abstract_socket_matches_systemd_notify() -> None:
    """
    An '@' address is an abstract socket; what Notifier sends arrives as what
    systemd's own systemd-notify sends.
    """
    name = f"@tlsecho-test-{os.getpid()}-{time.monotonic_ns()}"
    stand_in = SystemdStandIn(name)
    try:
        assert Notifier(name).send("READY=1", "STATUS=serving")
        stand_in.wait_for("READY=1")
        tool = _need("systemd-notify")
        result = subprocess.run(
            [tool, "--ready", "--status=serving"],
            env={**os.environ, "NOTIFY_SOCKET": name},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        stand_in.wait_for("READY=1", count=2)
        # systemd-notify sends as its parent (us), then a BARRIER=1 of its own.
        ours, theirs = (sorted(fields) for _, fields in stand_in.received[:2])
        assert ours == theirs == ["READY=1", "STATUS=serving"]
        assert {pid for pid, _ in stand_in.received[:2]} == {os.getpid()}
    finally:
        stand_in.close()


def test_notify_never_raises_and_says_so_once(tmp_path: Path) -> None:
    """A socket that is not there: send returns False, logs one line, raises nothing."""
    from twisted.logger import globalLogPublisher

    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        notifier = Notifier(str(tmp_path / "absent"))
        assert notifier.send("READY=1") is False
        assert notifier.send("STOPPING=1") is False
    finally:
        globalLogPublisher.removeObserver(events.append)
    said = [e for e in events if "cannot notify systemd" in e.get("log_format", "")]
    assert len(said) == 1
    assert Notifier(None).send("READY=1") is False
    assert Notifier.from_environment({}).address is None


def test_watchdog_interval_follows_watchdog_usec_and_pid() -> None:
    """Half of WATCHDOG_USEC, for this process only; none when unset or bad."""
    usec = {"WATCHDOG_USEC": "200000"}
    assert watchdog_interval(usec, pid=7) == 0.1
    assert watchdog_interval({**usec, "WATCHDOG_PID": "7"}, pid=7) == 0.1
    assert watchdog_interval({**usec, "WATCHDOG_PID": "8"}, pid=7) is None
    assert watchdog_interval({}, pid=7) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, pid=7) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, pid=7) is None


def test_workers_do_not_inherit_systemd_notify(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the main process notifies: a worker's environment names no socket."""
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS"):
        monkeypatch.setenv(name, "x")
    environment, _ = handover(1, [])
    assert not {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} & set(environment)


def test_watchdog_keeps_time_on_the_reactor(tmp_path: Path) -> None:
    """WATCHDOG=1 at once, then every half of WATCHDOG_USEC, until stopped."""
    stand_in = SystemdStandIn(str(tmp_path / "notify"))
    clock = Clock()
    try:
        lifecycle = Lifecycle(clock, Notifier(stand_in.address))
        lifecycle.start_watchdog({"WATCHDOG_USEC": "2000000"})
        stand_in.wait_for("WATCHDOG=1", count=1)
        clock.advance(0.9)
        clock.advance(0.1)
        stand_in.wait_for("WATCHDOG=1", count=2)
        lifecycle.stopped()
        assert clock.getDelayedCalls() == []
    finally:
        stand_in.close()


def test_systemd_socket_activate_starts_the_plugin(
    servers: list, tls_files: TLSFiles, systemd: SystemdStandIn
) -> None:
    """
    systemd-socket-activate binds the port, starts twistd tlsecho on the first
    connection with the socket as descriptor 3, and that connection is echoed;
    the server tells the notify socket it is ready.
    """
    tool = _need("systemd-socket-activate")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = ServerProcess(
        [
            "-l",
            f"127.0.0.1:{port}",
            # Twisted finds systemd's sockets by name (LISTEN_FDNAMES), which
            # systemd always sets and this tool only when asked.
            "--fdname=tlsecho.socket",
            "-E",
            f"NOTIFY_SOCKET={systemd.address}",
            "-E",
            "PYTHONPATH",
            TWISTD,
            "-n",
            "--pidfile=",
            "tlsecho",
            "--listen",
            "systemd:domain=INET:index=0",
            *identity(tls_files),
        ],
        command=[tool],
        plugin=False,
    )
    servers.append(server)
    server.wait_for(rf"Listening on 127\.0\.0\.1:{port}")
    result = run_client(
        f"127.0.0.1:{port}", "--ca", str(tls_files.ca), payload=b"activated\n"
    )
    assert (result.returncode, result.stdout) == (0, b"activated\n"), server.output
    systemd.wait_for("READY=1")
    assert {pid for pid, _ in systemd.received} == {server.process.pid}
