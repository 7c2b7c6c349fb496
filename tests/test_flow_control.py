"""
The echo server's memory stays bounded when a peer sends a lot and never reads.

These tests run the real server stack in-process over TLS on 127.0.0.1 (pytest-twisted,
the default reactor): C{server_endpoint} with the server connection creator and an
L{EchoServerFactory}, and a TLS client from C{client_endpoint} + C{client_creator}.
The misbehaving client stops reading as soon as TLS is up, then offers 64 MiB in
64 KiB writes, respecting its own transport's flow control.  While it keeps trying,
the bytes the server holds for that connection are sampled over and over; they must
stay under L{BOUND}, and the server must stop reading (C{bytes_received} stops
growing).  Then a well-behaved client is echoed normally, and finally the misbehaving
client reads again and must get every byte back, in order.

How the server's buffered bytes are measured (private attributes, on purpose: no public
API reports them, and they are exactly where an echo server that ignores flow control
would pile up data; each is read through C{_private}, which fails the test if Twisted
renames it, rather than silently counting 0):

 - the server protocol's transport is Twisted's TLS transport
   (L{twisted.protocols.tls.BufferingTLSTransport}); its C{_aggregator._buffer} holds
   small writes until the next reactor turn, and C{_appSendBuffer} holds cleartext
   OpenSSL could not take yet;
 - its C{.transport} is the TCP connection (L{twisted.internet.abstract.FileDescriptor});
   C{dataBuffer[offset:]} plus C{_tempDataLen} is what it has accepted but the kernel
   has not.

Kernel socket buffers are not counted: they are bounded by the kernel, not by tlsecho.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest_twisted
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IHandshakeListener,
    IListeningPort,
    IPushProducer,
)
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.protocols.tls import BufferingTLSTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from tlsecho import (
    EchoServerFactory,
    EchoServerProtocol,
    TLSSettings,
    client_creator,
    client_endpoint,
    echo,
    server_creator,
    server_endpoint,
)

from conftest import TLSFiles

KiB = 1024
MiB = 1024 * KiB
#: What the misbehaving client offers in all, and the size of each of its writes.
TOTAL = 64 * MiB
CHUNK = 64 * KiB
#: The most the server may hold for one connection whose peer does not read: about
#: three times what it was measured to hold, 126,040 bytes (Twisted 26.10, every run
#: alike; ``PYTHONPATH=$PWD/src python -m pytest -q -s tests/test_flow_control.py``
#: prints it).  That figure is Twisted's TCP write-buffer threshold
#: (L{TCP_BUFFER_SIZE}: above it the transport pauses its producer) plus the echo of
#: one socket read (also up to 64 KiB), so about 128 KiB is the ceiling by design.
BOUND = 384 * KiB
#: Twisted's C{FileDescriptor.bufferSize}, which the bound above is derived from.
TCP_BUFFER_SIZE = 64 * KiB
#: The client must have got at least this much into the connection: enough that a
#: server reading it all without pausing would already be near the bound (the
#: control test shows such a server blows through it).
MIN_ACCEPTED = 2 * MiB
#: How long the server's reading must stay still to count as paused.
STILL_FOR = 1.0
#: Upper bound on any one phase of a test.
PHASE_TIMEOUT = 60.0


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


@implementer(IHandshakeListener, IPushProducer)
class _NonReadingFlooder(Protocol):
    """
    A TLS client that stops reading once the handshake is done, then offers C{total}
    bytes in C{CHUNK} writes as fast as its own transport lets it.

    It registers itself as a streaming producer on its TLS transport, so it writes
    only while the transport has not paused it; bytes it has handed over are
    C{accepted}.  C{resume_reading} lets it read the echo, which it checks by SHA-256.
    """

    def __init__(self, total: int):
        self.total = total
        self.accepted = 0
        self.received = 0
        self.sent_digest = hashlib.sha256()
        self.received_digest = hashlib.sha256()
        self.paused = False
        self.pauses = 0
        self.handshake: Deferred[None] = Deferred()
        self.all_echoed: Deferred[None] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self.reason: Failure | None = None
        self._random = random.Random(20240601)
        self._writing = False
        self._stopped = False

    def handshakeCompleted(self) -> None:
        """Stop reading (not earlier: a client that reads nothing never finishes TLS)."""
        # The TLS transport passes pauseProducing on to TCP, which stops reading
        # the socket: from now on nothing the server sends is consumed.
        self._tls.pauseProducing()
        self.handshake.callback(None)

    @property
    def _tls(self) -> Any:
        assert self.transport is not None
        return self.transport

    def flood(self) -> None:
        """Start offering the payload, under the transport's flow control."""
        self._tls.registerProducer(self, True)
        self._write_while_allowed()

    def resume_reading(self) -> None:
        """Read again: let the echo come back."""
        self._tls.resumeProducing()

    def _write_while_allowed(self) -> None:
        if self._writing:
            return
        self._writing = True
        try:
            while not self.paused and not self._stopped and self.accepted < self.total:
                data = self._random.randbytes(min(CHUNK, self.total - self.accepted))
                self.sent_digest.update(data)
                self.accepted += len(data)
                self._tls.write(data)
        finally:
            self._writing = False
        if self.accepted >= self.total and not self._stopped:
            self._stopped = True
            self._tls.unregisterProducer()

    def pauseProducing(self) -> None:
        """The transport's buffer is full: stop writing."""
        self.paused = True
        self.pauses += 1

    def resumeProducing(self) -> None:
        """The transport drained: write more."""
        self.paused = False
        self._write_while_allowed()

    def stopProducing(self) -> None:
        """The connection is going away: write no more."""
        self._stopped = True

    def dataReceived(self, data: bytes) -> None:
        """Hash the echo; close once it is all back."""
        self.received += len(data)
        self.received_digest.update(data)
        if self.received == self.total:
            self._tls.loseConnection()
            self.all_echoed.callback(None)

    def connectionLost(self, reason: Failure | None = None) -> None:
        """Report the end of the connection."""
        self.reason = reason
        self.lost.callback(None)


def _private(owner: object, name: str) -> Any:
    """
    C{owner}'s private attribute C{name}, failing the test if Twisted renamed it
    (a silent default would let the measurement read 0 and pass).
    """
    assert hasattr(owner, name), (
        f"{type(owner).__qualname__} has no {name} any more: Twisted changed where "
        "it buffers; update server_buffered"
    )
    return getattr(owner, name)


def server_buffered(protocol: EchoServerProtocol) -> int:
    """
    The bytes the server holds in user space for C{protocol}'s connection, waiting to
    be sent: TLS-level pending writes plus the TCP transport's write buffer.
    """
    tls: Any = protocol.transport
    assert isinstance(tls, BufferingTLSTransport), type(tls)
    tcp: Any = _private(tls, "transport")
    assert _private(tcp, "bufferSize") == TCP_BUFFER_SIZE, "BOUND is derived from it"
    pending_tcp = (
        len(_private(tcp, "dataBuffer"))
        - _private(tcp, "offset")
        + _private(tcp, "_tempDataLen")
    )
    pending_tls = sum(len(b) for b in _private(tls, "_appSendBuffer"))
    aggregator = _private(tls, "_aggregator")
    pending_small_writes = sum(len(b) for b in _private(aggregator, "_buffer"))
    return int(pending_tcp + pending_tls + pending_small_writes)


@dataclass
class _Probe:
    """Samples one server connection's buffered bytes; keeps the maximum."""

    protocol: EchoServerProtocol
    maximum: int = 0
    samples: int = 0
    history: list[int] = field(default_factory=list)

    def sample(self) -> int:
        """Measure now and remember the maximum."""
        transport: Any = self.protocol.transport
        if transport is None or not transport.connected:
            return 0  # gone: nothing held (and TLS dropped its buffers)
        value = server_buffered(self.protocol)
        self.maximum = max(self.maximum, value)
        self.samples += 1
        return value

    def attach(self) -> None:
        """Also sample right after every echo write, when the buffers are fullest."""
        original: Callable[[bytes], None] = self.protocol.dataReceived

        def received_then_sample(data: bytes) -> None:
            original(data)
            self.sample()

        self.protocol.dataReceived = received_then_sample  # type: ignore[method-assign]


async def _wait(deferred: Deferred[Any], seconds: float, what: str) -> Any:
    """Wait for C{deferred}, failing the test with C{what} after C{seconds}."""
    try:
        return await deferred.addTimeout(seconds, _reactor())
    except Exception as e:
        raise AssertionError(f"{what}: {e!r}") from e


async def _sleep(seconds: float) -> None:
    await deferLater(_reactor(), seconds, lambda: None)


async def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll C{condition} every 10 ms until it holds, at most C{seconds}."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        await _sleep(0.01)


def _settings(files: TLSFiles) -> TLSSettings:
    return TLSSettings(certificate=files.server_cert, private_key=files.server_key)


async def _listen(files: TLSFiles, factory: EchoServerFactory) -> IListeningPort:
    endpoint = server_endpoint(
        _reactor(), "tcp:0:interface=127.0.0.1", server_creator(_settings(files))
    )
    port: IListeningPort = await endpoint.listen(factory)
    return port


def _client_endpoint(files: TLSFiles, port: IListeningPort) -> Any:
    creator = client_creator(TLSSettings(ca=(files.ca,)), "localhost")
    address: Any = port.getHost()
    return client_endpoint(_reactor(), "127.0.0.1", address.port, creator, 10)


async def _connect_flooder(
    files: TLSFiles,
    port: IListeningPort,
    factory: EchoServerFactory,
    flooder: _NonReadingFlooder,
) -> _Probe:
    """Connect C{flooder}; return a probe on its connection's server side."""
    known = set(factory.connections)
    await _wait(connectProtocol(_client_endpoint(files, port), flooder), 10, "TCP connect")
    await _wait(flooder.handshake, 10, "TLS handshake")
    await _until(lambda: bool(factory.connections - known), 10, "server connection")
    (server,) = factory.connections - known
    probe = _Probe(server)
    probe.attach()
    return probe


async def _flood_until_still(
    flooder: _NonReadingFlooder, probe: _Probe, stop_above: int | None = None
) -> None:
    """
    Let the flooder push until neither the server's reading nor the client's writing
    has moved for L{STILL_FOR} seconds (or the probe sees more than C{stop_above}).
    """
    flooder.flood()
    deadline = time.monotonic() + PHASE_TIMEOUT
    last = (probe.protocol.bytes_received, flooder.accepted)
    changed = time.monotonic()
    while True:
        await _sleep(0.005)
        probe.sample()
        if stop_above is not None and probe.maximum > stop_above:
            return
        now = (probe.protocol.bytes_received, flooder.accepted)
        if now != last:
            last, changed = now, time.monotonic()
        elif time.monotonic() - changed >= STILL_FOR:
            return
        assert time.monotonic() < deadline, (
            f"the server never stopped reading: {probe.protocol.bytes_received} bytes "
            f"received, {flooder.accepted} offered"
        )


async def _close(
    flooder: _NonReadingFlooder, factory: EchoServerFactory, port: IListeningPort | None
) -> None:
    """Abort every connection still open, wait until they are gone, stop listening."""
    try:
        transport: Any = flooder.transport
        if transport is not None and not flooder.lost.called:
            transport.abortConnection()
            await _wait(flooder.lost, 10, "client connection to close")
        for protocol in list(factory.connections):
            server_transport: Any = protocol.transport
            server_transport.abortConnection()
        await _until(lambda: not factory.connections, 10, "server connections to close")
    finally:
        if port is not None:
            await _wait(maybeDeferred(port.stopListening), 10, "stop listening")


@pytest_twisted.ensureDeferred
async def test_server_memory_bounded_when_peer_never_reads(tls_files: TLSFiles) -> None:
    """A peer that never reads makes the server pause reading, so it holds under 384 KiB."""
    factory = EchoServerFactory()
    flooder = _NonReadingFlooder(TOTAL)
    port = None
    try:
        port = await _listen(tls_files, factory)
        probe = await _connect_flooder(tls_files, port, factory, flooder)
        await _flood_until_still(flooder, probe)
        stalled_at = probe.protocol.bytes_received
        print(
            f"flow-control bound: max {probe.maximum} bytes buffered by the server "
            f"({probe.samples} samples) while the client had {flooder.accepted} of "
            f"{TOTAL} bytes accepted and the server had read {stalled_at}"
        )
        assert flooder.accepted < TOTAL, "the client was never held back"
        assert flooder.paused, "the client's transport is not pausing it"
        assert flooder.accepted >= MIN_ACCEPTED
        assert stalled_at >= MIN_ACCEPTED // 2
        assert probe.maximum < BOUND
        # Still paused a while later: the server stopped reading, it is not slow.
        await _sleep(0.5)
        probe.sample()
        assert probe.protocol.bytes_received == stalled_at
        assert probe.maximum < BOUND
        assert probe.protocol in factory.connections
    finally:
        await _close(flooder, factory, port)


@pytest_twisted.ensureDeferred
async def test_other_clients_echoed_while_peer_never_reads(tls_files: TLSFiles) -> None:
    """While one peer floods and never reads, another client is echoed normally."""
    factory = EchoServerFactory()
    flooder = _NonReadingFlooder(TOTAL)
    port = None
    try:
        port = await _listen(tls_files, factory)
        probe = await _connect_flooder(tls_files, port, factory, flooder)
        await _flood_until_still(flooder, probe)
        stalled_at = probe.protocol.bytes_received
        payload = random.Random(7).randbytes(1 * MiB)
        echoed = await _wait(
            echo(_client_endpoint(tls_files, port), payload, _reactor(), timeout=30),
            40,
            "echo for the well-behaved client",
        )
        assert echoed == payload
        # The flooding connection is untouched: still open, still paused, bounded.
        probe.sample()
        assert probe.protocol in factory.connections
        assert not flooder.lost.called
        assert probe.protocol.bytes_received == stalled_at
        assert probe.maximum < BOUND
    finally:
        await _close(flooder, factory, port)


@pytest_twisted.ensureDeferred
async def test_all_bytes_echoed_in_order_once_peer_reads_again(
    tls_files: TLSFiles,
) -> None:
    """When the stalled peer reads again, every byte it sent comes back, in order."""
    factory = EchoServerFactory()
    flooder = _NonReadingFlooder(TOTAL)
    port = None
    try:
        port = await _listen(tls_files, factory)
        probe = await _connect_flooder(tls_files, port, factory, flooder)
        await _flood_until_still(flooder, probe)
        assert flooder.accepted < TOTAL
        flooder.resume_reading()
        await _wait(flooder.all_echoed, PHASE_TIMEOUT, "the whole echo")
        assert flooder.accepted == TOTAL
        assert flooder.received == TOTAL
        assert flooder.received_digest.hexdigest() == flooder.sent_digest.hexdigest()
        print(f"flow-control bound: max {probe.maximum} bytes buffered, stall and echo")
        assert probe.maximum < BOUND
        await _wait(flooder.lost, 10, "the client's clean close")
        assert flooder.reason is not None
        assert flooder.reason.check(ConnectionDone)
        await _until(lambda: not factory.connections, 10, "server to forget connection")
        assert probe.protocol.bytes_received == TOTAL
    finally:
        await _close(flooder, factory, port)


class _NoFlowControlProtocol(EchoServerProtocol):
    """An echo server that, wrongly, never registers a producer."""

    def connectionMade(self) -> None:
        """Skip the flow-control registration."""


class _NoFlowControlFactory(EchoServerFactory):
    """Builds L{_NoFlowControlProtocol}s."""

    def buildProtocol(self, addr: Any) -> EchoServerProtocol:  # type: ignore[override]
        protocol = _NoFlowControlProtocol()
        protocol.factory = self
        self.connections.add(protocol)
        return protocol


@pytest_twisted.ensureDeferred
async def test_measurement_detects_server_without_flow_control(
    tls_files: TLSFiles,
) -> None:
    """The probe sees more than the bound on a server that keeps reading (control)."""
    factory = _NoFlowControlFactory()
    flooder = _NonReadingFlooder(TOTAL)
    port = None
    try:
        port = await _listen(tls_files, factory)
        probe = await _connect_flooder(tls_files, port, factory, flooder)
        await _flood_until_still(flooder, probe, stop_above=2 * BOUND)
        print(f"control: max {probe.maximum} bytes buffered without flow control")
        assert probe.maximum > BOUND
    finally:
        await _close(flooder, factory, port)
