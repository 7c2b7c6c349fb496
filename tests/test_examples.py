"""
The runnable example in examples/ works: the echo factory embedded beside a web site.
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

from _processes import run_client

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
