"""
The real HAProxy, with etc/haproxy/tlsecho.cfg (ports replaced), in front of
two real tlsecho instances on loopback: echo passes through it, the instances
log the client's own address (PROXY v2), TLS sessions resume on either
instance with the shared ticket key file, a killed instance is routed around,
and HAProxy's health checks are no noise.  ``.ci/run`` installs HAProxy.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest

from _processes import ServerProcess, identity, start_server
from _sessions import echo_session
from conftest import TLSFiles

CONFIG = Path(__file__).resolve().parent.parent / "etc" / "haproxy" / "tlsecho.cfg"
HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")

if HAPROXY is None:
    if os.environ.get("TLSECHO_REQUIRE_TOOLS"):
        raise RuntimeError("haproxy is not installed, and .ci/run requires it")
    pytest.skip(
        "haproxy is not installed (apt-get install haproxy; .ci/run does)",
        allow_module_level=True,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(directory: Path, front: int, first: int, second: int) -> Path:
    """etc/haproxy/tlsecho.cfg with the test's ports in place of the examples."""
    text = CONFIG.read_text()
    for example, port in (
        ("bind :8443", f"bind 127.0.0.1:{front}"),
        ("127.0.0.1:8444", f"127.0.0.1:{first}"),
        ("127.0.0.1:8445", f"127.0.0.1:{second}"),
    ):
        assert text.count(example) == 1, example
        text = text.replace(example, port)
    path = directory / "haproxy.cfg"
    path.write_text(text)
    return path


def _served_by(instances: list[ServerProcess], client_port: int) -> int:
    """Which instance logged the connection from the client's own port."""
    pattern = rf"127\.0\.0\.1:{client_port}: \w[\w ]* after 8 bytes echoed"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [i for i, s in enumerate(instances) if re.search(pattern, s.output)]
        if found:
            assert len(found) == 1
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no instance logged the client port {client_port}")


def test_haproxy_in_front_of_two_instances(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path
) -> None:
    """Echo, real client address, resumption across instances, failover, quiet checks."""
    key = tmp_path / "ticket.key"
    key.write_bytes(os.urandom(80))
    key.chmod(0o600)
    instances = [
        start_server(
            servers,
            *identity(tls_files),
            "--ticket-key-file",
            str(key),
            listen="haproxy:tcp:0:interface=127.0.0.1",
        )
        for _ in range(2)
    ]
    front = _free_port()
    config = _config(tmp_path, front, instances[0].port, instances[1].port)
    haproxy = ServerProcess(
        ["-db", "-f", str(config)], command=[str(HAPROXY)], plugin=False
    )
    servers.append(haproxy)
    # Ready once an echo passes.  (A bare connect-and-close would pass through
    # HAProxy too, and rightly be logged as a failed handshake.)
    deadline = time.monotonic() + 20
    while True:
        try:
            echo_session(front, tls_files.ca)
            break
        except (OSError, AssertionError):
            assert time.monotonic() < deadline, haproxy.output
            time.sleep(0.1)

    # Echo through HAProxy; the instance logs the client's own port.
    _, session, client_port = echo_session(front, tls_files.ca)
    first = _served_by(instances, client_port)

    # The session resumes on whichever instance a connection lands on.
    landed = {first}
    for _ in range(4):
        resumed, _, client_port = echo_session(front, tls_files.ca, session)
        assert resumed
        landed.add(_served_by(instances, client_port))
    assert landed == {0, 1}

    # Kill the first instance (ours, by PID): new clients do not notice; its
    # refused connections are retried on the other instance.  (One that the
    # dying instance had already accepted would be lost with it.)
    os.kill(instances[0].process.pid, signal.SIGKILL)
    instances[0].process.wait(10)
    for _ in range(6):
        client_port = echo_session(front, tls_files.ca).client_port
        assert _served_by(instances, client_port) == 1
    haproxy.wait_for(r"Server tlsecho_instances/echo1 is DOWN", timeout=20)

    # Health checks every 2 s, each with a PROXY v2 LOCAL header: no warnings.
    assert not re.search(r"failed|#warn", instances[1].output), instances[1].output
