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
from typing import Any, cast

from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IHandshakeListener, IPushProducer, ITransport
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ._diagnosis import connection_summary, describe_failure, is_tls_failure

__all__ = ["EchoServerFactory", "EchoServerProtocol"]


@implementer(IHandshakeListener)
class EchoServerProtocol(Protocol):
    """
    Write back every byte received, pausing reads while the peer is not reading.

    When the connection ends, one event is logged with the peer address, the
    TLS version and cipher, the byte counts and the reason it ended.

    @ivar bytes_received: Bytes received from the peer so far.
    @ivar handshake_done: Whether the TLS handshake completed.
    """

    log = Logger()
    factory: EchoServerFactory

    def __init__(self) -> None:
        self.bytes_received = 0
        self.handshake_done = False
        self._started = time.monotonic()

    def connectionMade(self) -> None:
        """
        Register the transport as the producer of our writes (flow control).
        """
        # A transport pauses its registered producer when its write buffer is
        # full; the producer here is the transport itself, so it stops reading.
        transport = cast(Any, self.transport)
        transport.registerProducer(cast(IPushProducer, transport), True)

    def handshakeCompleted(self) -> None:
        """
        Note that TLS is established; failures after this are not handshake failures.
        """
        self.handshake_done = True

    def dataReceived(self, data: bytes) -> None:
        """
        Echo C{data} straight back.
        """
        self.bytes_received += len(data)
        assert self.transport is not None
        self.transport.write(data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        """
        Log one event for the whole connection.
        """
        fields = self._fields(reason)
        if fields["failed"]:
            self.log.warn("{peer}: {stage} failed: {reason}", **fields)
        else:
            self.log.info(
                "{peer}: closed ({reason}) after {bytes_in} bytes in "
                "{duration:.3f}s, {tls_version} {cipher}",
                **fields,
            )
        self.factory.connection_ended(self)

    def _fields(self, reason: Failure | None) -> dict[str, Any]:
        transport = cast(ITransport, self.transport)
        failed = reason is not None and (
            is_tls_failure(reason)
            # Reset mid-handshake: typically a client that rejected our certificate.
            or (not self.handshake_done and reason.check(ConnectionLost) is not None)
        )
        return {
            "peer": format_address(transport.getPeer()) if transport else "?",
            "failed": failed,
            "stage": "TLS" if self.handshake_done else "TLS handshake",
            "reason": describe_failure(reason, transport) if reason else "closed",
            "bytes_in": self.bytes_received,
            "bytes_out": self.bytes_received,
            "duration": time.monotonic() - self._started,
            **connection_summary(transport),
        }


def format_address(address: object) -> str:
    """
    An address as people write it: C{127.0.0.1:8443}, C{[::1]:8443}, C{unix:/path}.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is None:
        name = getattr(address, "name", None)
        return f"unix:{name.decode() if isinstance(name, bytes) else name or '?'}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class EchoServerFactory(Factory):
    """
    Makes L{EchoServerProtocol}s and tracks the open ones.

    Use it under any server endpoint; tlsecho's L{tlsecho.server_endpoint}
    puts TLS below it.

    @ivar connections: The protocols of the connections now open.
    """

    protocol = EchoServerProtocol  # type: ignore[assignment]

    def __init__(self) -> None:
        self.connections: set[EchoServerProtocol] = set()

    def buildProtocol(self, addr: Any) -> EchoServerProtocol:  # type: ignore[override]
        """
        A protocol for a new connection, tracked until it ends.
        """
        protocol = EchoServerProtocol()
        protocol.factory = self
        self.connections.add(protocol)
        return protocol

    def connection_ended(self, protocol: EchoServerProtocol) -> None:
        """
        Forget a connection that has ended.
        """
        self.connections.discard(protocol)
