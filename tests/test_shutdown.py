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

from twisted.internet.task import Clock

from tlsecho import EchoServerProtocol
from tlsecho._app._configuration import ServerConfiguration
from tlsecho._app._service import CLOSE_GRACE, STOP_GRACE, EchoService
from tlsecho._settings._tls_settings import TLSSettings

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


class _DeafTransport:
    """A transport whose closes never end the connection (a broken protocol)."""

    def __init__(self, clock: Clock):
        self._clock = clock
        self.calls: list[tuple[str, float]] = []

    def unregisterProducer(self) -> None:
        pass

    def loseConnection(self) -> None:
        self.calls.append(("close", self._clock.seconds()))

    def abortConnection(self) -> None:
        self.calls.append(("abort", self._clock.seconds()))


def test_stop_is_bounded_whatever_the_connections_do(tls_files: TLSFiles) -> None:
    """
    After the shutdown timeout a connection gets close_notify, then an abort,
    and the service stops within the grace even if the connection never ends.
    """
    clock = Clock()
    configuration = ServerConfiguration(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key),
        listen=(),
    )
    service = EchoService(configuration, reactor=clock, shutdown_timeout=3.0)
    stuck = EchoServerProtocol()
    transport = _DeafTransport(clock)
    stuck.transport = transport  # type: ignore[assignment]
    service.factory.connections.add(stuck)
    stopped = service.stopService()
    done: list[float] = []
    stopped.addCallback(lambda _: done.append(clock.seconds()))
    clock.pump([0.01] * 299)
    assert transport.calls == []
    assert not done
    clock.pump([0.01] * 200)
    assert [call for call, _ in transport.calls] == ["close", "abort"]
    (closed, aborted) = (at for _, at in transport.calls)
    assert 3.0 <= closed < 3.1
    assert 3.0 + CLOSE_GRACE <= aborted < 3.1 + CLOSE_GRACE
    (stopped_at,) = done
    assert 3.0 + STOP_GRACE <= stopped_at < 3.1 + STOP_GRACE < 4.0
