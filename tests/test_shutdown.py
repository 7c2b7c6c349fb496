"""
Graceful shutdown: on SIGTERM the server stops accepting, echoes every byte clients
sent before the signal, closes with close_notify, and exits 0.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import threading
import time

from _processes import identity, start_server
from conftest import TLSFiles


def _client(port: int, tls_files: TLSFiles) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(tls_files.ca))
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    return context.wrap_socket(raw, server_hostname="localhost")


def test_sigterm_echoes_everything_sent_before_it(
    servers: list, tls_files: TLSFiles
) -> None:
    """Bytes sent before SIGTERM all come back, in order; then close_notify, exit 0."""
    server = start_server(
        servers,
        *identity(tls_files),
        "--shutdown-timeout",
        "2",
    )
    connection = _client(server.port, tls_files)
    sent = bytearray()
    received = bytearray()
    sent_before_signal = 0
    signalled = threading.Event()

    def read() -> None:
        while True:
            try:
                data = connection.recv(65536)
            except (ssl.SSLError, OSError):
                return
            if not data:
                return  # close_notify: a clean TLS close
            received.extend(data)

    reader = threading.Thread(target=read)
    reader.start()
    chunk = bytes(range(256)) * 64  # 16 KiB
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        piece = chunk[: 1 + len(sent) % len(chunk)]
        try:
            connection.sendall(piece)
        except (ssl.SSLError, OSError):
            break
        sent.extend(piece)
        if len(sent) > 2_000_000 and not signalled.is_set():
            sent_before_signal = len(sent)
            os.kill(server.process.pid, signal.SIGTERM)
            signalled.set()
        time.sleep(0.001)
    reader.join(30)
    assert signalled.is_set()
    assert server.process.wait(30) == 0
    assert len(received) >= sent_before_signal
    assert bytes(received) == bytes(sent[: len(received)])
    assert "closing 1 connection(s) still open after 2s" in server.output


def test_sigterm_with_idle_clients_waits_for_them_to_leave(
    servers: list, tls_files: TLSFiles
) -> None:
    """A client that finishes within the shutdown timeout is not cut off."""
    server = start_server(
        servers,
        *identity(tls_files),
        "--shutdown-timeout",
        "10",
    )
    connection = _client(server.port, tls_files)
    connection.sendall(b"first\n")
    assert connection.recv(100) == b"first\n"
    os.kill(server.process.pid, signal.SIGTERM)
    server.wait_for("waiting up to 10s for 1 connection")
    connection.sendall(b"after the signal\n")
    assert connection.recv(100) == b"after the signal\n"
    connection.close()
    assert server.process.wait(20) == 0
    assert "still open after" not in server.output
    # Not accepting any more: the port is closed.
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    except OSError:
        pass
    else:
        raise AssertionError("the server still accepts connections after stopping")
