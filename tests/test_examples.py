"""
The runnable examples in examples/ work: the echo factory embedded beside a web site,
the echo as a twistd application's service, and a library client.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from _processes import TWISTD, ServerProcess, run_client, start_server
from conftest import TLSFiles

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "embed.py"


def _wait_for_ports(
    process: subprocess.Popen[str], timeout: float = 20.0
) -> dict[str, int]:
    ports: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    lines = []
    while len(ports) < 2 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"(Site|EchoServerFactory \(TLS\)) starting on (\d+)", line)
        if match:
            ports[match.group(1)] = int(match.group(2))
    assert len(ports) == 2, "".join(lines)
    return ports


def test_embedded_echo_serves_beside_a_web_site() -> None:
    """examples/embed.py serves HTTP and TLS echo from one reactor."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLE),
            "tcp:0:interface=127.0.0.1",
            "tcp:0:interface=127.0.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    try:
        ports = _wait_for_ports(process)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{ports['Site']}/", timeout=10
        ) as page:
            assert page.read() == b"tlsecho runs beside me\n"
        result = run_client(
            f"localhost:{ports['EchoServerFactory (TLS)']}",
            payload=b"embedded\n",
            timeout=30,
        )
        assert (result.returncode, result.stdout) == (0, b"embedded\n"), result.stderr
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(10)


SERVICE = EXAMPLE.parent / "service.py"
CLIENT = EXAMPLE.parent / "client.py"


def test_service_application_serves(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """examples/service.py, run by twistd -y, serves TLS echo with the given certificate."""
    server = ServerProcess(
        [str(SERVICE)],
        command=[TWISTD, "-n", "--pidfile=", "-y"],
        plugin=False,
        env={
            "TLSECHO_CERT": str(tls_files.server_cert),
            "TLSECHO_KEY": str(tls_files.server_key),
            "TLSECHO_LISTEN": "tcp:0:interface=127.0.0.1",
        },
    )
    servers.append(server)
    port = int(server.wait_for(r"EchoServerFactory \(TLS\) starting on (\d+)").group(1))
    result = run_client(
        f"localhost:{port}", "--ca", str(tls_files.ca), payload=b"service\n", timeout=30
    )
    assert (result.returncode, result.stdout) == (0, b"service\n"), result.stderr


def test_service_application_defaults_to_the_development_certificate(
    servers: list[ServerProcess],
) -> None:
    """Without TLSECHO_CERT, examples/service.py serves the development certificate."""
    server = ServerProcess(
        [str(SERVICE)],
        command=[TWISTD, "-n", "--pidfile=", "-y"],
        plugin=False,
        env={"TLSECHO_LISTEN": "tcp:0:interface=127.0.0.1"},
    )
    servers.append(server)
    port = int(server.wait_for(r"EchoServerFactory \(TLS\) starting on (\d+)").group(1))
    result = run_client(f"localhost:{port}", payload=b"dev\n", timeout=30)
    assert (result.returncode, result.stdout) == (0, b"dev\n"), result.stderr


def test_client_example_echoes(servers: list[ServerProcess], tls_files: TLSFiles) -> None:
    """examples/client.py echoes through a server it verifies against the CA file."""
    server = start_server(
        servers, "--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)
    )
    result = subprocess.run(
        [sys.executable, CLIENT, tls_files.ca, "localhost", str(server.port), "hi"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr


def test_client_example_refuses_an_unknown_ca(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """examples/client.py verifies: a CA that did not issue the server's chain fails."""
    server = start_server(
        servers, "--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)
    )
    result = subprocess.run(
        [sys.executable, CLIENT, tls_files.client_ca, "localhost", str(server.port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("client.py: certificate verify failed"), result.stderr
