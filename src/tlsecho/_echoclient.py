"""
The echo client: send bytes, check what comes back as it arrives.

L{echo} connects through any client endpoint (tlsecho's L{tlsecho.client_endpoint}
puts TLS on it) and returns a C{Deferred} that fires with the echoed bytes, or
fails with an L{EchoError} whose type says what went wrong: could not connect, TLS
handshake or certificate failure, connection dropped, or a differing echo.  The
echo is compared as it is read (L{EchoComparator}) and never collected: the first
wrong byte, or the first byte past the payload, ends the connection at once, so
the client's memory is bounded by its own payload whatever the server sends.

L{EchoStreamProtocol} (with L{echo_stream}) does the same for input that arrives
over time, such as C{tlsecho client}'s standard input: it sends each chunk as it
comes, hands each piece of the echo that matched to a callback, and stops reading
its input while more than L{MAX_OUTSTANDING} bytes await their echo or the
connection cannot take more, so neither a fast input nor a slow server makes it
buffer without bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    IPushProducer,
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

__all__ = [
    "MAX_OUTSTANDING",
    "EchoClientProtocol",
    "EchoStreamProtocol",
    "echo",
    "echo_stream",
]

#: How many bytes sent may await their echo before L{EchoStreamProtocol} stops
#: reading its input (it resumes once the echo catches up).
MAX_OUTSTANDING = 1024 * 1024


@implementer(IHandshakeListener, IPushProducer)
class EchoStreamProtocol(Protocol):
    """
    Send bytes as they come (L{send}); check the echo as it arrives; close once
    the input is over (L{finish}) and its echo is all back.

    Each piece of the echo is compared with what was sent as it arrives, handed
    to C{on_echo} (only bytes that matched), and dropped.  Once the input is over
    and as many bytes as were sent have come back, the client closes the
    connection cleanly (TLS close_notify in both directions) and L{done} fires.
    The clean close also surfaces a server's late refusal, such as a TLS 1.3
    server rejecting the client certificate after the handshake, and any bytes
    it sends past the echo.  The first byte that differs, or that comes past
    what was sent, aborts the connection at once: nothing the server sends
    after it is read.

    An input L{read_from} a push producer is started once connected, paused
    while more than L{MAX_OUTSTANDING} bytes await their echo or the transport
    cannot take more, and stopped when the connection ends.  With a C{clock}
    and C{timeout}, the connection is given up when an echo is owed (bytes
    sent, or the server's close after ours) and nothing comes back for
    C{timeout} seconds; while nothing is owed, it may stay open indefinitely.

    @ivar done: Fires with L{None} once the whole echo came back intact and
        the connection closed cleanly, or fails with an L{EchoError}.
    @ivar handshake: Fires with L{None} when the TLS handshake completes.
    @ivar handshake_done: Whether the TLS handshake completed.
    """

    def __init__(
        self,
        on_handshake: Callable[[Any], None] | None = None,
        on_echo: Callable[[bytes], None] | None = None,
        clock: IReactorTime | None = None,
        timeout: float | None = None,
    ):
        """
        @param on_handshake: Called with the transport when the TLS handshake
            completes, to inspect the connection (version, cipher, ALPN).
        @param on_echo: Called with each piece of the echo that matched, in order.
        @param clock: With C{timeout}, for the longest wait for an owed echo.
        @param timeout: Seconds.
        """
        self._on_handshake = on_handshake
        self._on_echo = on_echo
        self._clock = clock
        self._timeout = timeout
        self._timer: IDelayedCall | None = None
        self._echo = EchoComparator()
        self._source: IPushProducer | None = None
        self._source_paused = True
        self._source_stopped = False
        self._transport_paused = False
        self._producing = False
        self._finished = False
        self._closing = False
        self._lost = False
        self._local: EchoError | None = None
        self._timed_out_after: float | None = None
        self.handshake_done = False
        self.handshake: Deferred[None] = Deferred()
        self.done: Deferred[None] = Deferred()

    @property
    def _transport(self) -> Any:
        assert self.transport is not None, "not connected"
        return self.transport

    @property
    def outstanding(self) -> int:
        """How many bytes sent have not come back yet."""
        return self._echo.outstanding

    def read_from(self, source: IPushProducer) -> None:
        """
        Take the input from C{source}, a push producer that calls L{send} and
        L{finish} and has not started yet: it is resumed once connected.
        """
        self._source = source

    def connectionMade(self) -> None:
        """
        Start the input, if there is one (TLS holds what is sent until the
        handshake is done).
        """
        if self._source is not None:
            self._transport.registerProducer(self, True)
            self._producing = True
            self._steer_source()

    def send(self, data: bytes) -> None:
        """
        Send C{data} (once connected), after everything sent before; its echo
        is owed from now.  Ignored once the exchange is over or the input
        finished.
        """
        if self._over or self._finished:
            return
        self._echo.expect(data)
        if data:
            self._transport.write(data)
        self._arm()
        self._steer_source()

    def finish(self) -> None:
        """
        The input is over: close once its echo is all back.
        """
        self._finished = True
        self._steer_source()
        self._close_if_done()

    def abort_with(self, error: EchoError) -> None:
        """
        Give up with C{error} (a local failure: the input could not be read, the
        echo could not be written out), unless the outcome is already known.
        """
        if self._over:
            return
        self._local = error
        self._transport.abortConnection()

    @property
    def _over(self) -> bool:
        return (
            self._lost
            or self._echo.fault is not None
            or self._local is not None
            or self._timed_out_after is not None
        )

    def handshakeCompleted(self) -> None:
        """
        Note the handshake; with nothing more to send, close at once.
        """
        self.handshake_done = True
        self.handshake.callback(None)
        if self._on_handshake is not None:
            self._on_handshake(self.transport)
        self._arm()
        self._close_if_done()

    def dataReceived(self, data: bytes) -> None:
        """
        Compare echoed bytes with those sent; stop at the first wrong one.
        """
        if self._over:
            return  # Already aborted; the transport may still hand over a chunk.
        before = self._echo.matched
        fault = self._echo.receive(data)
        matched = self._echo.matched - before
        if matched and self._on_echo is not None:
            self._on_echo(data[:matched] if matched < len(data) else data)
        if fault is not None:
            # No clean close: it would wait for the server's close_notify while
            # the server goes on sending.
            self._disarm()
            self._transport.abortConnection()
            return
        if self._over:
            return  # on_echo gave up
        if matched:
            self._arm(restart=True)
        self._close_if_done()
        self._steer_source()

    def _close_if_done(self) -> None:
        if (
            self._finished
            and self.handshake_done
            and self._echo.complete
            and not self._closing
            and not self._over
        ):
            self._closing = True
            if self._producing:
                # TLS waits for its producer to go before it closes.
                self._producing = False
                self._transport.unregisterProducer()
            self._transport.loseConnection()
            self._arm(restart=True)

    # Timing ------------------------------------------------------------------

    def _arm(self, restart: bool = False) -> None:
        """
        Run the timer while an echo is owed (restarting it on progress);
        stop it while nothing is.
        """
        if self._clock is None or self._timeout is None:
            return
        owed = (
            self.handshake_done
            and not self._over
            and (self._echo.outstanding > 0 or self._closing)
        )
        if not owed:
            self._disarm()
        elif self._timer is None or restart:
            self._disarm()
            self._timer = self._clock.callLater(self._timeout, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        assert self._timeout is not None
        self.abort_after_timeout(self._timeout)

    def abort_after_timeout(self, seconds: float) -> None:
        """
        Give up: what was owed did not come within C{seconds}.
        """
        self._timed_out_after = seconds
        self._disarm()
        self._transport.abortConnection()

    # The input ---------------------------------------------------------------

    def pauseProducing(self) -> None:
        """
        The transport is full: stop reading the input.
        """
        self._transport_paused = True
        self._steer_source()

    def resumeProducing(self) -> None:
        """
        The transport can take more: read the input again (if the echo
        is not too far behind).
        """
        self._transport_paused = False
        self._steer_source()

    def stopProducing(self) -> None:
        """
        The connection is going: stop the input for good.
        """
        self._producing = False
        self._steer_source()

    def _steer_source(self) -> None:
        """Start, pause, resume or stop the input to suit the connection."""
        source = self._source
        if source is None or self._source_stopped:
            return
        if self._over or self._closing or (not self._producing and self._lost):
            self._source_stopped = True
            source.stopProducing()
            return
        if self._finished or self.transport is None:
            return
        paused = (
            not self._producing
            or self._transport_paused
            or self._echo.outstanding >= MAX_OUTSTANDING
        )
        if paused != self._source_paused:
            self._source_paused = paused
            if paused:
                source.pauseProducing()
            else:
                source.resumeProducing()

    # The outcome -------------------------------------------------------------

    def connectionLost(self, reason: Failure | None = None) -> None:
        """
        Fire L{done}, or fail it with the L{EchoError} that explains it.
        """
        assert reason is not None
        self._disarm()
        outcome = self._outcome(reason)
        self._lost = True
        self._steer_source()
        if outcome is None:
            self.done.callback(None)
        else:
            self.done.errback(outcome)

    def _progress(self) -> str:
        """How much of the echo came back, for messages."""
        return f"{self._echo.matched} of {self._echo.sent} bytes"

    def _outcome(self, reason: Failure) -> EchoError | None:
        fault = self._echo.fault
        if fault is not None:
            # Whatever ended the connection afterwards, the wrong byte decides.
            return EchoMismatch(fault.reason, fault.offset)
        if self._local is not None:
            return self._local
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
        if not self._closing or not self.handshake_done:
            stage = "" if self.handshake_done else " during the TLS handshake"
            early = (
                ", before the end of the input"
                if self.handshake_done and self._echo.complete
                else ""
            )
            return (HandshakeFailed if not self.handshake_done else ConnectionDropped)(
                f"connection closed by the server{stage} after {self._progress()}"
                f"{early} ({describe_failure(reason, self.transport)})"
            )
        return None


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
