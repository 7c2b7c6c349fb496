"""
The echo client: send bytes, check what comes back as it arrives.

L{echo} connects through any client endpoint (tlsecho's L{tlsecho.client_endpoint}
puts TLS on it) and returns a C{Deferred} that fires with the echoed bytes, or
fails with an L{EchoError} whose type says what went wrong: could not connect, TLS
handshake or certificate failure, connection dropped, or a differing echo.  The
echo is compared as it is read (L{EchoComparator}) and never collected: the first
wrong byte, or the first byte past the payload, ends the connection at once, so
the client's memory is bounded by its own payload whatever the server sends.

L{echo_stream} does the same for input that arrives over time, such as
C{tlsecho client}'s standard input, with an L{EchoStreamProtocol} (from
L{tlsecho._net._echostream}): it sends each chunk as it comes, hands each piece of
the echo that matched to a callback, and stops reading its input while more
than its C{MAX_OUTSTANDING} bytes await their echo or the connection cannot take
more, so neither a fast input nor a slow server makes it buffer without bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import IPushProducer, IReactorTime, IStreamClientEndpoint
from twisted.python.failure import Failure

from .._settings._errors import ConnectFailed
from .._tls._diagnosis import describe_failure
from ._echostream import EchoStreamProtocol

__all__ = ["EchoClientProtocol", "echo", "echo_stream"]


class EchoClientProtocol(EchoStreamProtocol):
    """
    Send C{payload} once connected; fire C{result} once it has all come back.

    An L{EchoStreamProtocol} whose whole input is C{payload}: the echo is
    compared as it arrives and dropped, the first byte that differs or comes
    past the payload aborts the connection at once, and once the whole echo came
    back the client closes cleanly.

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
        super().__init__(on_handshake)
        self._payload = payload
        self.result: Deferred[bytes] = Deferred()
        self.done.addCallbacks(self._succeeded, self.result.errback)

    def _succeeded(self, _: None) -> None:
        self.result.callback(self._payload)

    def connectionMade(self) -> None:
        """
        Send the whole payload (TLS holds it until the handshake is done).
        """
        super().connectionMade()
        self.send(self._payload)
        self.finish()


async def _exchange(
    endpoint: IStreamClientEndpoint,
    protocol: EchoStreamProtocol,
    reactor: IReactorTime,
    timeout: float,
    until_handshake: bool,
    outcome: Deferred[Any],
) -> None:
    """
    Connect C{protocol} through C{endpoint} and wait for C{outcome}, giving up
    after C{timeout} seconds: for the whole exchange, or (C{until_handshake})
    for connecting and the TLS handshake.
    """
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
    if until_handshake:
        protocol.handshake.addCallback(lambda _: timer.cancel() if timer.active() else None)
    try:
        try:
            await connecting
        except Exception:
            reason = Failure()
            if timed_out:
                raise ConnectFailed(f"timed out connecting after {timeout:g}s") from None
            raise ConnectFailed(describe_failure(reason)) from None
        await outcome
    finally:
        if timer.active():
            timer.cancel()


async def _echo(
    endpoint: IStreamClientEndpoint,
    payload: bytes,
    reactor: IReactorTime,
    timeout: float,
    on_handshake: Callable[[Any], None] | None,
) -> bytes:
    protocol = EchoClientProtocol(payload, on_handshake)
    await _exchange(
        endpoint, protocol, reactor, timeout, until_handshake=False, outcome=protocol.result
    )
    return payload


def _default_reactor(reactor: IReactorTime | None) -> IReactorTime:
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = cast(IReactorTime, _reactor)
    assert reactor is not None
    return reactor


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
    return ensureDeferred(
        _echo(endpoint, payload, _default_reactor(reactor), timeout, on_handshake)
    )


def echo_stream(
    endpoint: IStreamClientEndpoint,
    source: IPushProducer | None,
    protocol: EchoStreamProtocol,
    reactor: IReactorTime | None = None,
    timeout: float = 30.0,
) -> Deferred[None]:
    """
    Connect C{protocol} through C{endpoint}, feed it from C{source}, and wait
    until the input is over and its whole echo came back.

    @param source: A push producer, not yet started, that calls
        C{protocol.send} and C{protocol.finish}; or L{None} if the caller
        feeds C{protocol} itself.
    @param protocol: Made with the same C{reactor} and C{timeout}, for the
        longest wait for an owed echo.
    @param timeout: Seconds to connect and complete the TLS handshake.
    @return: Fires with L{None}, or fails with an L{EchoError} as L{echo} does.
    """
    if source is not None:
        protocol.read_from(source)
    return ensureDeferred(
        _exchange(
            endpoint,
            protocol,
            _default_reactor(reactor),
            timeout,
            until_handshake=True,
            outcome=protocol.done,
        )
    )
