"""
Tests for the echo server protocol and factory on a StringTransport: no reactor, no
TLS handshake (the transport only looks like TLS, so the protocol expects one).

The protocol must echo every byte in order, hand flow control to its transport by
registering that transport as a streaming producer, be tracked by its factory while
open, and log exactly one event per connection naming the peer and why it ended.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from OpenSSL import SSL
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent, LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure

from tlsecho import EchoServerFactory, EchoServerProtocol

PEER = IPv4Address("TCP", "192.0.2.7", 50123)


@pytest.fixture
def events() -> Iterator[list[LogEvent]]:
    """Every log event emitted while the test runs."""
    captured: list[LogEvent] = []
    globalLogPublisher.addObserver(captured.append)
    try:
        yield captured
    finally:
        globalLogPublisher.removeObserver(captured.append)


class TLSStringTransport(StringTransport):
    """A StringTransport that, like a TLS transport, has an OpenSSL connection."""

    def __init__(self, peerAddress: object = None) -> None:
        super().__init__(peerAddress=peerAddress)
        self.handle = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)

    def getHandle(self) -> SSL.Connection:
        """The (never connected) OpenSSL connection, as TLS transports return."""
        return self.handle


def _connect(
    factory: EchoServerFactory | None = None, peer: object = PEER
) -> tuple[EchoServerFactory, EchoServerProtocol, StringTransport]:
    """A protocol built by a factory (on a Clock) and connected to a TLS-like transport."""
    factory = factory or EchoServerFactory(clock=Clock())
    protocol = factory.buildProtocol(peer)
    transport = TLSStringTransport(peerAddress=peer)
    protocol.makeConnection(transport)
    return factory, protocol, transport


def _connection_events(events: list[LogEvent], protocol: object) -> list[LogEvent]:
    """The events logged by C{protocol} itself."""
    return [e for e in events if e.get("log_source") is protocol]


def test_echoes_bytes_in_order() -> None:
    """Every byte received is written back, in the order received."""
    _, protocol, transport = _connect()
    for piece in (b"hello ", b"", b"\x00\xff binary ", b"world"):
        protocol.dataReceived(piece)
    assert transport.value() == b"hello \x00\xff binary world"


def test_counts_bytes_received() -> None:
    """bytes_received is the total of every chunk received."""
    _, protocol, _ = _connect()
    protocol.dataReceived(b"abc")
    protocol.dataReceived(b"de" * 1000)
    assert protocol.bytes_received == 2003


def test_echoes_large_chunk_unchanged() -> None:
    """A single large chunk comes back byte for byte."""
    _, protocol, transport = _connect()
    data = bytes(range(256)) * 4096
    protocol.dataReceived(data)
    assert transport.value() == data


def test_registers_transport_as_streaming_producer() -> None:
    """On connection the transport is registered as its own streaming producer."""
    _, _, transport = _connect()
    assert transport.producer is transport
    assert transport.streaming is True


def test_writes_nothing_on_connection() -> None:
    """The server says nothing until the client sends something."""
    _, _, transport = _connect()
    assert transport.value() == b""


def test_handshake_completed_is_recorded() -> None:
    """handshakeCompleted marks the connection as past the TLS handshake."""
    _, protocol, _ = _connect()
    assert protocol.handshake_done is False
    protocol.handshakeCompleted()
    assert protocol.handshake_done is True


def test_plain_transport_needs_no_handshake() -> None:
    """On a transport without TLS the connection counts as established at once."""
    factory = EchoServerFactory(clock=Clock())
    protocol = factory.buildProtocol(PEER)
    protocol.makeConnection(StringTransport(peerAddress=PEER))
    assert protocol.handshake_done is True


def test_factory_builds_echo_protocols_with_itself_as_factory() -> None:
    """buildProtocol returns an EchoServerProtocol whose factory is the factory."""
    factory = EchoServerFactory()
    protocol = factory.buildProtocol(PEER)
    assert isinstance(protocol, EchoServerProtocol)
    assert protocol.factory is factory


def test_factory_tracks_open_connections() -> None:
    """Each connection built by the factory is in its connections set while open."""
    factory, first, _ = _connect()
    _, second, _ = _connect(factory)
    assert factory.connections == {first, second}


def test_factory_forgets_connection_on_connection_lost() -> None:
    """A connection that ends is removed from the factory's connections; others stay."""
    factory, first, _ = _connect()
    _, second, _ = _connect(factory)
    first.connectionLost(Failure(ConnectionDone()))
    assert factory.connections == {second}
    second.connectionLost(Failure(ConnectionLost()))
    assert factory.connections == set()


def test_logs_one_event_per_clean_close(events: list[LogEvent]) -> None:
    """A cleanly closed connection logs one info event with the peer and the reason."""
    _, protocol, _ = _connect()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"12345")
    protocol.connectionLost(Failure(ConnectionDone()))
    (event,) = _connection_events(events, protocol)
    assert event["log_level"] is LogLevel.info
    assert event["peer"] == "192.0.2.7:50123"
    assert event["reason"] == "closed"
    assert event["bytes_in"] == 5
    text = formatEvent(event)
    assert text.startswith("192.0.2.7:50123: closed")
    assert "after 5 bytes" in text


def test_logs_one_event_per_connection_for_several_connections(
    events: list[LogEvent],
) -> None:
    """Each of several connections logs exactly one event of its own."""
    factory, first, _ = _connect()
    _, second, _ = _connect(factory, IPv4Address("TCP", "192.0.2.8", 40000))
    first.connectionLost(Failure(ConnectionDone()))
    second.connectionLost(Failure(ConnectionDone()))
    assert len(_connection_events(events, first)) == 1
    assert len(_connection_events(events, second)) == 1
    assert _connection_events(events, second)[0]["peer"] == "192.0.2.8:40000"


def test_logs_nothing_before_connection_ends(events: list[LogEvent]) -> None:
    """Receiving and echoing data logs no per-connection event."""
    _, protocol, _ = _connect()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"data")
    assert _connection_events(events, protocol) == []


def test_logs_lost_connection_after_handshake_as_closed(events: list[LogEvent]) -> None:
    """A connection lost after the handshake is logged at info level with its reason."""
    _, protocol, _ = _connect()
    protocol.handshakeCompleted()
    protocol.connectionLost(Failure(ConnectionLost()))
    (event,) = _connection_events(events, protocol)
    assert event["log_level"] is LogLevel.info
    assert event["reason"] == "connection lost"
    assert "connection lost" in formatEvent(event)


def test_logs_reset_during_handshake_as_failure(events: list[LogEvent]) -> None:
    """A connection lost before the handshake completed is a warning naming the stage."""
    _, protocol, _ = _connect()
    protocol.connectionLost(Failure(ConnectionLost()))
    (event,) = _connection_events(events, protocol)
    assert event["log_level"] is LogLevel.warn
    assert formatEvent(event) == "192.0.2.7:50123: TLS handshake failed: connection lost"


def test_logs_ipv6_peer_in_brackets(events: list[LogEvent]) -> None:
    """An IPv6 peer is logged as [address]:port."""
    _, protocol, _ = _connect(peer=IPv6Address("TCP", "::1", 4433))
    protocol.connectionLost(Failure(ConnectionDone()))
    (event,) = _connection_events(events, protocol)
    assert event["peer"] == "[::1]:4433"
    assert "[::1]:4433" in formatEvent(event)


def test_connection_is_counted_as_ended_even_if_describing_raises(
    events: list[LogEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    """If describing a connection raised anyway, the factory still forgets it and the
    log says so in one line."""
    factory, protocol, _ = _connect()

    def broken(reason: object) -> object:
        raise RuntimeError("describing failed\x1b[2J")

    monkeypatch.setattr(protocol, "_fields", broken)
    protocol.connectionLost(Failure(ConnectionDone()))
    assert factory.connections == set()
    (event,) = _connection_events(events, protocol)
    text = formatEvent(event)
    assert "could not be described (RuntimeError: describing failed\\x1b[2J)" in text
    assert "\x1b" not in text
