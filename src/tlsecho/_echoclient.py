"""
The echo client: send a payload, collect what comes back, check it is identical.

L{echo} connects through any client endpoint (tlsecho's L{tlsecho.client_endpoint}
puts TLS on it) and returns a C{Deferred} that fires with the echoed bytes, or
fails with an L{EchoError} whose type says what went wrong: could not connect, TLS
handshake or certificate failure, connection dropped, or a differing echo.
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
    Send C{payload} once connected; fire C{result} with the bytes echoed back.

    When as many bytes as were sent have come back (and match), the client
    closes the connection cleanly (TLS close_notify in both directions) and
    C{result} fires.  The clean close also surfaces a server's late refusal,
    such as a TLS 1.3 server rejecting the client certificate after the
    handshake.

    @ivar result: Fires with the echoed bytes, or fails with an L{EchoError}.
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
        self._received: list[bytes] = []
        self._count = 0
        self._mismatch: EchoMismatch | None = None
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
        Collect echoed bytes, checking each piece against what was sent.
        """
        start = self._count
        self._count += len(data)
        self._received.append(data)
        expected = self._payload[start : self._count]
        if data != expected:
            offset = start + next(
                (i for i, (a, b) in enumerate(zip(data, expected, strict=False)) if a != b),
                min(len(data), len(expected)),
            )
            self._mismatch = EchoMismatch(
                f"echo differs from what was sent at byte {offset}"
                + (
                    f" (received {self._count} bytes, sent {len(self._payload)})"
                    if self._count > len(self._payload)
                    else ""
                )
            )
            self._transport.loseConnection()
        elif self._count == len(self._payload):
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

    def _outcome(self, reason: Failure) -> bytes | EchoError:
        if self._timed_out_after is not None:
            if not self.handshake_done:
                return HandshakeFailed(
                    f"TLS handshake timed out after {self._timed_out_after:g}s"
                )
            return ConnectionDropped(
                f"timed out after {self._timed_out_after:g}s waiting for the echo "
                f"({self._count} of {len(self._payload)} bytes back)"
            )
        if is_tls_failure(reason):
            why = describe_failure(reason, self.transport)
            if not self.handshake_done or self._count == 0:
                # Includes TLS 1.3, where a refused client certificate is only
                # reported after the client's side of the handshake is done.
                return HandshakeFailed(why)
            return ConnectionDropped(
                f"TLS error after {self._count} of {len(self._payload)} bytes: {why}"
            )
        if self._mismatch is not None:
            return self._mismatch
        if self._count < len(self._payload) or not self.handshake_done:
            stage = "" if self.handshake_done else " during the TLS handshake"
            return (HandshakeFailed if not self.handshake_done else ConnectionDropped)(
                f"connection closed by the server{stage} after {self._count} of "
                f"{len(self._payload)} bytes ({describe_failure(reason, self.transport)})"
            )
        return b"".join(self._received)


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
    @return: Fires with the echoed bytes (equal to C{payload}), or fails with
        L{ConnectFailed}, L{HandshakeFailed}, L{ConnectionDropped} or
        L{EchoMismatch}.
    """
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = cast(IReactorTime, _reactor)
    assert reactor is not None
    return ensureDeferred(_echo(endpoint, payload, reactor, timeout, on_handshake))
