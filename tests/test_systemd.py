"""
The systemd units in etc/systemd are valid, and the server adopts a listening socket
passed the way systemd passes it (LISTEN_FDS / LISTEN_PID, descriptor 3).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from _processes import TWISTD, ServerProcess, identity, run_client
from conftest import TLSFiles

UNITS = Path(__file__).resolve().parent.parent / "etc" / "systemd"

#: Run by the server process: put the inherited socket at descriptor 3 and set
#: LISTEN_PID to its own PID (which systemd knows and we cannot before exec).
_ACTIVATE = """
import os, sys
os.dup2(int(os.environ.pop("TLSECHO_TEST_SOCKET")), 3)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_FDNAMES"] = "tlsecho.socket"  # systemd 227+ always names them
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"""


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd-analyze verify accepts the service and socket units without a warning."""
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("TLSECHO_REQUIRE_TOOLS"):
            pytest.fail("systemd-analyze is not installed, and .ci/run requires it")
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    for unit in UNITS.iterdir():
        text = unit.read_text()
        # verify checks that ExecStart exists: point it at this environment's twistd.
        (tmp_path / unit.name).write_text(text.replace("/opt/tlsecho/bin/twistd", TWISTD))
    result = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            str(tmp_path / "tlsecho.socket"),
            str(tmp_path / "tlsecho.service"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_service_unit_runs_the_plugin_with_systemd_listen() -> None:
    """The service starts twistd tlsecho on the socket the socket unit passes."""
    service = (UNITS / "tlsecho.service").read_text()
    assert "twistd --nodaemon --pidfile= tlsecho" in service
    assert "--listen systemd:domain=INET:index=0" in service
    assert "ExecReload=/bin/kill -HUP $MAINPID" in service
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in service
    # The server notifies systemd (tests/test_health.py): started once ready,
    # and a watchdog.  Type=notify-reload needs systemd 253 (see the unit).
    lines = service.splitlines()
    assert "Type=notify" in lines
    assert "NotifyAccess=main" in lines
    assert "WatchdogSec=30s" in lines
    assert "ListenStream=0.0.0.0:443" in (UNITS / "tlsecho.socket").read_text()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_socket_activation_serves_on_the_inherited_socket(
    servers: list, tls_files: TLSFiles, workers: str
) -> None:
    """
    Given a listening socket as systemd passes it, the server serves echo on
    it; with workers, they adopt it from the main process.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        server = ServerProcess(
            [
                _ACTIVATE,
                TWISTD,
                "-n",
                "--pidfile=",
                "tlsecho",
                "--listen",
                "systemd:domain=INET:index=0",
                *identity(tls_files),
                "--workers",
                workers,
            ],
            env={"TLSECHO_TEST_SOCKET": str(listener.fileno())},
            command=[sys.executable, "-c"],
            pass_fds=(listener.fileno(),),
        )
        servers.append(server)
        assert server.wait_listening() == [("127.0.0.1", port)]
    finally:
        listener.close()  # the server holds its own copy
    result = run_client(
        f"127.0.0.1:{port}", "--ca", str(tls_files.ca), payload=b"adopted\n"
    )
    assert (result.returncode, result.stdout) == (0, b"adopted\n"), result.stderr
    if workers == "2":
        server.wait_for(rf"\[worker 2\] tlsecho listening on 127\.0\.0\.1:{port} ")
