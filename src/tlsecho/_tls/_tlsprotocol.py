"""
tlsecho's TLS transport: Twisted's, with tlsecho's own data path.

L{TLSProtocol} keeps what Twisted's L{TLSMemoryBIOProtocol} gives protocols
(C{getPeerCertificate}, C{negotiatedProtocol}, C{IHandshakeListener},
producer and consumer, C{loseConnection} with close_notify,
C{abortConnection}, writes queued until the handshake ends), declares
C{ISSLTransport}, adds TLS half-close, and replaces the methods that move
bytes:

  - Records go through a L{RecordLayer} (L{tlsecho._tls._openssl_internals}):
    OpenSSL's calls made with return codes and one reusable buffer, where
    upstream pays an exception for every "nothing more to read" and a fresh
    buffer per call.  That module owns every private pyOpenSSL attribute it
    touches, and falls back to pyOpenSSL's public calls.
  - Whole flights: upstream's C{_flushSendBIO} reads the send BIO once, 32 KiB
    at most (Twisted 26.10: C{self._tlsConnection.bio_read(2**15)}), so a
    handshake flight past 32 KiB (a 40 KiB chain or client certificate, the
    tickets carrying it) stayed behind and stalled the handshake.  This takes
    everything pending.
  - The handshake is reported (C{handshakeCompleted}) only once the final
    flight has been handed to the transport.

L{TLSFactory} makes it; every TLS connection tlsecho makes, server and client,
goes through it (L{tls_server_endpoint}, L{tls_client_endpoint}).
C{tests/test_attacks_flights.py} fails loudly if upstream renames what is
overridden here; C{tests/test_transport.py} checks each interface and compares
it with upstream's transport byte sequence by byte sequence.
L{unbuffered_write} lets the echo write past Twisted's small-write buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from OpenSSL.SSL import Connection, Error, WantReadError, ZeroReturnError
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IHandshakeListener,
    IProtocol,
    ISSLTransport,
    ITransport,
)
from twisted.internet.protocol import connectionDone
from twisted.protocols.policies import ProtocolWrapper
from twisted.protocols.tls import (
    BufferingTLSTransport,
    TLSMemoryBIOFactory,
    TLSMemoryBIOProtocol,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from ._openssl_internals import RecordLayer, record_layer

__all__ = ["TLSFactory", "TLSProtocol", "unbuffered_write"]

#: The most plaintext one TLS record carries.
_RECORD = 2**14


@implementer(ISSLTransport)
class TLSProtocol(BufferingTLSTransport):
    """
    Twisted's TLS transport with tlsecho's data path: every record moved by
    return codes through a L{RecordLayer}, every handshake flight sent whole.

    Upstream's producer and consumer, C{loseConnection} with close_notify,
    C{abortConnection}, queued writes before the handshake ends,
    C{getPeerCertificate} and C{negotiatedProtocol} are kept as they are; the
    methods that move bytes are replaced.  It adds TLS half-close: an
    application that provides C{IHalfCloseableProtocol} hears the peer's
    close_notify as C{readConnectionLost} and may go on writing, and
    C{loseWriteConnection} sends close_notify and goes on reading.
    """

    _aborted: bool
    _handshakeDone: bool
    _lostTLSConnection: bool
    _appSendBuffer: list[bytes]
    wrappedProtocol: IProtocol

    #: The connection's data path; L{None} before C{makeConnection} and after
    #: C{connectionLost}.
    _records: RecordLayer | None = None
    _connection: Connection | None = None
    #: Whether received records are being delivered: what the application
    #: writes meanwhile is sent in one transport write once they all are.
    _reading = False
    #: Whether our close_notify was sent by C{loseWriteConnection}.
    _writeClosed = False
    #: Whether the peer's close_notify was handed to a half-closeable
    #: application as C{readConnectionLost}.
    _readClosed = False

    @property
    def _tlsConnection(self) -> Connection:
        """
        The pyOpenSSL C{Connection} (upstream's attribute, set in
        C{makeConnection} and set to L{None} in C{connectionLost}); setting it
        makes its record layer.
        """
        return self._connection  # type: ignore[return-value]

    @_tlsConnection.setter
    def _tlsConnection(self, connection: Connection | None) -> None:
        self._connection = connection
        self._records = None if connection is None else record_layer(connection)

    def dataReceived(self, data: bytes) -> None:
        """
        Hand the received bytes to OpenSSL, go on with the handshake if it is
        not done, then deliver whatever plaintext they complete.
        """
        records = self._records
        if records is None:  # after connectionLost
            return
        records.feed(data)
        if not self._handshakeDone:
            self._checkHandshakeStatus()
            if not self._handshakeDone:
                return
        if self._appSendBuffer:
            self._unbufferPendingWrites()
        self._flushReceiveBIO()

    def _flushReceiveBIO(self) -> None:
        """
        Deliver every plaintext record OpenSSL can make of what it was given,
        then send whatever reading made OpenSSL want to send (alerts, tickets,
        a KeyUpdate's answer).
        """
        records = self._records
        if records is None:
            return
        deliver = self.wrappedProtocol.dataReceived
        self._reading = True
        try:
            self._deliver_records(records, deliver)
        finally:
            self._reading = False
        self._flushSendBIO()

    def _deliver_records(
        self, records: RecordLayer, deliver: Callable[[bytes], object]
    ) -> None:
        while not self._lostTLSConnection:
            try:
                data = records.read()
            except ZeroReturnError:
                if self._readClosed:
                    return  # told already; OpenSSL says it again on each read
                if not self._writeClosed and IHalfCloseableProtocol.providedBy(
                    self.wrappedProtocol
                ):
                    self._readClosed = True
                    self.wrappedProtocol.readConnectionLost()
                    return
                # The peer's close_notify: answer it, and report the
                # underlying transport's reason (a clean close).
                self._shutdownTLS()
                self._tlsShutdownFinished(None)
            except Error:
                self._tlsShutdownFinished(Failure())
            else:
                if data is None:
                    break
                if not self._aborted:
                    deliver(data)

    def _write(self, data: bytes) -> None:
        """
        Encrypt C{data} a record at a time and send the records; keep what
        OpenSSL cannot take yet (a handshake in progress) for later.
        """
        records = self._records
        if self._lostTLSConnection or self._writeClosed or records is None:
            return  # after loseWriteConnection, writes are dropped, as TCP's are
        size = len(data)
        whole = size <= _RECORD
        offset = 0
        try:
            while offset < size:
                taken = records.write(data if whole else data[offset : offset + _RECORD])
                if taken is None:
                    self._bufferedWrite(data[offset:])
                    break
                offset += taken
                if not whole:  # a big write leaves record by record, as upstream
                    self._flushSendBIO()
        except Error:
            self._tlsShutdownFinished(Failure())
            return
        if not self._reading:  # else all the answers leave together, after
            self._flushSendBIO()

    def _flushSendBIO(self) -> None:
        """
        Write everything OpenSSL has to send to the transport.

        Upstream (twisted/protocols/tls.py, C{TLSMemoryBIOProtocol._flushSendBIO})
        reads at most 32 KiB once, leaving the rest of a large handshake flight
        behind; this takes all of it.
        """
        records = self._records
        if records is None:  # after connectionLost
            return
        data = records.take()
        if data:
            self.transport.write(data)  # type: ignore[union-attr]

    def makeConnection(self, transport: ITransport) -> None:
        """
        Upstream's C{makeConnection} without its per-interface loop.

        Upstream calls C{directlyProvides(self, interface)} once for each
        interface of the transport (nine for a TCP connection, each replacing
        the last), then C{ProtocolWrapper.makeConnection} declares all of them
        at once anyway.  Here the single declaration is made: the same result
        for about a twentieth of the zope work per connection.
        """
        if not self._connectWrapped:  # startTLS: keep upstream's path
            super().makeConnection(transport)
            return
        self._tlsConnection = self.factory._creatorCallable(self)
        self._appSendBuffer = []
        ProtocolWrapper.makeConnection(self, transport)
        self._checkHandshakeStatus()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        The connection below is gone: let OpenSSL meet the end of its input
        (upstream then reads once more, so a peer that left without
        close_notify is reported as C{ConnectionLost}).
        """
        records = self._records
        if records is not None:
            records.input_ended()
        super().connectionLost(reason)

    def loseWriteConnection(self) -> None:
        """
        Send close_notify and go on reading until the peer's (TLS half-close).

        Before the handshake is done, or with writes still queued, there is no
        half to close yet: this is L{loseConnection}.
        """
        if self.disconnecting or not self.connected or self._writeClosed:
            return
        self._aggregator.flush()
        if not self._handshakeDone or self._appSendBuffer or self._readClosed:
            self.loseConnection()
            return
        self._writeClosed = True
        self._shutdownTLS()

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
        its way.  The handshake goes through pyOpenSSL's public
        C{do_handshake}: once or twice per connection, and it checks what the
        context's callbacks stored.
        """
        connection = self._connection
        if self._aborted or connection is None:
            return
        try:
            connection.do_handshake()
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
