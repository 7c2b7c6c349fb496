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

import contextlib
import ipaddress
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from twisted.internet.abstract import FileDescriptor
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    IPushProducer,
    IReactorTime,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

if TYPE_CHECKING:
    from ._metrics import ServerMetrics

from ._diagnosis import (
    client_identity,
    connection_summary,
    describe_failure,
    is_tls_failure,
    is_tls_transport,
)
from ._proxy import ProxyState, proxy_state
from ._text import printable

__all__ = ["EchoServerFactory", "EchoServerProtocol"]

_log = Logger()


@implementer(IHandshakeListener)
class EchoServerProtocol(Protocol):
    """
    Write back every byte received, pausing reads while the peer is not reading.

    A TLS peer that has not finished its handshake within the factory's
    C{handshake_timeout} is dropped; a connection that receives nothing for
    C{idle_timeout} seconds is closed (close_notify first).  When the
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
        self._ended_by: str | None = None
        self._handshake_seconds: float | None = None
        #: How dataReceived writes; found on first use (see _unbuffered_write).
        self._write: Callable[[bytes], object] | None = None

    def connectionMade(self) -> None:
        """
        Register the transport as the producer of our writes (flow control),
        and start the handshake timer.
        """
        # A transport pauses its registered producer when its write buffer is
        # full; the producer here is the transport itself, so it stops reading.
        transport = cast(Any, self.transport)
        transport.registerProducer(cast(IPushProducer, transport), True)
        # An echo is sent as soon as it is decrypted, and Twisted's TLS transport
        # already gathers small writes made in one reactor turn: Nagle's algorithm
        # would only hold replies back until the peer's delayed ACK (up to 40 ms
        # on Linux), which throttled handshakes (the reply after the session
        # tickets) and ping-pong.  See docs/performance.md.
        set_no_delay = getattr(transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        if not is_tls_transport(transport):
            self.handshakeCompleted()  # nothing to negotiate
        elif self.factory.handshake_timeout is not None:
            self._timer = self.factory.clock.callLater(
                self.factory.handshake_timeout, self._handshake_timed_out
            )

    def handshakeCompleted(self) -> None:
        """
        Note that TLS is established, and start watching for idleness.

        tlsecho's TLS transport calls this only once the final flight of our
        side of the handshake has been handed to the socket (see
        L{tlsecho._tlsprotocol}), so the handshake timer stops no earlier.
        """
        self.handshake_done = True
        self._handshake_seconds = time.monotonic() - self._started
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
            write = self._write = _unbuffered_write(self.transport)
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
        self._ended_by = "idle timeout"
        transport = cast(Any, self.transport)
        # TLS only sends close_notify once no producer is registered.
        transport.unregisterProducer()
        transport.loseConnection()
        # A peer that does not read would keep the connection open forever.
        self._timer = self.factory.clock.callLater(
            self.factory.close_timeout, transport.abortConnection
        )

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def connectionLost(self, reason: Failure | None = None) -> None:
        """
        Stop the timers, log one event for the whole connection, and tell the
        factory it ended: that last part whatever happens before it, so that
        a connection is always counted as ended and its slot freed.
        """
        fields: dict[str, Any] | None = None
        try:
            self._cancel_timer()
            fields = self._fields(reason)
            self._log_ended(fields)
        except Exception as e:
            # Describing is total (every part has its fallback); this is the
            # last line of defence, one line and no peer text unescaped.
            self.log.error(
                "a connection ended but could not be described ({error}); "
                "it is counted as failed",
                error=printable(f"{type(e).__name__}: {e}"),
            )
        finally:
            self.factory.connection_ended(self, fields or self._fallback_fields())

    def _log_ended(self, fields: dict[str, Any]) -> None:
        if fields["reason"] == "health check":
            pass  # a load balancer's, every few seconds: counted, not logged
        elif fields["failed"]:
            self.log.warn("{peer}: {stage} failed: {reason}", **fields)
        else:
            self.log.info(
                "{peer}: {reason} after {bytes_out} bytes echoed{unsent} in "
                "{duration:.3f}s ({tls_version}, {cipher}, group {group}, SNI {sni}, "
                "ALPN {alpn}, client {client})",
                unsent=(
                    f" (of {fields['bytes_in']} received)"
                    if fields["bytes_out"] != fields["bytes_in"]
                    else ""
                ),
                **fields,
            )

    def _fallback_fields(self) -> dict[str, Any]:
        """
        The fields of a connection that could not be described: enough for
        the factory and the metrics.
        """
        return {
            "peer": "?",
            "failed": True,
            "via": None,
            "stage": "TLS" if self.handshake_done else "TLS handshake",
            "reason": "could not describe the connection",
            "bytes_in": self.bytes_received,
            "bytes_out": 0,
            "duration": time.monotonic() - self._started,
            "handshake_seconds": self._handshake_seconds,
            "alpn": None,
            "client": None,
            "tls_version": None,
            "cipher": None,
            "group": None,
            "sni": None,
        }

    def _fields(self, reason: Failure | None) -> dict[str, Any]:
        transport = cast(ITransport, self.transport)
        proxied = _described(lambda: proxy_state(transport), ProxyState(), "PROXY state")
        health_check = proxied.health_check and not self.handshake_done
        if proxied.header_error is not None:
            words = printable(proxied.header_error)
        elif health_check:
            words = "health check"
        elif self._ended_by is not None:
            words = self._ended_by
        elif reason is not None:
            words = describe_failure(reason, transport, established=self.handshake_done)
        else:
            words = "closed"
        failed = proxied.header_error is not None or (
            not health_check
            and (
                (reason is not None and is_tls_failure(reason))
                or (
                    not self.handshake_done
                    and (
                        self._ended_by is not None
                        # Reset mid-handshake: typically a client that rejected
                        # our certificate.
                        or (reason is not None and reason.check(ConnectionLost) is not None)
                    )
                )
            )
        )
        return {
            "peer": (
                _described(lambda: format_address(transport.getPeer()), "?", "peer")
                if transport
                else "?"
            ),
            "failed": failed,
            "via": format_address(proxied.proxy) if proxied.proxy is not None else None,
            "stage": (
                "PROXY header"
                if proxied.header_error
                else "TLS"
                if self.handshake_done
                else "TLS handshake"
            ),
            "reason": words,
            "bytes_in": self.bytes_received,
            "bytes_out": _described(
                lambda: _bytes_sent(self.bytes_written, transport), 0, "bytes sent"
            ),
            "duration": time.monotonic() - self._started,
            "handshake_seconds": self._handshake_seconds,
            "alpn": _described(lambda: _negotiated_protocol(transport), None, "ALPN"),
            "client": client_identity(transport),
            **connection_summary(transport),
        }


_T = TypeVar("_T")


def _described(describe: Callable[[], _T], fallback: _T, what: str) -> _T:
    """
    What C{describe()} returns; if it raises, C{fallback}, with one line
    logged naming C{what} could not be described.
    """
    try:
        return describe()
    except Exception as e:
        _log.error(
            "could not describe the {what} of a connection: {error}",
            what=what,
            error=printable(f"{type(e).__name__}: {e}"),
        )
        return fallback


def _bytes_sent(written: int, transport: object) -> int:
    """
    How many of the C{written} application bytes were really sent: handed by
    tlsecho, as TLS records, to the operating system's socket.

    What is still queued when the connection ends (in Twisted's TLS layer
    before the handshake, and in the TCP transport's write buffer, where a
    peer that does not read makes it pile up) was never sent, and is not
    counted.  The TCP buffer holds TLS records, which are larger than the
    application bytes in them, so the result is a lower bound: exact but for
    the application bytes in the one record the socket took only part of,
    at most 16 KiB.  What the kernel took but the peer's application never
    read cannot be seen from here and counts as sent.
    """
    queued = 0
    layer: Any = transport
    for _ in range(4):
        if layer is None:
            break
        if isinstance(layer, TLSMemoryBIOProtocol):
            queued += sum(len(data) for data in layer._appSendBuffer)
        if isinstance(layer, FileDescriptor):
            # Twisted's write queue, as _eager.EagerServer reads it.
            queued += len(layer.dataBuffer) - layer.offset + layer._tempDataLen
            break
        layer = getattr(layer, "transport", None)
    return max(0, written - queued)


def _negotiated_protocol(transport: object) -> str | None:
    protocol = getattr(transport, "negotiatedProtocol", None)
    return printable(protocol) if isinstance(protocol, bytes) else None


def _unbuffered_write(transport: Any) -> Callable[[bytes], object]:
    """
    How to write to C{transport} without a detour through Twisted's small-write
    buffer.

    Twisted's TLS transport (L{twisted.protocols.tls.BufferingTLSTransport})
    holds every write until the next reactor turn, scheduling a delayed call
    for it, to merge many small writes into one TLS record.  An echo writes
    back exactly what one TLS record brought in, so there is nothing to merge:
    the detour only costs a delayed call and a copy per record.  Writing with
    the unbuffered L{TLSMemoryBIOProtocol.write} keeps the same flow control
    (its send buffer still pauses the registered producer).
    """
    if isinstance(transport, TLSMemoryBIOProtocol):
        unbuffered: Callable[[bytes], object] = TLSMemoryBIOProtocol.write.__get__(
            transport
        )
        return unbuffered
    write: Callable[[bytes], object] = transport.write
    return write


def format_address(address: object) -> str:
    """
    An address as people write it: C{127.0.0.1:8443}, C{[::1]:8443}, C{unix:/path}.

    Never raises, and the result is inert text for a log line: a PROXY header
    names any address its sender likes (a UNIX path that is not UTF-8, an IPv4
    "host" holding terminal escapes), so every part is escaped and capped with
    L{printable}.
    """
    try:
        return _format_address(address)
    except Exception:
        return f"<{printable(type(address).__name__)}>"


def _format_address(address: object) -> str:
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is None:
        name = getattr(address, "name", None)
        return f"unix:{printable(name) if name else '?'}"
    if isinstance(host, bytes):
        host = host.decode("utf-8", "surrogateescape")
    host = str(host)
    if ":" not in host:
        return f"{printable(host)}:{printable(str(port))}"
    # Canonical text: a PROXY v2 header's IPv6 address arrives uncompressed.
    with contextlib.suppress(ValueError):
        host = str(ipaddress.ip_address(host))
    return f"[{printable(host)}]:{printable(str(port))}"


class EchoServerFactory(Factory):
    """
    Makes L{EchoServerProtocol}s and tracks the open ones.

    Use it under any server endpoint; tlsecho's L{tlsecho.server_endpoint}
    puts TLS below it.

    @ivar connections: The protocols of the connections now open.
    @ivar refused: How many connections the limit closed at once.
    """

    protocol = EchoServerProtocol  # type: ignore[assignment]

    def __init__(
        self,
        handshake_timeout: float | None = 10.0,
        idle_timeout: float | None = 300.0,
        clock: IReactorTime | None = None,
        max_connections: int | None = 10_000,
        metrics: ServerMetrics | None = None,
    ) -> None:
        """
        @param handshake_timeout: Seconds a TLS peer has to complete its
            handshake; L{None} for no limit.
        @param idle_timeout: Seconds without receiving anything before a
            connection is closed; L{None} for no limit.
        @param clock: The reactor to time with; the global reactor by default.
        @param max_connections: Above this many open connections, new ones are
            closed at once (logged and counted); L{None} for no limit.
        @param metrics: Where to count connections, if anywhere.
        """
        if clock is None:
            from twisted.internet import reactor

            clock = cast(IReactorTime, reactor)
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        #: Seconds a closing connection has to take its close_notify.
        self.close_timeout = 10.0
        self.clock = clock
        self.max_connections = max_connections
        self.metrics = metrics
        self.refused = 0
        self.connections: set[EchoServerProtocol] = set()

    def buildProtocol(self, addr: Any) -> Protocol:
        """
        A protocol for a new connection, tracked until it ends; over the
        connection limit, one that closes it at once.
        """
        limit = self.max_connections
        if limit is not None and len(self.connections) >= limit:
            self.refused += 1
            if self.metrics is not None:
                self.metrics.connection_refused()
            _log.warn(
                "{peer}: refused: {limit} connections are open (--max-connections)",
                peer=format_address(addr),
                limit=limit,
            )
            return _Refused()
        protocol = self.protocol()
        protocol.factory = self
        self.connections.add(protocol)
        if self.metrics is not None:
            self.metrics.connection_opened()
        return protocol

    def connection_ended(
        self, protocol: EchoServerProtocol, fields: dict[str, Any] | None = None
    ) -> None:
        """
        Forget a connection that has ended, and count it.
        """
        self.connections.discard(protocol)
        if self.metrics is not None and fields is not None:
            self.metrics.connection_ended(fields)


class _Refused(Protocol):
    """
    A connection over the limit: closed as soon as it is made, before TLS.
    """

    def connectionMade(self) -> None:
        cast(Any, self.transport).abortConnection()
