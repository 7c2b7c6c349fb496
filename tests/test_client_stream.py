"""
``tlsecho client`` streams: it connects first, sends standard input as it arrives
(from a terminal, a pipe, a file or nothing), writes the echo as it comes back, and
can hold a connection open; and it reaches servers on UNIX sockets (``unix:PATH``).
The real command against the real twistd plugin on loopback.
"""

from __future__ import annotations

import os
import pty
import shutil
import signal
import subprocess
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import trustme

from tlsecho import ConfigurationError
from tlsecho._net._endpoints import parse_unix_address

from _processes import TLSECHO, ServerProcess, identity, start_server
from conftest import TLSFiles, write_cert

pytestmark = pytest.mark.subprocess


class Output:
    """What a stream (a pipe or a pty) has given so far, read by a thread."""

    def __init__(self, read: IO[bytes] | int):
        self.data = b""
        self._changed = threading.Condition()
        self._read = read
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                if isinstance(self._read, int):
                    chunk = os.read(self._read, 65536)
                else:
                    chunk = self._read.read1(65536)  # type: ignore[attr-defined]
            except OSError:
                chunk = b""  # a pty whose other side closed
            with self._changed:
                self.data += chunk
                self._changed.notify_all()
            if not chunk:
                return

    def wait_for(self, expected: bytes, timeout: float = 30.0) -> None:
        """Wait until C{expected} appears in the output."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while expected not in self.data:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{expected!r} never came; got {self.data!r}"
                self._changed.wait(remaining)

    def join(self, timeout: float = 30.0) -> bytes:
        """Everything, once the stream ends."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the output never ended"
        return self.data


def _client(
    *arguments: str, stdin: IO[bytes] | int = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [TLSECHO, "client", *arguments],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(process: subprocess.Popen[bytes], timeout: float = 60.0) -> tuple[int, str]:
    """Wait for the client to exit; its status and standard error."""
    try:
        process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.stderr is not None
    return process.returncode, process.stderr.read().decode("utf-8", "replace")


@pytest.fixture
def server(servers: list, tls_files: TLSFiles) -> ServerProcess:
    """The tlsecho plugin with the trustme server certificate, on loopback."""
    return start_server(servers, *identity(tls_files))


# Standard input as it arrives ---------------------------------------------------------


def test_first_line_is_echoed_before_the_second_is_written(
    server: ServerProcess, tls_files: TLSFiles
) -> None:
    """(echo a; sleep; echo b) | tlsecho client: the echo of the first line comes back
    while the pipe is still open, before the second line is written; exit 0."""
    process = _client("--ca", str(tls_files.ca), server.address)
    assert process.stdin is not None
    assert process.stdout is not None
    output = Output(process.stdout)
    try:
        process.stdin.write(b"a\n")
        process.stdin.flush()
        output.wait_for(b"a\n")
        assert output.data == b"a\n"
        process.stdin.write(b"b\n")
    finally:
        process.stdin.close()
        status, errors = _finish(process)
    assert (status, output.join(), errors) == (0, b"a\nb\n", "")


def test_interactive_session_on_a_terminal(
    server: ServerProcess, tls_files: TLSFiles
) -> None:
    """On a terminal, each line typed comes back before the next is typed; Ctrl-D ends
    the session with exit 0."""
    controller, terminal = pty.openpty()
    attributes = termios.tcgetattr(terminal)
    attributes[3] &= ~termios.ECHO  # only the client's output, not the typing
    termios.tcsetattr(terminal, termios.TCSANOW, attributes)
    process = subprocess.Popen(
        [TLSECHO, "client", "--ca", str(tls_files.ca), server.address],
        stdin=terminal,
        stdout=terminal,
        stderr=subprocess.PIPE,
    )
    os.close(terminal)
    output = Output(controller)
    try:
        os.write(controller, b"first line\n")
        output.wait_for(b"first line")
        assert b"second" not in output.data
        os.write(controller, b"second line\n")
        output.wait_for(b"second line")
        os.write(controller, b"\x04")  # Ctrl-D at the start of a line: end of input
        status, errors = _finish(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        output.join()
        os.close(controller)
    assert (status, errors) == (0, "")
    # The terminal turns each "\n" the client writes into "\r\n".
    assert output.data.replace(b"\r\n", b"\n") == b"first line\nsecond line\n"


def test_connection_stays_open_while_nothing_is_owed(
    server: ServerProcess, tls_files: TLSFiles
) -> None:
    """With every echo back, the connection stays open past --timeout until more input
    comes; then it goes on, and ends with exit 0."""
    process = _client("--ca", str(tls_files.ca), "--timeout", "1", server.address)
    assert process.stdin is not None
    assert process.stdout is not None
    output = Output(process.stdout)
    try:
        process.stdin.write(b"before\n")
        process.stdin.flush()
        output.wait_for(b"before\n")
        # Three times --timeout with nothing owed: the client must still be there.
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(3)
        process.stdin.write(b"after\n")
    finally:
        process.stdin.close()
        status, errors = _finish(process)
    assert (status, output.join(), errors) == (0, b"before\nafter\n", "")


def test_session_watches_a_reload_and_a_drain(servers: list, tls_files: TLSFiles) -> None:
    """One session stays open across a server reload (SIGHUP) and into its drain
    (SIGTERM), echoing all along; when the drain closes it, the client exits 1 saying
    the server closed before the end of the input."""
    server = start_server(servers, *identity(tls_files), "--shutdown-timeout", "2")
    process = _client("--ca", str(tls_files.ca), server.address)
    assert process.stdin is not None
    assert process.stdout is not None
    output = Output(process.stdout)
    try:
        process.stdin.write(b"a\n")
        process.stdin.flush()
        output.wait_for(b"a\n")
        os.kill(server.process.pid, signal.SIGHUP)
        server.wait_for("reloaded the TLS configuration")
        process.stdin.write(b"b\n")
        process.stdin.flush()
        output.wait_for(b"a\nb\n")
        os.kill(server.process.pid, signal.SIGTERM)
        server.wait_for(r"waiting up to 2s for 1 connection")
        process.stdin.write(b"c\n")
        process.stdin.flush()
        output.wait_for(b"a\nb\nc\n")
        status, errors = _finish(process)
    finally:
        process.stdin.close()
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert status == 1, errors
    assert errors == (
        "tlsecho client: connection closed by the server after 6 of 6 bytes, before the "
        f"end of the input (closed) (server '127.0.0.1' at {server.address})\n"
    )
    # The SIGTERM above ends it: it exits 0 by itself (a second SIGTERM sent
    # while Python finalizes, with default handlers back, would be -15).
    assert server.process.wait(20) == 0


def test_payload_from_a_file(
    server: ServerProcess, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """tlsecho client < FILE (a regular file, which epoll cannot watch) echoes 3 MiB,
    more than the client lets await its echo at once, byte for byte."""
    payload = os.urandom(3 * 1024 * 1024)
    path = tmp_path / "payload"
    path.write_bytes(payload)
    with path.open("rb") as file:
        process = _client("--ca", str(tls_files.ca), server.address, stdin=file)
        assert process.stdout is not None
        output = Output(process.stdout)
        status, errors = _finish(process, timeout=120)
    assert (status, errors) == (0, "")
    assert output.join() == payload


def test_empty_standard_input(server: ServerProcess, tls_files: TLSFiles) -> None:
    """tlsecho client < /dev/null connects, sends nothing, closes cleanly: exit 0."""
    process = _client("--ca", str(tls_files.ca), server.address, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    output = Output(process.stdout)
    status, errors = _finish(process)
    assert (status, output.join(), errors) == (0, b"", "")


def test_interrupt_is_not_success(server: ServerProcess, tls_files: TLSFiles) -> None:
    """Ctrl-C (SIGINT) during a session exits 1 saying it was interrupted, never 0."""
    process = _client("--ca", str(tls_files.ca), server.address)
    assert process.stdin is not None
    assert process.stdout is not None
    output = Output(process.stdout)
    try:
        process.stdin.write(b"x\n")
        process.stdin.flush()
        output.wait_for(b"x\n")
        process.send_signal(signal.SIGINT)
        status, errors = _finish(process)
    finally:
        process.stdin.close()
    assert status == 1, errors
    (line,) = errors.splitlines()
    assert line.startswith("tlsecho client: interrupted before the exchange ended"), line


# unix:PATH ----------------------------------------------------------------------------


@pytest.fixture
def socket_path() -> Iterator[Path]:
    """A path for a UNIX socket, short enough for sun_path (unlike tmp_path)."""
    directory = tempfile.mkdtemp(prefix="tlsecho-", dir="/tmp")
    yield Path(directory) / "echo.sock"
    shutil.rmtree(directory, ignore_errors=True)


def _unix_server(servers: list, path: Path, *arguments: str) -> ServerProcess:
    server = ServerProcess(["--listen", f"unix:{path}", *arguments])
    servers.append(server)
    server.wait_for(r"tlsecho listening on unix:")
    return server


def _run(
    *arguments: str, payload: bytes = b"hello\n"
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [TLSECHO, "client", *arguments],
        input=payload,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_unix_target_with_the_development_default(servers: list, socket_path: Path) -> None:
    """tlsecho client unix:PATH reaches a plugin on that socket with its development
    certificate, verified as localhost with the development CA, no options needed."""
    _unix_server(servers, socket_path)
    result = _run(f"unix:{socket_path}")
    assert (result.returncode, result.stdout) == (0, b"hello\n"), result.stderr.decode()
    assert result.stderr == b""


def test_unix_target_with_servername(
    servers: list, socket_path: Path, tmp_path: Path, ca: trustme.CA, tls_files: TLSFiles
) -> None:
    """Against a certificate for echo.internal on a UNIX socket, --servername
    echo.internal verifies; without it, the name checked is localhost and it fails
    (exit 4) naming both."""
    cert, key = write_cert(ca.issue_cert("echo.internal"), tmp_path, "internal")
    _unix_server(servers, socket_path, "--cert", str(cert), "--key", str(key))
    target = f"unix:{socket_path}"
    named = _run("--ca", str(tls_files.ca), "--servername", "echo.internal", target)
    assert (named.returncode, named.stdout) == (0, b"hello\n"), named.stderr.decode()
    unnamed = _run("--ca", str(tls_files.ca), target)
    assert unnamed.returncode == 4, unnamed.stderr.decode()
    assert unnamed.stderr.decode() == (
        "tlsecho client: certificate verify failed: hostname mismatch: not valid for "
        f"'localhost' (it is for echo.internal) (server 'localhost' at {target})\n"
    )


def test_missing_unix_socket_exits_3(socket_path: Path) -> None:
    """A UNIX socket that does not exist is a connection failure (exit 3) in words."""
    result = _run(f"unix:{socket_path}")
    assert result.returncode == 3, result.stderr.decode()
    assert result.stderr.decode() == (
        "tlsecho client: no such file or directory "
        f"(server 'localhost' at unix:{socket_path})\n"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unix:/run/tlsecho.sock", "/run/tlsecho.sock"),
        ("unix:relative.sock", "relative.sock"),
        ("unix:/odd:name", "/odd:name"),
        ("localhost:8443", None),
        ("[::1]:8443", None),
    ],
)
def test_parse_unix_address(text: str, expected: str | None) -> None:
    """unix:PATH gives PATH, everything after unix: as it is; other addresses None."""
    assert parse_unix_address(text) == expected


def test_parse_unix_address_without_path() -> None:
    """unix: with no path is a configuration error naming unix:PATH."""
    with pytest.raises(ConfigurationError, match=r"^unix:PATH: expected the path"):
        parse_unix_address("unix:")
