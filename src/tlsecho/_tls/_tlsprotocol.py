"""
tlsecho's TLS transport: Twisted's, with whole handshake flights.

Twisted's L{TLSMemoryBIOProtocol} moves what OpenSSL wants to send from the
memory BIO to the socket in C{_flushSendBIO}, which reads the BIO once, 32 KiB
at most (twisted/protocols/tls.py, C{TLSMemoryBIOProtocol._flushSendBIO},
Twisted 26.10: C{self._tlsConnection.bio_read(2**15)}).  Application data never
notices, because every record is flushed as it is made; a handshake flight is
made in one go, though, and anything past 32 KiB stays in the BIO until some
later flush that may never come.  A server chain of 40 KiB, a 40 KiB client
certificate, or the session tickets that carry such a certificate (OpenSSL puts
the peer's certificate in the ticket) then stall the handshake, or leave the
server believing a handshake done whose last flight never left.

L{TLSProtocol} drains the BIO until it is empty, and tells the application the
handshake is done only once the whole final flight has been handed to the
transport; L{TLSFactory} makes it.  Every TLS connection tlsecho makes, server
and client, goes through them (L{tls_server_endpoint}, L{tls_client_endpoint}).
C{tests/test_attacks_flights.py} fails loudly if upstream renames what is
overridden here.  L{unbuffered_write} lets the echo write past Twisted's
small-write buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from OpenSSL.SSL import Error, WantReadError
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IHandshakeListener,
    IListeningPort,
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.protocols.tls import (
    BufferingTLSTransport,
    TLSMemoryBIOFactory,
    TLSMemoryBIOProtocol,
)
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = [
    "OVERRIDDEN",
    "TLSFactory",
    "TLSProtocol",
    "tls_client_endpoint",
    "tls_server_endpoint",
    "unbuffered_write",
]

#: What L{TLSProtocol} overrides or relies on in
#: L{twisted.protocols.tls.TLSMemoryBIOProtocol}: if upstream renames any of
#: these, the override silently stops applying (a test checks they exist).
OVERRIDDEN = (
    "_flushSendBIO",
    "_checkHandshakeStatus",
    "_tlsConnection",
    "_aborted",
    "_handshakeDone",
    "_tlsShutdownFinished",
)

#: How much one read from the BIO asks for; reads repeat until it is empty.
_CHUNK = 2**16


class TLSProtocol(BufferingTLSTransport):
    """
    Twisted's TLS transport, sending every handshake flight whole.
    """

    _tlsConnection: Any
    _aborted: bool
    _handshakeDone: bool
    wrappedProtocol: IProtocol

    def _flushSendBIO(self) -> None:
        """
        Write everything in the send BIO to the transport.

        Upstream (twisted/protocols/tls.py, C{TLSMemoryBIOProtocol._flushSendBIO})
        reads at most 32 KiB once, leaving the rest of a large handshake flight
        behind; this reads until the BIO is empty.
        """
        connection = self._tlsConnection
        if connection is None:  # after connectionLost
            return
        while True:
            try:
                data = connection.bio_read(_CHUNK)
            except WantReadError:
                return  # nothing (more) to send
            self.transport.write(data)  # type: ignore[union-attr]
            if len(data) < _CHUNK:
                return  # a memory BIO gives all it has: it is empty now

    def _checkHandshakeStatus(self) -> None:
        """
        Proceed with the handshake; once it is done, send the final flight
        whole, then tell the application.

        Upstream (twisted/protocols/tls.py,
        C{TLSMemoryBIOProtocol._checkHandshakeStatus}) calls
        C{handshakeCompleted} before the flight that completes the handshake
        (a TLS 1.2 server's Finished, the session tickets) has left the BIO.
        A server that stops its handshake timer there would count a handshake
        as done that its peer cannot finish; flushing first makes
        C{handshakeCompleted} mean that our side of the handshake is all on
        its way.
        """
        if self._aborted:
            return
        try:
            self._tlsConnection.do_handshake()
        except WantReadError:
            self._flushSendBIO()
        except Error:
            self._tlsShutdownFinished(Failure())
        else:
            self._handshakeDone = True
            self._flushSendBIO()
            if IHandshakeListener.providedBy(self.wrappedProtocol):
                self.wrappedProtocol.handshakeCompleted()


class TLSFactory(TLSMemoryBIOFactory):
    """
    Twisted's TLS wrapping factory, making L{TLSProtocol}s.
    """

    protocol = TLSProtocol


@implementer(IStreamServerEndpoint)
class _TLSServerEndpoint:
    """
    A server endpoint with TLS (L{TLSFactory}) on top of another.
    """

    def __init__(
        self, creator: IOpenSSLServerConnectionCreator, endpoint: IStreamServerEndpoint
    ) -> None:
        self._creator = creator
        self._endpoint = endpoint

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen on the wrapped endpoint with TLS around C{protocolFactory}.
        """
        return self._endpoint.listen(TLSFactory(self._creator, False, protocolFactory))


@implementer(IStreamClientEndpoint)
class _TLSClientEndpoint:
    """
    A client endpoint with TLS (L{TLSFactory}) on top of another.
    """

    def __init__(
        self, creator: IOpenSSLClientConnectionCreator, endpoint: IStreamClientEndpoint
    ) -> None:
        self._creator = creator
        self._endpoint = endpoint

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Connect through the wrapped endpoint; fire with the application's
        protocol (not the TLS one).
        """
        connecting = self._endpoint.connect(
            TLSFactory(self._creator, True, protocolFactory)
        )
        return connecting.addCallback(_wrapped)


def _wrapped(protocol: Any) -> IProtocol:
    wrapped: IProtocol = protocol.wrappedProtocol
    return wrapped


def tls_server_endpoint(
    creator: IOpenSSLServerConnectionCreator, endpoint: IStreamServerEndpoint
) -> IStreamServerEndpoint:
    """
    C{endpoint} with tlsecho's TLS on top (like Twisted's C{wrapServerTLS}).
    """
    return _TLSServerEndpoint(creator, endpoint)


def tls_client_endpoint(
    creator: IOpenSSLClientConnectionCreator, endpoint: IStreamClientEndpoint
) -> IStreamClientEndpoint:
    """
    C{endpoint} with tlsecho's TLS on top (like Twisted's C{wrapClientTLS}).
    """
    return _TLSClientEndpoint(creator, endpoint)


def unbuffered_write(transport: Any) -> Callable[[bytes], object]:
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
