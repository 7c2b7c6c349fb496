"""
The echo server drops peers that stall: a TLS handshake not finished in time, or a
connection that goes idle.  Timed with a Clock on a TLS-like StringTransport, and once
for real over loopback.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.task import Clock, deferLater
from twisted.logger import LogEvent, globalLogPublisher
from twisted.python.failure import Failure

from test_echoserver import PEER, TLSStringTransport
from tlsecho import EchoServerFactory, TLSSettings, server_creator, server_endpoint

from _processes import identity
from conftest import TLSFiles


class Transport(TLSStringTransport):
    """A TLS-like StringTransport that records aborts and producer changes."""

    aborted = False

    def abortConnection(self) -> None:
        """Record the abort."""
        self.aborted = True


@pytest.fixture
def events() -> Iterator[list[LogEvent]]:
    """Every log event emitted while the test runs."""
    captured: list[LogEvent] = []
    globalLogPublisher.addObserver(captured.append)
    try:
        yield captured
    finally:
        globalLogPublisher.removeObserver(captured.append)


def _connect(**timeouts: float | None) -> tuple[Clock, object, Transport]:
    clock = Clock()
    factory = EchoServerFactory(clock=clock, **timeouts)  # type: ignore[arg-type]
    protocol = factory.buildProtocol(PEER)
    transport = Transport(peerAddress=PEER)
    protocol.makeConnection(transport)
    return clock, protocol, transport


def test_handshake_timeout_aborts_a_stalled_peer() -> None:
    """A peer that has not completed the handshake within the limit is aborted."""
    clock, _, transport = _connect(handshake_timeout=10.0)
    clock.advance(9.9)
    assert not transport.aborted
    clock.advance(0.2)
    assert transport.aborted


def test_completed_handshake_stops_the_handshake_timer() -> None:
    """Once the handshake completes, the handshake limit no longer applies."""
    clock, protocol, transport = _connect(handshake_timeout=10.0, idle_timeout=None)
    protocol.handshakeCompleted()  # type: ignore[attr-defined]
    clock.advance(60)
    assert not transport.aborted
    assert not transport.disconnecting


def test_handshake_timeout_is_logged_as_a_handshake_failure(events: list[LogEvent]) -> None:
    """The connection's log event says the handshake timed out."""
    clock, protocol, _ = _connect(handshake_timeout=10.0)
    clock.advance(11)
    protocol.connectionLost(Failure(ConnectionAborted()))  # type: ignore[attr-defined]
    (event,) = [e for e in events if e.get("log_source") is protocol]
    assert event["reason"] == "handshake timeout"
    assert event["failed"] is True


def test_idle_connection_is_closed_politely() -> None:
    """After the idle limit the server stops producing and closes (close_notify)."""
    clock, protocol, transport = _connect(idle_timeout=300.0)
    protocol.handshakeCompleted()  # type: ignore[attr-defined]
    clock.advance(299)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.disconnecting
    assert transport.producer is None
    assert not transport.aborted


def test_reading_postpones_the_idle_timeout() -> None:
    """Data received resets the idle clock."""
    clock, protocol, transport = _connect(idle_timeout=300.0)
    protocol.handshakeCompleted()  # type: ignore[attr-defined]
    clock.advance(200)
    protocol.dataReceived(b"still here")  # type: ignore[attr-defined]
    clock.advance(200)
    assert not transport.disconnecting
    clock.advance(101)
    assert transport.disconnecting


def test_idle_peer_that_never_takes_close_notify_is_aborted() -> None:
    """A closing connection that does not finish within close_timeout is aborted."""
    clock, protocol, transport = _connect(idle_timeout=300.0)
    protocol.handshakeCompleted()  # type: ignore[attr-defined]
    clock.advance(301)
    assert not transport.aborted
    clock.advance(protocol.factory.close_timeout + 1)  # type: ignore[attr-defined]
    assert transport.aborted


def test_handshake_finishing_after_the_close_began_keeps_the_abort() -> None:
    """A peer whose handshake completes after the server began closing it (here at
    the maximum age) does not cancel the abort that follows an unanswered close."""
    clock, protocol, transport = _connect(
        handshake_timeout=None, idle_timeout=300.0, max_connection_age=5.0
    )
    clock.advance(5.1)
    assert transport.disconnecting
    protocol.handshakeCompleted()  # type: ignore[attr-defined]
    clock.advance(protocol.factory.close_timeout + 1)  # type: ignore[attr-defined]
    assert transport.aborted


def test_connection_lost_cancels_timers() -> None:
    """A connection that ends leaves no timer behind."""
    clock, protocol, _ = _connect(handshake_timeout=10.0, idle_timeout=300.0)
    protocol.handshakeCompleted()  # type: ignore[attr-defined]
    protocol.connectionLost(Failure(ConnectionDone()))  # type: ignore[attr-defined]
    assert clock.getDelayedCalls() == []


@pytest_twisted.ensureDeferred
async def test_stalled_handshake_over_loopback_is_dropped(tls_files: TLSFiles) -> None:
    """A real TCP peer that never sends a ClientHello is disconnected by the server."""
    settings = TLSSettings(
        certificate=tls_files.server_cert, private_key=tls_files.server_key
    )
    factory = EchoServerFactory(handshake_timeout=0.3)
    endpoint = server_endpoint(
        reactor, "tcp:0:interface=127.0.0.1", server_creator(settings)
    )
    port = await endpoint.listen(factory)
    try:
        peer = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=5)
        peer.setblocking(False)
        closed: Deferred[bytes] = Deferred()

        def poll() -> None:
            try:
                data = peer.recv(100)
            except BlockingIOError:
                reactor.callLater(0.05, poll)  # type: ignore[attr-defined]
                return
            except ConnectionResetError:
                data = b""  # aborted: reset rather than closed
            closed.callback(data)

        poll()
        data = await closed.addTimeout(5, reactor)
        assert data == b""  # the server closed the connection
        await deferLater(reactor, 0.05, lambda: None)
        assert factory.connections == set()
        peer.close()
    finally:
        await port.stopListening()


def test_handshake_timeout_flag_drops_a_silent_peer(
    servers: list, tls_files: TLSFiles
) -> None:
    """--handshake-timeout drops a peer that never says hello, and logs it."""
    from _processes import start_server

    server = start_server(
        servers,
        *identity(tls_files),
        "--handshake-timeout",
        "0.5",
    )
    started = time.monotonic()
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as peer,
        contextlib.suppress(ConnectionResetError),  # aborted: a reset
    ):
        assert peer.recv(100) == b""
    assert time.monotonic() - started < 5
    server.wait_for("TLS handshake failed: handshake timeout")


def test_idle_timeout_flag_closes_an_idle_connection(
    servers: list, tls_files: TLSFiles
) -> None:
    """twistd tlsecho --idle-timeout closes an idle TLS connection with close_notify."""
    from _processes import start_server

    server = start_server(
        servers,
        *identity(tls_files),
        "--idle-timeout",
        "0.5",
    )
    context = ssl.create_default_context(cafile=str(tls_files.ca))
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as connection,
    ):
        connection.sendall(b"hello\n")
        assert connection.recv(100) == b"hello\n"
        started = time.monotonic()
        assert connection.recv(100) == b""  # close_notify, a clean TLS close
    assert time.monotonic() - started < 5
    server.wait_for("idle timeout after 6 bytes echoed")
