"""The streaming echo protocol: send input as it comes, check its echo as it arrives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener, IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from .._settings._errors import EchoError
from ._comparator import EchoComparator
from ._owed_timer import OwedTimer
from ._stream_outcome import stream_outcome

__all__ = ["MAX_OUTSTANDING", "EchoStreamProtocol"]

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
        self._timer = OwedTimer(clock, timeout, self.abort_after_timeout)
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
            self._timer.disarm()
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
        owed = (
            self.handshake_done
            and not self._over
            and (self._echo.outstanding > 0 or self._closing)
        )
        self._timer.arm(owed, restart)

    def abort_after_timeout(self, seconds: float) -> None:
        """
        Give up: what was owed did not come within C{seconds}.
        """
        self._timed_out_after = seconds
        self._timer.disarm()
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
        self._timer.disarm()
        outcome = stream_outcome(
            reason,
            self._echo,
            self.transport,
            handshake_done=self.handshake_done,
            closing=self._closing,
            local=self._local,
            timed_out_after=self._timed_out_after,
        )
        self._lost = True
        self._steer_source()
        if outcome is None:
            self.done.callback(None)
        else:
            self.done.errback(outcome)
