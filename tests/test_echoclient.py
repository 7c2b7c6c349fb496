"""
Tests for the echo client protocols (one payload, and streamed input) on a
StringTransport, and for L{tlsecho.echo} and C{echo_stream} with fake endpoints and a
L{Clock}: no reactor, no sockets, no TLS.

The TLS layer is played by hand: C{handshakeCompleted} is called when the handshake
would finish, and C{connectionLost} with the reason TLS would report.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import (
    ConnectionAborted,
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
    DNSLookupError,
)
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IPushProducer,
    IStreamClientEndpoint,
)
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from tlsecho import (
    ConnectFailed,
    ConnectionDropped,
    EchoClientProtocol,
    EchoError,
    EchoMismatch,
    HandshakeFailed,
    echo,
)
from tlsecho._net._echoclient import echo_stream
from tlsecho._net._echostream import MAX_OUTSTANDING, EchoStreamProtocol

PAYLOAD = b"hello"


def _connected(payload: bytes = PAYLOAD) -> tuple[EchoClientProtocol, StringTransport]:
    """A client protocol connected to a StringTransport."""
    protocol = EchoClientProtocol(payload)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def _result(deferred: Deferred[Any]) -> Any:
    """What C{deferred} has fired with (a value or a Failure), asserting it has fired."""
    results: list[Any] = []
    deferred.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


def _error(deferred: Deferred[Any], kind: type[EchoError]) -> EchoError:
    """The exception C{deferred} failed with, asserting its type is exactly C{kind}."""
    outcome = _result(deferred)
    assert isinstance(outcome, Failure), f"expected a failure, got {outcome!r}"
    assert type(outcome.value) is kind, f"expected {kind.__name__}, got {outcome.value!r}"
    return outcome.value


def _tls_error(reason: str) -> SSL.Error:
    """An OpenSSL error as pyOpenSSL raises it, with one reason string."""
    return SSL.Error([("SSL routines", "", reason)])


def test_sends_payload_on_connection() -> None:
    """The whole payload is written as soon as the connection is made."""
    _, transport = _connected(b"some payload")
    assert transport.value() == b"some payload"


def test_result_not_fired_while_echo_incomplete() -> None:
    """Until the connection ends, the result has not fired."""
    protocol, transport = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(PAYLOAD[:2])
    results: list[object] = []
    protocol.result.addBoth(results.append)
    assert results == []
    assert transport.disconnecting is False


def test_closes_when_all_bytes_came_back() -> None:
    """The client closes the connection once as many bytes as it sent came back."""
    protocol, transport = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"hel")
    assert transport.disconnecting is False
    protocol.dataReceived(b"lo")
    assert transport.disconnecting is True


def test_result_fires_with_echoed_bytes() -> None:
    """After the full echo and a clean close, the result fires with the echoed bytes."""
    protocol, _ = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"he")
    protocol.dataReceived(b"llo")
    protocol.connectionLost(Failure(ConnectionDone()))
    assert _result(protocol.result) == PAYLOAD


def test_result_fires_with_echo_delivered_one_byte_at_a_time() -> None:
    """An echo that arrives one byte at a time is reassembled in order."""
    payload = bytes(range(256))
    protocol, _ = _connected(payload)
    protocol.handshakeCompleted()
    for i in range(len(payload)):
        protocol.dataReceived(payload[i : i + 1])
    protocol.connectionLost(Failure(ConnectionDone()))
    assert _result(protocol.result) == payload


def test_differing_byte_is_mismatch_naming_offset() -> None:
    """A differing byte fails the result with EchoMismatch naming its offset."""
    protocol, transport = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"helXo")
    assert transport.disconnecting is True
    protocol.connectionLost(Failure(ConnectionDone()))
    error = _error(protocol.result, EchoMismatch)
    assert (
        error.reason
        == "echo differs from what was sent at byte 3: sent 0x6c, received 0x58"
    )
    assert error.offset == 3


def test_differing_byte_in_later_chunk_names_offset_in_whole_echo() -> None:
    """The offset of a mismatch counts from the start of the echo, not of the chunk."""
    protocol, _ = _connected(b"abcdefgh")
    protocol.handshakeCompleted()
    protocol.dataReceived(b"abcd")
    protocol.dataReceived(b"eZgh")
    protocol.connectionLost(Failure(ConnectionDone()))
    assert "at byte 5" in _error(protocol.result, EchoMismatch).reason


def test_differing_first_byte_is_offset_zero() -> None:
    """A difference in the very first byte is reported at byte 0."""
    protocol, _ = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"Xello")
    protocol.connectionLost(Failure(ConnectionDone()))
    assert "at byte 0" in _error(protocol.result, EchoMismatch).reason


def test_extra_bytes_are_mismatch() -> None:
    """More bytes back than were sent is a mismatch at the first extra byte."""
    protocol, transport = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"hello!!")
    assert transport.disconnecting is True
    protocol.connectionLost(Failure(ConnectionDone()))
    error = _error(protocol.result, EchoMismatch)
    assert error.reason == "echo runs past what was sent at byte 5: only 5 bytes were sent"
    assert error.offset == 5


def test_extra_bytes_after_the_whole_echo_are_mismatch() -> None:
    """Bytes arriving after the whole echo (while closing) are a mismatch there."""
    protocol, transport = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"hello")
    assert transport.disconnecting is True
    protocol.dataReceived(b"!")
    protocol.connectionLost(Failure(ConnectionDone()))
    assert _error(protocol.result, EchoMismatch).offset == 5


def test_wrong_byte_aborts_instead_of_closing_cleanly() -> None:
    """A wrong byte aborts the connection: no wait for a close_notify from a server
    that may never stop sending."""
    protocol, transport = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"hello!")
    assert transport.disconnected is True


def test_bytes_after_the_wrong_one_are_not_kept() -> None:
    """Whatever arrives after a wrong byte is dropped unread: memory stays flat."""
    protocol, _ = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"hello!")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(256):
            # Distinct 64 KiB objects (16 MiB in all), as a real transport hands over.
            protocol.dataReceived(bytes(bytearray(65536)))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 256 * 1024, grown
    protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(protocol.result, EchoMismatch).offset == 5


def test_echo_is_compared_not_collected() -> None:
    """A correct echo in many pieces is not collected: the result is the payload."""
    payload = bytes(range(256)) * 64
    protocol, _ = _connected(payload)
    protocol.handshakeCompleted()
    for i in range(0, len(payload), 1000):
        protocol.dataReceived(bytes(payload[i : i + 1000]))
    protocol.connectionLost(Failure(ConnectionDone()))
    assert _result(protocol.result) is payload


def test_wrong_byte_wins_over_a_later_timeout() -> None:
    """A wrong byte is reported as such even if the timeout fires before the close."""
    protocol, _ = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"Hello")
    protocol.abort_after_timeout(3)
    protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(protocol.result, EchoMismatch).offset == 0


def test_wrong_byte_wins_over_a_later_tls_error() -> None:
    """A wrong byte is reported as such even if TLS then fails."""
    protocol, _ = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"helLo")
    protocol.connectionLost(Failure(_tls_error("record layer failure")))
    assert _error(protocol.result, EchoMismatch).reason == (
        "echo differs from what was sent at byte 3: sent 0x6c, received 0x4c"
    )


def test_mismatch_wins_over_clean_close_with_all_bytes() -> None:
    """An echo of the right length with a differing byte never succeeds."""
    protocol, _ = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"hellO")
    protocol.connectionLost(Failure(ConnectionDone()))
    assert "at byte 4" in _error(protocol.result, EchoMismatch).reason


def test_closed_early_after_handshake_is_connection_dropped() -> None:
    """Closed after the handshake, before the full echo: ConnectionDropped."""
    protocol, _ = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"he")
    protocol.connectionLost(Failure(ConnectionDone()))
    error = _error(protocol.result, ConnectionDropped)
    assert "closed by the server" in error.reason
    assert "after 2 of 5 bytes" in error.reason


def test_lost_early_after_handshake_is_connection_dropped() -> None:
    """A connection lost (not cleanly closed) mid-echo is ConnectionDropped saying so."""
    protocol, _ = _connected()
    protocol.handshakeCompleted()
    protocol.connectionLost(Failure(ConnectionLost()))
    error = _error(protocol.result, ConnectionDropped)
    assert "after 0 of 5 bytes" in error.reason
    assert "connection lost" in error.reason


def test_closed_before_handshake_is_handshake_failed() -> None:
    """A connection closed before the handshake completed is HandshakeFailed."""
    protocol, _ = _connected()
    protocol.connectionLost(Failure(ConnectionDone()))
    error = _error(protocol.result, HandshakeFailed)
    assert "during the TLS handshake" in error.reason


def test_closed_before_handshake_with_empty_payload_is_handshake_failed() -> None:
    """With nothing to send, a close before the handshake is still HandshakeFailed."""
    protocol, _ = _connected(b"")
    protocol.connectionLost(Failure(ConnectionDone()))
    _error(protocol.result, HandshakeFailed)


def test_tls_error_before_any_echo_is_handshake_failed() -> None:
    """A TLS error before any echoed byte is HandshakeFailed, described in words."""
    protocol, _ = _connected()
    protocol.connectionLost(Failure(_tls_error("tlsv1 alert unknown ca")))
    error = _error(protocol.result, HandshakeFailed)
    assert error.reason == "the peer does not trust our certificate (unknown CA)"


def test_tls_error_mid_echo_is_connection_dropped() -> None:
    """A TLS error after part of the echo came back is ConnectionDropped."""
    protocol, _ = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"hel")
    protocol.connectionLost(Failure(_tls_error("record layer failure")))
    error = _error(protocol.result, ConnectionDropped)
    assert "TLS error after 3 of 5 bytes" in error.reason


def test_empty_payload_sends_nothing() -> None:
    """A zero-length payload writes nothing on connection."""
    _, transport = _connected(b"")
    assert transport.value() == b""
    assert transport.disconnecting is False


def test_empty_payload_closes_right_after_handshake() -> None:
    """A zero-length payload closes as soon as the handshake completes."""
    protocol, transport = _connected(b"")
    protocol.handshakeCompleted()
    assert transport.disconnecting is True
    protocol.connectionLost(Failure(ConnectionDone()))
    assert _result(protocol.result) == b""


def test_abort_after_timeout_during_handshake_is_handshake_failed() -> None:
    """Timing out before the handshake aborts the connection and is HandshakeFailed."""
    protocol, transport = _connected()
    protocol.abort_after_timeout(7)
    assert transport.disconnecting is True
    protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(protocol.result, HandshakeFailed).reason == (
        "TLS handshake timed out after 7s"
    )


def test_abort_after_timeout_mid_echo_is_connection_dropped() -> None:
    """Timing out while waiting for the echo is ConnectionDropped with the progress."""
    protocol, _ = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"he")
    protocol.abort_after_timeout(2.5)
    protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(protocol.result, ConnectionDropped).reason == (
        "timed out after 2.5s waiting for the echo: 2 of 5 bytes came back, all matching"
    )


def test_abort_after_timeout_with_empty_payload_says_nothing_was_to_echo() -> None:
    """Timing out waiting for the close, with nothing sent, says there was no echo."""
    protocol, _ = _connected(b"")
    protocol.handshakeCompleted()
    protocol.abort_after_timeout(4)
    protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(protocol.result, ConnectionDropped).reason == (
        "timed out after 4s waiting for the server to close the connection, "
        "with nothing to echo"
    )


def test_abort_after_timeout_with_one_byte_sent_is_singular() -> None:
    """A one-byte payload that never came back is spoken of in the singular."""
    protocol, _ = _connected(b"x")
    protocol.handshakeCompleted()
    protocol.abort_after_timeout(4)
    protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(protocol.result, ConnectionDropped).reason == (
        "timed out after 4s waiting for the echo: none of the 1 byte sent came back"
    )


def test_abort_after_timeout_waiting_for_close_says_echo_was_intact() -> None:
    """Timing out after the whole echo, waiting for the server's close, says so."""
    protocol, _ = _connected()
    protocol.handshakeCompleted()
    protocol.dataReceived(b"hello")
    protocol.abort_after_timeout(4)
    protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(protocol.result, ConnectionDropped).reason == (
        "timed out after 4s waiting for the server to close the connection, "
        "after the whole echo (5 bytes) came back intact"
    )


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (EchoMismatch, 1),
        (ConnectionDropped, 1),
        (ConnectFailed, 3),
        (HandshakeFailed, 4),
    ],
)
def test_error_exit_status(kind: type[EchoError], status: int) -> None:
    """Each echo error carries the client exit status DESIGN.md gives it."""
    assert issubclass(kind, EchoError)
    assert kind("why").exit_status == status
    assert kind("why").reason == "why"


@implementer(IStreamClientEndpoint)
class _FailingEndpoint:
    """An endpoint whose connection attempts fail at once with C{reason}."""

    def __init__(self, reason: Exception):
        self.reason = reason

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        return fail(self.reason)


@implementer(IStreamClientEndpoint)
class _HangingEndpoint:
    """An endpoint whose connection attempts never complete (until cancelled)."""

    def __init__(self) -> None:
        self.cancelled = 0

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        def cancel(_: Deferred[IProtocol]) -> None:
            self.cancelled += 1

        return Deferred(cancel)


@implementer(IStreamClientEndpoint)
class _StringEndpoint:
    """An endpoint that connects at once, to a StringTransport."""

    def __init__(self) -> None:
        self.transport = StringTransport()
        self.protocol: Any = None

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 8443))
        assert protocol is not None
        protocol.makeConnection(self.transport)
        self.protocol = protocol
        return succeed(protocol)


def test_echo_connection_refused_is_connect_failed() -> None:
    """echo() fails with ConnectFailed when the endpoint cannot connect."""
    clock = Clock()
    deferred = echo(_FailingEndpoint(ConnectionRefusedError()), b"x", clock, timeout=5)
    assert _error(deferred, ConnectFailed).reason == "connection refused"


def test_echo_name_not_found_is_connect_failed() -> None:
    """echo() fails with ConnectFailed naming a DNS failure."""
    clock = Clock()
    deferred = echo(_FailingEndpoint(DNSLookupError("nowhere")), b"x", clock, timeout=5)
    assert _error(deferred, ConnectFailed).reason == "host name not found"


def test_echo_connect_failure_cancels_timer() -> None:
    """After a failed connection attempt no timeout stays scheduled."""
    clock = Clock()
    _result(echo(_FailingEndpoint(ConnectionRefusedError()), b"x", clock, timeout=5))
    assert clock.getDelayedCalls() == []


def test_echo_times_out_connecting() -> None:
    """echo() gives up a connection attempt that never completes, with ConnectFailed."""
    clock = Clock()
    endpoint = _HangingEndpoint()
    deferred = echo(endpoint, b"x", clock, timeout=5)
    clock.advance(4.9)
    assert not deferred.called
    clock.advance(0.1)
    error = _error(deferred, ConnectFailed)
    assert error.reason == "timed out connecting after 5s"
    assert endpoint.cancelled == 1
    assert clock.getDelayedCalls() == []


def test_echo_fires_with_echoed_bytes() -> None:
    """echo() sends the payload through the endpoint and fires with the echo."""
    clock = Clock()
    endpoint = _StringEndpoint()
    deferred = echo(endpoint, b"ping", clock, timeout=5)
    assert endpoint.transport.value() == b"ping"
    endpoint.protocol.handshakeCompleted()
    endpoint.protocol.dataReceived(b"ping")
    assert endpoint.transport.disconnecting is True
    assert not deferred.called
    endpoint.protocol.connectionLost(Failure(ConnectionDone()))
    assert _result(deferred) == b"ping"
    assert clock.getDelayedCalls() == []


def test_echo_times_out_waiting_for_echo() -> None:
    """echo() aborts a connection whose echo does not come back in time."""
    clock = Clock()
    endpoint = _StringEndpoint()
    deferred = echo(endpoint, b"ping", clock, timeout=3)
    endpoint.protocol.handshakeCompleted()
    clock.advance(3)
    assert endpoint.transport.disconnecting is True
    endpoint.protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(deferred, ConnectionDropped).reason == (
        "timed out after 3s waiting for the echo: none of the 4 bytes sent came back"
    )


def test_echo_times_out_during_handshake() -> None:
    """echo() reports a handshake that does not finish in time as HandshakeFailed."""
    clock = Clock()
    endpoint = _StringEndpoint()
    deferred = echo(endpoint, b"ping", clock, timeout=3)
    clock.advance(3)
    endpoint.protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(deferred, HandshakeFailed).reason == "TLS handshake timed out after 3s"


# Streaming ----------------------------------------------------------------------------


@implementer(IPushProducer)
class _Source:
    """A push producer that records what it was told."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @property
    def state(self) -> str:
        return self.calls[-1] if self.calls else "new"

    def pauseProducing(self) -> None:
        self.calls.append("paused")

    def resumeProducing(self) -> None:
        self.calls.append("resumed")

    def stopProducing(self) -> None:
        self.calls.append("stopped")


def _streaming(
    timeout: float | None = None,
) -> tuple[EchoStreamProtocol, StringTransport, _Source, Clock, list[bytes]]:
    """A streaming client connected to a StringTransport, its input, clock and echo."""
    clock = Clock()
    echoed: list[bytes] = []
    protocol = EchoStreamProtocol(on_echo=echoed.append, clock=clock, timeout=timeout)
    source = _Source()
    protocol.read_from(source)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport, source, clock, echoed


def test_stream_starts_its_input_once_connected() -> None:
    """The input is resumed when the connection is made, and the protocol is the
    transport's producer (it hears when the transport is full)."""
    protocol, transport, source, _, _ = _streaming()
    assert source.calls == ["resumed"]
    assert transport.producer is protocol


def test_stream_sends_each_chunk_and_hands_over_the_matching_echo() -> None:
    """Each chunk is written as it is sent; only echoed bytes that match reach on_echo."""
    protocol, transport, _, _, echoed = _streaming()
    protocol.handshakeCompleted()
    protocol.send(b"one\n")
    assert transport.value() == b"one\n"
    protocol.dataReceived(b"on")
    protocol.send(b"two\n")
    assert transport.value() == b"one\ntwo\n"
    protocol.dataReceived(b"e\ntwX")
    assert echoed == [b"on", b"e\ntw"]
    assert transport.disconnected is True
    protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(protocol.done, EchoMismatch).offset == 6


def test_stream_closes_only_after_the_input_ends_and_its_echo_is_back() -> None:
    """The clean close waits for both the end of the input and the whole echo."""
    protocol, transport, _source, _, _ = _streaming()
    protocol.handshakeCompleted()
    protocol.send(b"abc")
    protocol.dataReceived(b"abc")
    assert transport.disconnecting is False  # the input may go on
    protocol.send(b"d")
    protocol.finish()
    assert transport.disconnecting is False  # "d" is owed
    protocol.dataReceived(b"d")
    assert transport.disconnecting is True
    assert transport.producer is None  # TLS closes only once its producer is gone
    protocol.connectionLost(Failure(ConnectionDone()))
    assert _result(protocol.done) is None


def test_stream_pauses_its_input_while_a_mebibyte_awaits_its_echo() -> None:
    """The input is paused while MAX_OUTSTANDING bytes await their echo and resumed
    once the echo catches up."""
    protocol, _, source, _, _ = _streaming()
    protocol.handshakeCompleted()
    chunk = bytes(65536)
    for _ in range(MAX_OUTSTANDING // len(chunk) - 1):
        protocol.send(chunk)
    assert source.state == "resumed"
    protocol.send(chunk)
    assert source.state == "paused"
    protocol.dataReceived(chunk[:1])
    assert source.state == "resumed"


def test_stream_pauses_its_input_while_the_transport_is_full() -> None:
    """When the transport pauses the protocol, the input is paused too."""
    protocol, _, source, _, _ = _streaming()
    protocol.pauseProducing()
    assert source.state == "paused"
    protocol.resumeProducing()
    assert source.state == "resumed"


def test_stream_stops_its_input_when_the_connection_ends() -> None:
    """A connection that ends stops the input for good."""
    protocol, _, source, _, _ = _streaming()
    protocol.connectionLost(Failure(ConnectionLost()))
    assert source.state == "stopped"
    _error(protocol.done, HandshakeFailed)


def test_stream_waits_without_limit_while_nothing_is_owed() -> None:
    """With every echo back, no timer runs: an idle session stays open."""
    protocol, transport, _, clock, _ = _streaming(timeout=3)
    protocol.handshakeCompleted()
    assert clock.getDelayedCalls() == []
    protocol.send(b"x")
    protocol.dataReceived(b"x")
    assert clock.getDelayedCalls() == []
    clock.advance(3600)
    assert transport.disconnecting is False


def test_stream_times_out_when_an_owed_echo_stalls() -> None:
    """The timeout counts from the last progress while an echo is owed."""
    protocol, transport, _, clock, _ = _streaming(timeout=3)
    protocol.handshakeCompleted()
    protocol.send(b"hello")
    clock.advance(2)
    protocol.dataReceived(b"he")  # progress: the wait starts again
    clock.advance(2.9)
    assert transport.disconnecting is False
    clock.advance(0.1)
    assert transport.disconnecting is True
    protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(protocol.done, ConnectionDropped).reason == (
        "timed out after 3s waiting for the echo: 2 of 5 bytes came back, all matching"
    )


def test_stream_times_out_waiting_for_the_servers_close() -> None:
    """After its own close, the client waits at most the timeout for the server's."""
    protocol, _, _, clock, _ = _streaming(timeout=3)
    protocol.handshakeCompleted()
    clock.advance(100)
    protocol.finish()
    clock.advance(3)
    protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(protocol.done, ConnectionDropped).reason == (
        "timed out after 3s waiting for the server to close the connection, "
        "with nothing to echo"
    )


def test_stream_closed_by_the_server_before_the_input_ends_is_dropped() -> None:
    """A server that closes cleanly while the input goes on (a drain, say) ends the
    exchange as ConnectionDropped, even with every echo back."""
    protocol, _, _, _, _ = _streaming()
    protocol.handshakeCompleted()
    protocol.send(b"hi")
    protocol.dataReceived(b"hi")
    protocol.connectionLost(Failure(ConnectionDone()))
    assert _error(protocol.done, ConnectionDropped).reason == (
        "connection closed by the server after 2 of 2 bytes, before the end of the "
        "input (closed)"
    )


def test_stream_local_failure_is_reported_as_given() -> None:
    """abort_with ends the exchange with the error given."""
    protocol, transport, _, _, _ = _streaming()
    protocol.handshakeCompleted()
    protocol.abort_with(ConnectionDropped("cannot read standard input: EIO"))
    assert transport.disconnected is True
    protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(protocol.done, ConnectionDropped).reason == (
        "cannot read standard input: EIO"
    )


def test_echo_stream_gives_connecting_and_the_handshake_the_timeout() -> None:
    """echo_stream's timeout covers connecting and the handshake; once the handshake
    is done, only the protocol's owed-echo timer runs."""
    clock = Clock()
    endpoint = _StringEndpoint()
    protocol = EchoStreamProtocol(clock=clock, timeout=3)
    deferred = echo_stream(endpoint, None, protocol, reactor=clock, timeout=3)
    clock.advance(2)
    protocol.handshakeCompleted()
    clock.advance(60)
    assert endpoint.transport.disconnecting is False
    protocol.finish()
    assert endpoint.transport.disconnecting is True
    protocol.connectionLost(Failure(ConnectionDone()))
    assert _result(deferred) is None
    assert clock.getDelayedCalls() == []


def test_echo_stream_handshake_timeout_is_handshake_failed() -> None:
    """A handshake that does not finish within the timeout is HandshakeFailed."""
    clock = Clock()
    endpoint = _StringEndpoint()
    protocol = EchoStreamProtocol(clock=clock, timeout=3)
    deferred = echo_stream(endpoint, None, protocol, reactor=clock, timeout=3)
    clock.advance(3)
    protocol.connectionLost(Failure(ConnectionAborted()))
    assert _error(deferred, HandshakeFailed).reason == "TLS handshake timed out after 3s"
