"""
The echo server protocol and its factory: every byte back, in order, with flow control.

The protocol knows nothing of TLS: it runs on whatever transport it is given, and
tlsecho puts TLS underneath it with an endpoint wrapper.  It registers its own
transport as the producer of what it writes, the usual Twisted idiom for a proxy
or echo: when the peer stops reading and the write buffer fills, the transport
pauses reading from that peer, so a client that never reads costs a bounded
amount of memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.interfaces import IDelayedCall, IHandshakeListener, IPushProducer
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .._settings._text import printable
from .._tls._diagnosis import is_tls_transport
from .._tls._tlsprotocol import unbuffered_write
from ._connection import describe_connection
from ._connlog import MESSAGE, ended_line, fallback_fields
from ._proxy import after_proxy_header

if TYPE_CHECKING:
    from ._echofactory import EchoServerFactory

__all__ = ["MAX_AGE", "EchoServerProtocol"]

#: The reason of a connection closed by C{--max-connection-age}.
MAX_AGE = "max connection age"


@implementer(IHandshakeListener)
class EchoServerProtocol(Protocol):
    """
    Write back every byte received, pausing reads while the peer is not reading.

    A TLS peer that has not finished its handshake within the factory's
    C{handshake_timeout} is dropped; a connection that receives nothing for
    C{idle_timeout} seconds, or is open for C{max_connection_age} seconds, is
    closed (close_notify first).  Over C{max_connections_per_ip}, it is closed
    at once, before TLS (behind a PROXY header, once the header is read).  When the
    connection ends, one event is logged with the peer address, the TLS
    version and cipher, the byte counts and the reason it ended.

    @ivar bytes_received: Bytes received from the peer so far.
    @ivar bytes_written: Bytes handed to the transport to echo so far (see
        L{_bytes_sent} for how many of them were really sent).
    @ivar handshake_done: Whether the TLS handshake completed.
    """

    log = Logger()
    factory: EchoServerFactory

    def __init__(self) -> None:
        self.bytes_received = 0
        self.bytes_written = 0
        self.handshake_done = False
        self._started = time.monotonic()
        self._last_read = 0.0
        self._timer: IDelayedCall | None = None
        self._age_timer: IDelayedCall | None = None
        #: The address this connection holds a per-address slot for, if any.
        self.slot: str | None = None
        self._refused = False
        self._ended_by: str | None = None
        self._handshake_seconds: float | None = None
        #: How dataReceived writes; found on first use (see unbuffered_write).
        self._write: Callable[[bytes], object] | None = None

    def connectionMade(self) -> None:
        """
        Register the transport as the producer of our writes (flow control),
        and start the handshake timer.
        """
        # A transport pauses its registered producer when its write buffer is
        # full; the producer here is the transport itself, so it stops reading.
        transport = cast(Any, self.transport)
        factory = self.factory
        if factory.peer_slots.limit is not None and not after_proxy_header(
            transport, self._take_slot
        ):
            self._take_slot(transport.getPeer())
            if self._refused:
                return
        transport.registerProducer(cast(IPushProducer, transport), True)
        # An echo is sent as soon as it is decrypted, and Twisted's TLS transport
        # already gathers small writes made in one reactor turn: Nagle's algorithm
        # would only hold replies back until the peer's delayed ACK (up to 40 ms
        # on Linux), which throttled handshakes (the reply after the session
        # tickets) and ping-pong.  See docs/performance.md.
        set_no_delay = getattr(transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        if factory.max_connection_age is not None:
            self._age_timer = factory.clock.callLater(
                factory.max_connection_age, self._close, MAX_AGE
            )
        if not is_tls_transport(transport):
            self.handshakeCompleted()  # nothing to negotiate
        elif factory.handshake_timeout is not None:
            self._timer = factory.clock.callLater(
                factory.handshake_timeout, self._handshake_timed_out
            )

    def _take_slot(self, address: object) -> None:
        """
        Take a per-address slot for C{address}; if it holds all it may,
        close the connection at once.
        """
        if not self.factory.take_slot(self, address):
            self._refused = True
            cast(Any, self.transport).abortConnection()

    def handshakeCompleted(self) -> None:
        """
        Note that TLS is established, and start watching for idleness.

        tlsecho's TLS transport calls this only once the final flight of our
        side of the handshake has been handed to the socket (see
        L{tlsecho._tls._tlsprotocol}), so the handshake timer stops no earlier.
        """
        self.handshake_done = True
        self._handshake_seconds = time.monotonic() - self._started
        if self._ended_by is not None:
            return  # closing already (age, drain): its abort timer stays
        self._cancel_timer()
        if self.factory.idle_timeout is not None:
            self._last_read = self.factory.clock.seconds()
            self._timer = self.factory.clock.callLater(
                self.factory.idle_timeout, self._check_idle
            )

    def dataReceived(self, data: bytes) -> None:
        """
        Echo C{data} straight back.
        """
        self.bytes_received += len(data)
        self._last_read = self.factory.clock.seconds()
        write = self._write
        if write is None:
            write = self._write = unbuffered_write(self.transport)
        self.bytes_written += len(data)
        write(data)

    def _handshake_timed_out(self) -> None:
        self._timer = None
        self._ended_by = "handshake timeout"
        cast(Any, self.transport).abortConnection()

    def _check_idle(self) -> None:
        # Rescheduling from the last read, rather than resetting a timer on
        # every read, keeps the per-read cost to one clock reading.
        idle_timeout = self.factory.idle_timeout
        assert idle_timeout is not None
        remaining = self._last_read + idle_timeout - self.factory.clock.seconds()
        if remaining > 0:
            self._timer = self.factory.clock.callLater(remaining, self._check_idle)
            return
        self._timer = None
        self._close("idle timeout")

    def _close(self, reason: str) -> None:
        """
        Close the connection for C{reason} with close_notify, and abort it if
        the peer has not taken that in the factory's C{close_timeout}.
        """
        if self._ended_by is not None:
            return  # closing already
        self._cancel_timer()
        self._ended_by = reason
        transport = cast(Any, self.transport)
        # TLS only sends close_notify once no producer is registered.
        transport.unregisterProducer()
        transport.loseConnection()
        # A peer that does not read would keep the connection open forever.
        self._timer = self.factory.clock.callLater(
            self.factory.close_timeout, transport.abortConnection
        )

    def _cancel_timer(self, age: bool = False) -> None:
        for timer in (self._timer, self._age_timer if age else None):
            if timer is not None and timer.active():
                timer.cancel()
        self._timer = None
        if age:
            self._age_timer = None

    def connectionLost(self, reason: Failure | None = None) -> None:
        """
        Stop the timers, log one event for the whole connection, and tell the
        factory it ended: that last part whatever happens before it, so that
        a connection is always counted as ended and its slot freed.
        """
        fields: dict[str, Any] | None = None
        try:
            self._cancel_timer(age=True)
            if self._refused:
                return  # logged and counted when it was refused
            fields = self._fields(reason)
            self._log_ended(fields)
        except Exception as e:
            # Describing is total (every part has its fallback); this is the
            # last line of defence, one line and no peer text unescaped.
            self.log.error(
                "a connection ended but could not be described ({error}); "
                "it is counted as failed",
                error=printable(f"{type(e).__name__}: {e}"),
                event="internal.error",
            )
        finally:
            if self._refused:
                self.factory.connection_ended(self)
            else:
                self.factory.connection_ended(self, fields or self._fallback_fields())

    def _log_ended(self, fields: dict[str, Any]) -> None:
        line = ended_line(fields)
        if line is not None:
            # The message goes with the event, formatted: tlsecho's observers
            # write it as it is (the line is logged for every connection).
            log = self.log.warn if line.warning else self.log.info
            log(line.format, **line.fields, event=line.event, **{MESSAGE: line.text()})

    def _fallback_fields(self) -> dict[str, Any]:
        """
        The fields of a connection that could not be described.
        """
        return fallback_fields(
            handshake_done=self.handshake_done,
            bytes_in=self.bytes_received,
            duration=time.monotonic() - self._started,
            handshake_seconds=self._handshake_seconds,
        )

    def _fields(self, reason: Failure | None) -> dict[str, Any]:
        return describe_connection(
            self.transport,
            reason,
            handshake_done=self.handshake_done,
            ended_by=self._ended_by,
            bytes_received=self.bytes_received,
            bytes_written=self.bytes_written,
            duration=time.monotonic() - self._started,
            handshake_seconds=self._handshake_seconds,
        )
