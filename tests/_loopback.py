"""
In-memory TLS: a server and a client connected through iosim, no sockets.

This is the one place tests build TLS connections in memory, the way Twisted's own
test_sslverify does (a TLSMemoryBIOFactory on both sides, pumped by an IOPump); the
factory is tlsecho's own L{TLSFactory}, the transport its endpoints use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import (
    IHandshakeListener,
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from twisted.test.iosim import IOPump, connectedServerAndClient
from zope.interface import implementer

from tlsecho import EchoClientProtocol, EchoServerFactory
from tlsecho._tls._tlsprotocol import TLSFactory


@implementer(IHandshakeListener)
class OpenClient(Protocol):
    """A client that sends nothing and keeps the connection open after the handshake."""

    handshake_done = False
    lost: Failure | None = None

    def handshakeCompleted(self) -> None:
        self.handshake_done = True

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.lost = reason


@dataclass
class Loopback:
    """Both ends of an in-memory TLS connection and the pump between them."""

    client_tls: TLSMemoryBIOProtocol
    server_tls: TLSMemoryBIOProtocol
    client: Any
    server: Any
    pump: IOPump
    clock: Clock

    def run(self, rounds: int = 200) -> None:
        """Move bytes and fire timers until nothing is left to move."""
        for _ in range(rounds):
            self.clock.advance(0)
            if not self.pump.pump():
                self.clock.advance(0)
                if not self.pump.pump():
                    return


def loopback(
    server_creator: IOpenSSLServerConnectionCreator,
    client_creator: IOpenSSLClientConnectionCreator,
    client: Protocol | None = None,
    server_factory: Factory | None = None,
) -> Loopback:
    """
    Connect a TLS client to a TLS server in memory and run the exchange.

    @param client: The client's application protocol; by default an
        L{EchoClientProtocol} sending C{b"hello"}.
    @param server_factory: The server's application factory; by default an
        L{EchoServerFactory}.
    """
    clock = Clock()
    client = client if client is not None else EchoClientProtocol(b"hello")
    server_factory = server_factory or EchoServerFactory()
    server_tls_factory = TLSFactory(server_creator, False, server_factory, clock=clock)
    client_tls_factory = TLSFactory(
        client_creator, True, Factory.forProtocol(lambda: client), clock=clock
    )
    address = IPv4Address("TCP", "127.0.0.1", 54321)
    client_tls, server_tls, pump = connectedServerAndClient(
        lambda: server_tls_factory.buildProtocol(address),
        lambda: client_tls_factory.buildProtocol(address),
        clock=clock,
    )
    connection = Loopback(
        client_tls=client_tls,
        server_tls=server_tls,
        client=client,
        server=server_tls.wrappedProtocol,
        pump=pump,
        clock=clock,
    )
    connection.run()
    return connection
