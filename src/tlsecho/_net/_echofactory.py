"""
The echo server's factory, L{EchoServerFactory}: it makes the protocols,
tracks the open connections, and applies the connection limits.

C{--max-connections} refuses a connection as it is made.  C{--max-connections-per-ip}
(L{PeerSlots}) counts by the address a connection is from, which behind a
trusted proxy on a C{haproxy:} listener is the client the PROXY header names
(the echo protocol asks once the header is read:
L{tlsecho._net._proxy.after_proxy_header}).  Its bookkeeping holds one entry per
address with a connection open and none for an address whose connections all
ended, so its memory is bounded by the open connections, not by how many
addresses ever connected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from ._connlog import format_address, peer_ip
from ._echoserver import EchoServerProtocol

__all__ = [
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_IP",
    "ConnectionMetrics",
    "EchoServerFactory",
    "PeerSlots",
    "peer_key",
]

_log = Logger()

#: The limits a connection can be refused by (the metric's C{limit} label).
MAX_CONNECTIONS = "max-connections"
MAX_CONNECTIONS_PER_IP = "max-connections-per-ip"


class ConnectionMetrics(TypingProtocol):
    """What L{EchoServerFactory} tells its metrics (C{ServerMetrics} has the shape)."""

    def connection_opened(self) -> None:
        """A connection was accepted."""

    def connection_refused(
        self, limit: str = MAX_CONNECTIONS, opened: bool = False
    ) -> None:
        """
        A connection was closed at once because of C{limit}; C{opened}: after
        it was counted as opened (it no longer is open).
        """

    def connection_ended(self, fields: Mapping[str, Any]) -> None:
        """A connection ended; C{fields} is the connection's log event."""


def peer_key(address: object) -> str | None:
    """
    The address a connection from C{address} is counted under: its IP address
    as canonical text (L{peer_ip}); L{None} for what has no IP address (a UNIX
    socket's peer, a PROXY header naming no client), which is not counted.
    """
    ip = peer_ip(address)
    return None if ip is None else str(ip)


class PeerSlots:
    """
    How many connections each peer address holds, against a limit.

    @ivar limit: Connections one address may hold; L{None}: no limit (then
        the factory counts nothing).
    @ivar counts: Open connections by address; an address with none is not in it.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}

    def take(self, key: str) -> bool:
        """
        Take a slot for a connection from C{key}; C{False} (nothing taken) if
        it holds L{limit} already.
        """
        held = self.counts.get(key, 0)
        if self.limit is not None and held >= self.limit:
            return False
        self.counts[key] = held + 1
        return True

    def give_back(self, key: str) -> None:
        """
        Give back a slot C{key} took; its entry goes when it holds none.
        """
        held = self.counts.get(key, 0) - 1
        if held > 0:
            self.counts[key] = held
        else:
            self.counts.pop(key, None)


class EchoServerFactory(Factory):
    """
    Makes L{EchoServerProtocol}s and tracks the open ones.

    Use it under any server endpoint; tlsecho's L{tlsecho.server_endpoint}
    puts TLS below it.

    @ivar connections: The protocols of the connections now open.
    @ivar refused: How many connections the limits closed at once.
    @ivar peer_slots: How many connections each peer address holds.
    """

    protocol = EchoServerProtocol  # type: ignore[assignment]

    def __init__(
        self,
        handshake_timeout: float | None = 10.0,
        idle_timeout: float | None = 300.0,
        clock: IReactorTime | None = None,
        max_connections: int | None = 10_000,
        metrics: ConnectionMetrics | None = None,
        max_connections_per_ip: int | None = None,
        max_connection_age: float | None = None,
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
        @param max_connections_per_ip: How many open connections one peer
            address (behind a trusted proxy, the client its PROXY header
            names) may hold; more are closed at once (logged and counted);
            L{None} for no limit.
        @param max_connection_age: Seconds after which a connection is closed
            (close_notify first); L{None} for no limit.
        """
        if clock is None:
            from twisted.internet import reactor

            clock = cast(IReactorTime, reactor)
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.max_connection_age = max_connection_age
        #: Seconds a closing connection has to take its close_notify.
        self.close_timeout = 10.0
        self.clock = clock
        self.max_connections = max_connections
        self.peer_slots = PeerSlots(max_connections_per_ip)
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
                self.metrics.connection_refused(MAX_CONNECTIONS)
            _log.warn(
                "{peer}: refused: {limit} connections are open (--max-connections)",
                peer=format_address(addr),
                limit=limit,
                event="connection.refused",
            )
            return _Refused()
        protocol = self.protocol()
        protocol.factory = self
        self.connections.add(protocol)
        if self.metrics is not None:
            self.metrics.connection_opened()
        return protocol

    def take_slot(self, protocol: EchoServerProtocol, address: object) -> bool:
        """
        Take a per-address slot for C{protocol}'s connection from C{address}
        (one without an IP address, or L{None}, is not counted); if that
        address holds all it may, log and count the refusal, and say no.
        """
        key = peer_key(address)
        if key is None:
            return True
        if self.peer_slots.take(key):
            protocol.slot = key
            return True
        self.refused += 1
        if self.metrics is not None:
            self.metrics.connection_refused(MAX_CONNECTIONS_PER_IP, opened=True)
        _log.warn(
            "{peer}: refused: {limit} connections from this address are open "
            "(--max-connections-per-ip)",
            peer=format_address(address),
            limit=self.peer_slots.limit,
            event="connection.refused",
        )
        return False

    def connection_ended(
        self, protocol: EchoServerProtocol, fields: dict[str, Any] | None = None
    ) -> None:
        """
        Forget a connection that has ended and give back its slot; count it
        (with C{fields}, its log event; without, it is not counted again).
        """
        self.connections.discard(protocol)
        if protocol.slot is not None:
            self.peer_slots.give_back(protocol.slot)
            protocol.slot = None
        if self.metrics is not None and fields is not None:
            self.metrics.connection_ended(fields)


class _Refused(Protocol):
    """
    A connection over the limit: closed as soon as it is made, before TLS.
    """

    def connectionMade(self) -> None:
        cast(Any, self.transport).abortConnection()
