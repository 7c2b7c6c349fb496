"""
A port already in use, for ``--listen`` or ``--metrics``, under ``twistd -n`` and
``twist``, with one process or ``--workers 2``: the real plugin in a subprocess says
it in exactly one line (standard output and standard error together: a terminal
shows both), naming the option, the address and the reason, and exits with the
status the docs give for a port that cannot be bound (docs/server.md: 1).
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from _processes import BIN, LOOPBACK_LISTEN, TWISTD_COMMAND, identity
from conftest import TLSFiles

pytestmark = pytest.mark.subprocess

#: The exit status for a port that cannot be bound (docs/server.md, "When
#: something is wrong"); a bad setting is 2.
CANNOT_LISTEN = 1

RUNNERS = {
    "twistd": TWISTD_COMMAND,
    # twist's own default: text on a terminal, JSON into a pipe (tlsecho makes it
    # text unless --log-format json).
    "twist": [str(BIN / "twist")],
}


def _run(command: list[str], *arguments: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [*command, "tlsecho", *arguments],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the server did not exit by itself; it printed:\n{e.output}")


@pytest.mark.parametrize("runner", sorted(RUNNERS))
@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("option", ["--listen", "--metrics"])
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_port_in_use_is_one_line_and_status_1(
    tls_files: TLSFiles, runner: str, workers: str, option: str, log_format: str
) -> None:
    """Exactly one line in all the output mentions the failure, word for word, and
    the process exits 1 without a traceback."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        taken_address = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
        listen = taken_address if option == "--listen" else LOOPBACK_LISTEN
        extra = ["--metrics", taken_address] if option == "--metrics" else []
        result = _run(
            RUNNERS[runner],
            *identity(tls_files),
            "--listen",
            listen,
            *extra,
            "--workers",
            workers,
            "--log-format",
            log_format,
        )
    output = result.stdout + result.stderr
    expected = f"tlsecho: {option}: {taken_address}: cannot listen: Address already in use"
    assert result.stderr.splitlines() == [expected], output
    mentions = [line for line in output.splitlines() if "cannot listen" in line]
    assert mentions == [expected], output
    assert result.returncode == CANNOT_LISTEN, output
    assert "Traceback" not in output


def test_port_in_use_is_logged_to_a_log_file(tls_files: TLSFiles, tmp_path: Path) -> None:
    """With twistd --logfile the log file gets the error too (as config.error), and
    standard error its one line: each place once."""
    log = tmp_path / "twistd.log"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        taken_address = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
        result = _run(
            [*TWISTD_COMMAND, f"--logfile={log}"],
            *identity(tls_files),
            "--listen",
            taken_address,
        )
    reason = f"--listen: {taken_address}: cannot listen: Address already in use"
    assert result.returncode == CANNOT_LISTEN, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"tlsecho: {reason}"]
    assert result.stdout == ""
    logged = [line for line in log.read_text().splitlines() if "cannot listen" in line]
    assert len(logged) == 1, logged
    assert logged[0].endswith(reason)
