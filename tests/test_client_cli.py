"""
Black-box tests of ``tlsecho client``: the real command against real servers on
loopback (the tlsecho plugin, ``openssl s_server -rev``, and small Python servers
that misbehave on purpose), checking exit statuses, output and error lines.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _processes import TLSECHO, ServerProcess, identity, run_client, start_server
from conftest import TLSFiles

pytestmark = pytest.mark.subprocess

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
PAYLOAD = b"hello, tlsecho\n"


# Helpers ------------------------------------------------------------------------------


def _serve(servers: list, tls_files: TLSFiles, *arguments: str) -> ServerProcess:
    return start_server(
        servers,
        *identity(tls_files),
        *arguments,
    )


def _stderr_line(result: subprocess.CompletedProcess[bytes]) -> str:
    """The one line the client wrote on stderr (failing if there is not exactly one)."""
    text = result.stderr.decode("utf-8", "replace")
    lines = text.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{text}"
    assert "Traceback" not in text
    return lines[0]


def _free_port() -> int:
    """A loopback port that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _ThreadServer:
    """
    A loopback TCP listener whose accepted connections are handled by ``handle`` in
    a thread; closed (and its thread joined) by ``close``.
    """

    def __init__(self, handle: Callable[[socket.socket], None]):
        self._handle = handle
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._connections.append(connection)
            # A client that goes away early is not this server's concern.
            with contextlib.suppress(OSError):
                self._handle(connection)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(10)
        self._listener.close()
        for connection in self._connections:
            connection.close()


@pytest.fixture
def thread_servers() -> Iterator[list[_ThreadServer]]:
    """In-process servers started by a test; each is closed afterwards."""
    started: list[_ThreadServer] = []
    yield started
    for server in started:
        server.close()


def _tls_context(tls_files: TLSFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files.server_cert, tls_files.server_key)
    return context


def _dropping_server(
    tls_files: TLSFiles, echo_first: int
) -> Callable[[socket.socket], None]:
    """
    A TLS handler that reads the whole payload, echoes its first ``echo_first`` bytes,
    then drops the connection (a TCP close, no TLS close_notify).
    """
    context = _tls_context(tls_files)

    def handle(connection: socket.socket) -> None:
        connection.settimeout(10)
        tls = context.wrap_socket(connection, server_side=True)
        received = b""
        while len(received) < len(PAYLOAD):
            chunk = tls.recv(65536)
            if not chunk:
                break
            received += chunk
        tls.sendall(received[:echo_first])
        time.sleep(0.2)
        # Python's close() does not send close_notify: this is a bare TCP close.
        tls.close()

    return handle


# Echo ---------------------------------------------------------------------------------


def test_echo_exits_zero_with_byte_exact_output(servers: list, tls_files: TLSFiles) -> None:
    """Against a tlsecho server the client exits 0 and writes exactly what it sent."""
    server = _serve(servers, tls_files)
    result = run_client(server.address, "--ca", str(tls_files.ca), payload=PAYLOAD)
    assert (result.returncode, result.stdout) == (0, PAYLOAD), result.stderr.decode()
    assert result.stderr == b""


@pytest.mark.parametrize(
    "size",
    [0, 1, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024],
    ids=["0B", "1B", "64KiB", "1MiB", "16MiB"],
)
def test_payload_echoed_byte_exact(servers: list, tls_files: TLSFiles, size: int) -> None:
    """Random payloads of 0 B, 1 B, 64 KiB, 1 MiB and 16 MiB come back byte for byte."""
    payload = os.urandom(size)
    server = _serve(servers, tls_files)
    result = run_client(
        server.address, "--ca", str(tls_files.ca), payload=payload, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()
    assert len(result.stdout) == size
    assert result.stdout == payload


def test_mutual_tls_with_client_certificate(servers: list, tls_files: TLSFiles) -> None:
    """With --cert/--key the client passes a server that requires client certificates."""
    server = _serve(
        servers, tls_files, "--verify", "required", "--ca", str(tls_files.client_ca)
    )
    result = run_client(
        server.address,
        "--ca",
        str(tls_files.ca),
        "--cert",
        str(tls_files.client_cert),
        "--key",
        str(tls_files.client_key),
        payload=PAYLOAD,
    )
    assert (result.returncode, result.stdout) == (0, PAYLOAD), result.stderr.decode()


# Could not connect: 3 -----------------------------------------------------------------


def test_connection_refused_exits_3(tls_files: TLSFiles) -> None:
    """A closed port makes the client exit 3 saying the connection was refused."""
    result = run_client(f"127.0.0.1:{_free_port()}", "--ca", str(tls_files.ca))
    assert result.returncode == 3, result.stderr.decode()
    assert "connection refused" in _stderr_line(result)
    assert result.stdout == b""


# TLS failures: 4 ----------------------------------------------------------------------


def test_untrusted_ca_exits_4(servers: list, tls_files: TLSFiles) -> None:
    """A server whose certificate does not chain to --ca fails with exit 4 and
    'certificate verify failed'."""
    server = _serve(servers, tls_files)
    result = run_client(server.address, "--ca", str(tls_files.client_ca))
    assert result.returncode == 4, result.stderr.decode()
    assert "certificate verify failed" in _stderr_line(result)
    assert result.stdout == b""


def test_untrusted_by_default_trust_store_exits_4(
    servers: list, tls_files: TLSFiles
) -> None:
    """Without --ca, a server certificate from a private CA is not trusted (exit 4)."""
    server = _serve(servers, tls_files)
    result = run_client(server.address)
    assert result.returncode == 4, result.stderr.decode()
    assert "certificate verify failed" in _stderr_line(result)


def test_hostname_mismatch_exits_4(servers: list, tls_files: TLSFiles) -> None:
    """--servername wrong.example against a localhost certificate fails with exit 4 and
    a message naming wrong.example."""
    server = _serve(servers, tls_files)
    result = run_client(
        server.address, "--ca", str(tls_files.ca), "--servername", "wrong.example"
    )
    assert result.returncode == 4, result.stderr.decode()
    assert "wrong.example" in _stderr_line(result)
    assert result.stdout == b""


def test_required_client_certificate_missing_tls13_exits_4(
    servers: list, tls_files: TLSFiles
) -> None:
    """Under TLS 1.3, a server requiring a client certificate makes a client without one
    exit 4 with a reason saying so."""
    server = _serve(
        servers, tls_files, "--verify", "required", "--ca", str(tls_files.client_ca)
    )
    result = run_client(server.address, "--ca", str(tls_files.ca), "--min-tls", "1.3")
    assert result.returncode == 4, result.stderr.decode()
    assert "server requires a client certificate" in _stderr_line(result)
    assert result.stdout == b""


def test_required_client_certificate_missing_tls12_exits_4(
    servers: list, tls_files: TLSFiles
) -> None:
    """Under TLS 1.2 (--max-tls 1.2), a server requiring a client certificate makes a
    client without one exit 4 with a reason that mentions the client certificate."""
    server = _serve(
        servers, tls_files, "--verify", "required", "--ca", str(tls_files.client_ca)
    )
    result = run_client(server.address, "--ca", str(tls_files.ca), "--max-tls", "1.2")
    assert result.returncode == 4, result.stderr.decode()
    assert "client certificate" in _stderr_line(result)
    assert result.stdout == b""


def test_timeout_when_server_never_answers_exits_4(
    thread_servers: list[_ThreadServer], tls_files: TLSFiles
) -> None:
    """A server that accepts and never answers makes the client exit 4 with 'timed out'
    after about --timeout seconds."""
    held: list[float] = []

    def hold(connection: socket.socket) -> None:
        # Read (the ClientHello) and never answer, until the client gives up.
        accepted = time.monotonic()
        connection.settimeout(30)
        try:
            while connection.recv(65536):
                pass
        finally:
            held.append(time.monotonic() - accepted)

    silent = _ThreadServer(hold)
    thread_servers.append(silent)
    started = time.monotonic()
    result = run_client(
        f"127.0.0.1:{silent.port}", "--ca", str(tls_files.ca), "--timeout", "3", timeout=30
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 4, result.stderr.decode()
    assert "timed out" in _stderr_line(result)
    # Measured where the client cannot add its start-up time: from the server's
    # accept to the client's close, which is the timeout (less the moments
    # between the timer's start and the connection's).
    (connected,) = held
    assert 2.0 <= connected < 4.0, connected
    # And the process as a whole ends after the timeout, not at some later limit.
    assert 3 <= elapsed < 3 + 15, elapsed


# Echo differs or connection dropped: 1 ------------------------------------------------


@pytest.fixture
def reversing_server(tls_files: TLSFiles) -> Iterator[int]:
    """``openssl s_server -rev`` (it echoes each line reversed) on a loopback port."""
    port = _free_port()
    process = subprocess.Popen(
        [
            OPENSSL,
            "s_server",
            "-rev",
            "-accept",
            f"127.0.0.1:{port}",
            "-cert",
            str(tls_files.server_cert),
            "-key",
            str(tls_files.server_key),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    accepting = threading.Event()
    lines: list[bytes] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.strip() == b"ACCEPT":
                accepting.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert accepting.wait(10), b"s_server did not start:\n" + b"".join(lines)
        yield port
    finally:
        process.kill()
        process.wait(10)
        reader.join(10)


def test_differing_echo_exits_1(reversing_server: int, tls_files: TLSFiles) -> None:
    """A server that answers with different bytes (reversed lines) makes the client
    exit 1 saying the echo differs."""
    result = run_client(
        f"127.0.0.1:{reversing_server}",
        "--ca",
        str(tls_files.ca),
        "--servername",
        "localhost",
        payload=PAYLOAD,
        timeout=30,
    )
    assert result.returncode == 1, result.stderr.decode()
    assert "differs" in _stderr_line(result)


def test_connection_dropped_before_echo_exits_1(
    thread_servers: list[_ThreadServer], tls_files: TLSFiles
) -> None:
    """A server that completes the handshake, reads the payload and drops the
    connection without echoing makes the client exit 1."""
    server = _ThreadServer(_dropping_server(tls_files, echo_first=0))
    thread_servers.append(server)
    result = run_client(
        f"127.0.0.1:{server.port}", "--ca", str(tls_files.ca), payload=PAYLOAD, timeout=30
    )
    assert result.returncode == 1, result.stderr.decode()
    _stderr_line(result)


def test_connection_dropped_mid_echo_exits_1(
    thread_servers: list[_ThreadServer], tls_files: TLSFiles
) -> None:
    """A server that echoes part of the payload and then drops the connection makes
    the client exit 1."""
    server = _ThreadServer(_dropping_server(tls_files, echo_first=5))
    thread_servers.append(server)
    result = run_client(
        f"127.0.0.1:{server.port}", "--ca", str(tls_files.ca), payload=PAYLOAD, timeout=30
    )
    assert result.returncode == 1, result.stderr.decode()
    _stderr_line(result)
    assert PAYLOAD.startswith(result.stdout)
    assert result.stdout != PAYLOAD


# Usage and configuration errors: 2 ----------------------------------------------------

USAGE_ERRORS: dict[str, tuple[list[str], str]] = {
    "address without port": (["localhost"], "HOST:PORT"),
    "address with bad port": (["127.0.0.1:http"], "HOST:PORT"),
    "port out of range": (["127.0.0.1:70000"], "HOST:PORT"),
    "unknown verify mode": (["--verify", "sometimes", "127.0.0.1:1"], "--verify"),
    "verify optional": (["--verify", "optional", "127.0.0.1:1"], "--verify"),
    "missing ca file": (["--ca", "{tmp}/missing-ca.pem", "127.0.0.1:1"], "--ca"),
    "unknown TLS version": (["--min-tls", "1.0", "127.0.0.1:1"], "--min-tls"),
    "bad timeout": (["--timeout", "soon", "127.0.0.1:1"], "--timeout"),
    "no address": ([], "HOST:PORT"),
    "unix without a path": (["unix:"], "unix:PATH"),
}


@pytest.mark.parametrize("case", list(USAGE_ERRORS))
def test_usage_error_exits_2_with_one_line(case: str, tmp_path: Path) -> None:
    """A usage or configuration error makes the client exit 2 with one line on stderr
    naming the culprit, and no traceback."""
    arguments, culprit = USAGE_ERRORS[case]
    arguments = [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    result = subprocess.run(
        [TLSECHO, "client", *arguments],
        input=PAYLOAD,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr.decode()
    line = _stderr_line(result)
    assert culprit in line
    if case == "missing ca file":
        assert str(tmp_path / "missing-ca.pem") in line
    assert result.stdout == b""


# Insecure mode ------------------------------------------------------------------------


def test_verify_none_warns_and_succeeds_against_untrusted_server(
    servers: list, tls_files: TLSFiles
) -> None:
    """--verify none prints one warning line on stderr and echoes through a server whose
    certificate is not trusted."""
    server = _serve(servers, tls_files)
    result = run_client(server.address, "--verify", "none", payload=PAYLOAD)
    assert (result.returncode, result.stdout) == (0, PAYLOAD), result.stderr.decode()
    assert "warning" in _stderr_line(result).lower()


def test_verify_none_skips_the_name_check_too(servers: list, tls_files: TLSFiles) -> None:
    """--verify none skips the name check too: --servername wrong.example still echoes."""
    server = _serve(servers, tls_files)
    result = run_client(
        server.address, "--verify", "none", "--servername", "wrong.example", payload=PAYLOAD
    )
    assert (result.returncode, result.stdout) == (0, PAYLOAD), result.stderr.decode()
    assert "warning" in _stderr_line(result).lower()
