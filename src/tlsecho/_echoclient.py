"""
The echo client: send a payload, check what comes back as it arrives.

L{echo} connects through any client endpoint (tlsecho's L{tlsecho.client_endpoint}
puts TLS on it) and returns a C{Deferred} that fires with the echoed bytes, or
fails with an L{EchoError} whose type says what went wrong: could not connect, TLS
handshake or certificate failure, connection dropped, or a differing echo.  The
echo is compared as it is read (L{EchoComparator}) and never collected: the first
wrong byte, or the first byte past the payload, ends the connection at once, so
the client's memory is bounded by its own payload whatever the server sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import (
    IHandshakeListener,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from ._comparator import EchoComparator, count_bytes
from ._diagnosis import describe_failure, is_tls_failure
from ._errors import (
    ConnectFailed,
    ConnectionDropped,
    EchoError,
    EchoMismatch,
    HandshakeFailed,
)

__all__ = ["EchoClientProtocol", "echo"]


@implementer(IHandshakeListener)
class EchoClientProtocol(Protocol):
    """
    Send C{payload} once connected; fire C{result} once it has all come back.

    Each piece of the echo is compared with the payload as it arrives, and
    dropped.  When as many bytes as were sent have come back (and match), the
    client closes the connection cleanly (TLS close_notify in both directions)
    and C{result} fires.  The clean close also surfaces a server's late
    refusal, such as a TLS 1.3 server rejecting the client certificate after
    the handshake, and any bytes it sends past the echo.  The first byte that
    differs, or that comes past the payload, aborts the connection at once:
    nothing the server sends after it is read.

    @ivar result: Fires with the echoed bytes (the payload, which they equal),
        or fails with an L{EchoError}.
    @ivar handshake_done: Whether the TLS handshake completed.
    """

    def __init__(self, payload: bytes, on_handshake: Callable[[Any], None] | None = None):
        """
        @param payload: The bytes to send.
        @param on_handshake: Called with the transport when the TLS handshake
            completes, to inspect the connection (version, cipher, ALPN).
        """
        self._on_handshake = on_handshake
        self._payload = payload
        self._echo = EchoComparator()
        self._timed_out_after: float | None = None
        self.handshake_done = False
        self.result: Deferred[bytes] = Deferred()

    @property
    def _transport(self) -> Any:
        assert self.transport is not None, "not connected"
        return self.transport

    def connectionMade(self) -> None:
        """
        Send the whole payload (TLS holds it until the handshake is done).
        """
        self._echo.expect(self._payload)
        if self._payload:
            self._transport.write(self._payload)

    def handshakeCompleted(self) -> None:
        """
        Note the handshake; with nothing to send, close at once.
        """
        self.handshake_done = True
        if self._on_handshake is not None:
            self._on_handshake(self.transport)
        if not self._payload:
            self._transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        """
        Compare echoed bytes with the payload; stop at the first wrong one.
        """
        if self._echo.fault is not None:
            return  # Already aborted; the transport may still hand over a chunk.
        if self._echo.receive(data) is not None:
            # No clean close: it would wait for the server's close_notify while
            # the server goes on sending.
            self._transport.abortConnection()
        elif self._echo.complete:
            self._transport.loseConnection()

    def abort_after_timeout(self, seconds: float) -> None:
        """
        Give up: the exchange took longer than C{seconds}.
        """
        self._timed_out_after = seconds
        self._transport.abortConnection()

    def connectionLost(self, reason: Failure | None = None) -> None:
        """
        Fire C{result} with the echo, or with the L{EchoError} that explains it.
        """
        assert reason is not None
        outcome = self._outcome(reason)
        if isinstance(outcome, EchoError):
            self.result.errback(outcome)
        else:
            self.result.callback(outcome)

    def _progress(self) -> str:
        """How much of the echo came back, for messages."""
        return f"{self._echo.matched} of {self._echo.sent} bytes"

    def _outcome(self, reason: Failure) -> bytes | EchoError:
        fault = self._echo.fault
        if fault is not None:
            # Whatever ended the connection afterwards, the wrong byte decides.
            return EchoMismatch(fault.reason, fault.offset)
        if self._timed_out_after is not None:
            after = f"timed out after {self._timed_out_after:g}s"
            if not self.handshake_done:
                return HandshakeFailed(f"TLS handshake {after}")
            if self._echo.complete:
                return ConnectionDropped(
                    f"{after} waiting for the server to close the connection, "
                    + (
                        f"after the whole echo ({count_bytes(self._echo.sent)}) "
                        "came back intact"
                        if self._echo.sent
                        else "with nothing to echo"
                    )
                )
            if self._echo.matched == 0:
                return ConnectionDropped(
                    f"{after} waiting for the echo: none of the "
                    f"{count_bytes(self._echo.sent)} sent came back"
                )
            return ConnectionDropped(
                f"{after} waiting for the echo: {self._progress()} came back, all matching"
            )
        if is_tls_failure(reason):
            why = describe_failure(reason, self.transport)
            if not self.handshake_done or self._echo.matched == 0:
                # Includes TLS 1.3, where a refused client certificate is only
                # reported after the client's side of the handshake is done.
                return HandshakeFailed(why)
            return ConnectionDropped(f"TLS error after {self._progress()}: {why}")
        if not self._echo.complete or not self.handshake_done:
            stage = "" if self.handshake_done else " during the TLS handshake"
            return (HandshakeFailed if not self.handshake_done else ConnectionDropped)(
                f"connection closed by the server{stage} after {self._progress()} "
                f"({describe_failure(reason, self.transport)})"
            )
        return self._payload


async def _echo(
    endpoint: IStreamClientEndpoint,
    payload: bytes,
    reactor: IReactorTime,
    timeout: float,
    on_handshake: Callable[[Any], None] | None,
) -> bytes:
    protocol = EchoClientProtocol(payload, on_handshake)
    connecting = connectProtocol(endpoint, protocol)
    timed_out = False

    def on_timeout() -> None:
        nonlocal timed_out
        timed_out = True
        if connecting.called:
            protocol.abort_after_timeout(timeout)
        else:
            connecting.cancel()

    timer = reactor.callLater(timeout, on_timeout)
    try:
        try:
            await connecting
        except Exception:
            reason = Failure()
            if timed_out:
                raise ConnectFailed(f"timed out connecting after {timeout:g}s") from None
            raise ConnectFailed(describe_failure(reason)) from None
        return await protocol.result
    finally:
        if timer.active():
            timer.cancel()


def echo(
    endpoint: IStreamClientEndpoint,
    payload: bytes,
    reactor: IReactorTime | None = None,
    timeout: float = 30.0,
    on_handshake: Callable[[Any], None] | None = None,
) -> Deferred[bytes]:
    """
    Send C{payload} through C{endpoint} and check the server echoes it exactly.

    @param endpoint: Where to connect; for TLS, a L{tlsecho.client_endpoint}.
    @param payload: The bytes to send (any size, including none).
    @param reactor: Clock for the timeout; the global reactor by default.
    @param timeout: Seconds for the whole exchange.
    @param on_handshake: Called with the TLS transport once the handshake is
        done (see L{EchoClientProtocol}).
    @return: Fires with the echoed bytes (equal to C{payload}, and returned
        as C{payload} itself: the echo is compared as it arrives, never
        collected), or fails with L{ConnectFailed}, L{HandshakeFailed},
        L{ConnectionDropped} or L{EchoMismatch}.  The first byte that differs
        from C{payload}, or that comes past its end, fails it at once with an
        L{EchoMismatch} whose C{offset} names that byte; nothing the server
        sends afterwards is read, so memory stays bounded by C{payload}.
    """
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = cast(IReactorTime, _reactor)
    assert reactor is not None
    return ensureDeferred(_echo(endpoint, payload, reactor, timeout, on_handshake))
