"""
tlsecho's TLS transport (tlsecho._tls._tlsprotocol.TLSProtocol) against
Twisted's (twisted.protocols.tls), in memory.

The differential tests drive the same byte sequences (split records, many
records at once, alerts, close_notify both ways, renegotiation, KeyUpdate)
from a raw pyOpenSSL client into a server built on each transport, and compare
what the server's application sees and what the client gets back.  The server
transports are Twisted's (C{upstream}), tlsecho's on the lean record layer
(C{lean}) and tlsecho's on pyOpenSSL's public calls (C{public}, the slow path).
Then each interface Twisted's transport gives protocols is checked on
tlsecho's: ISSLTransport and getPeerCertificate, negotiatedProtocol,
IHandshakeListener, producers, half-close, abortConnection, writes queued
before the handshake ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography import x509
from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IHandshakeListener,
    IPushProducer,
    ISSLTransport,
    ITCPTransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols import tls as upstream
from twisted.python.failure import Failure
from zope.interface import implementer, providedBy

from tlsecho import TLSSettings, VerifyMode, server_creator
from tlsecho._tls._openssl_internals import _records, _symbols
from tlsecho._tls._tlsprotocol import TLSFactory, TLSProtocol

from _processes import ServerProcess, identity, run_client, start_server
from conftest import TLSFiles

VERSIONS = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}


@pytest.fixture(params=["lean", "public"])
def variant(request: pytest.FixtureRequest) -> Iterator[str]:
    """tlsecho's transport on each record layer."""
    saved = list(_records._choice)
    _records._choice[:] = [request.param == "lean"]
    try:
        yield request.param
    finally:
        _records._choice[:] = saved


@implementer(IHandshakeListener)
class App(Protocol):
    """The server's application: echoes, and records what it was told."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.handshakes = 0
        self.lost: Failure | None = None
        self.on_data: Callable[[App, bytes], None] | None = None

    def connectionMade(self) -> None:
        if self.factory.early_write:  # type: ignore[attr-defined]
            self.transport.write(b"early ")  # type: ignore[union-attr]

    def handshakeCompleted(self) -> None:
        self.handshakes += 1

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        self.transport.write(data)  # type: ignore[union-attr]
        if self.on_data is not None:
            self.on_data(self, data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.lost = reason


@implementer(IHalfCloseableProtocol)
class HalfCloseableApp(App):
    """An application that wants the peer's close_notify as readConnectionLost."""

    read_closed = False

    def readConnectionLost(self) -> None:
        self.read_closed = True
        self.transport.write(b"bye")  # type: ignore[union-attr]

    def writeConnectionLost(self) -> None:
        pass


@dataclass
class Run:
    """A raw pyOpenSSL client talking to a server on one transport, in memory."""

    server: Any
    client: SSL.Connection
    clock: Clock
    wire: StringTransport
    app: App
    received: bytearray = field(default_factory=bytearray)
    client_state: str = "open"
    transport_lost: bool = False

    def settle(self) -> None:
        """Move the server's output to the client until nothing moves."""
        for _ in range(20):
            self.clock.advance(0)
            out = self.wire.value()
            self.wire.clear()
            if out:
                self.client.bio_write(out)
                self._client_reads()
            if self.wire.disconnecting and not self.transport_lost:
                self.transport_lost = True
                self.server.connectionLost(Failure(ConnectionDone()))
            if not out:
                return

    def _client_reads(self) -> None:
        while self.client_state == "open":
            try:
                self.received += self.client.recv(2**16)
            except SSL.WantReadError:
                return
            except SSL.ZeroReturnError:
                self.client_state = "close_notify"
            except SSL.Error as e:
                self.client_state = f"error {_reasons(e)}"

    def client_output(self) -> bytes:
        chunks = []
        while True:
            try:
                chunks.append(self.client.bio_read(2**16))
            except SSL.WantReadError:
                return b"".join(chunks)

    def to_server(self, data: bytes, piece: int = 0) -> None:
        """Give the server C{data}, all at once or C{piece} bytes at a time."""
        pieces = (
            [data[i : i + piece] for i in range(0, len(data), piece)] if piece else [data]
        )
        for chunk in pieces:
            if self.transport_lost:
                return
            self.server.dataReceived(chunk)
            self.settle()

    def handshake(self) -> None:
        for _ in range(10):
            try:
                self.client.do_handshake()
            except SSL.WantReadError:
                pass
            except SSL.Error:
                self.client_state = "handshake refused"
            out = self.client_output()
            if not out:
                break
            self.to_server(out)
        self._client_reads()

    def send(self, data: bytes, piece: int = 0) -> None:
        self.client.send(data)
        self.to_server(self.client_output(), piece)

    def seen(self) -> dict[str, object]:
        """What the application and the client saw."""
        lost = self.app.lost
        return {
            "app data": bytes(self.app.data),
            "handshakes": self.app.handshakes,
            "app lost": None
            if lost is None
            else f"{type(lost.value).__name__} {_reasons(lost.value)}",
            "client got": bytes(self.received),
            "client state": self.client_state,
            "transport closed": self.wire.disconnecting,
        }


def _reasons(error: BaseException) -> str:
    """OpenSSL's reasons in a pyOpenSSL error (its alert, its complaint)."""
    if isinstance(error, SSL.Error) and error.args and isinstance(error.args[0], list):
        return ", ".join(str(entry[-1]) for entry in error.args[0])
    return str(error.args[:1])


def start(
    kind: str,
    files: TLSFiles,
    version: str,
    app: type[App] = App,
    early_write: bool = False,
    **settings: Any,
) -> Run:
    """A server on transport C{kind} (C{upstream} or tlsecho's) and a client."""
    creator = server_creator(
        TLSSettings(certificate=files.server_cert, private_key=files.server_key, **settings)
    )
    clock = Clock()
    factory_type = upstream.TLSMemoryBIOFactory if kind == "upstream" else TLSFactory
    application = Factory.forProtocol(app)
    application.early_write = early_write  # type: ignore[attr-defined]
    server = factory_type(creator, False, application, clock).buildProtocol(
        IPv4Address("TCP", "127.0.0.1", 4433)
    )
    assert server is not None
    wire = StringTransport()
    server.makeConnection(wire)
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_min_proto_version(VERSIONS[version])
    context.set_max_proto_version(VERSIONS[version])
    context.load_verify_locations(str(files.ca))
    context.set_verify(SSL.VERIFY_PEER)
    if "alpn" in settings:
        context.set_alpn_protos([b"other", b"echo"])
    if settings.get("verify") is not None:
        context.use_certificate_chain_file(str(files.client_cert))
        context.use_privatekey_file(str(files.client_key))
    client = SSL.Connection(context, None)
    client.set_connect_state()
    client.set_tlsext_host_name(b"localhost")
    return Run(server, client, clock, wire, server.wrappedProtocol)


# The scenarios: each drives a handshaken connection, the same way for every transport.


def _echo(run: Run) -> None:
    run.send(b"hello")


def _split_at_every_byte(run: Run) -> None:
    for word in (b"one ", b"two ", b"three"):
        run.client.send(word)
    run.to_server(run.client_output(), piece=1)


def _many_records_at_once(run: Run) -> None:
    for i in range(60):
        run.client.send(b"%d," % i)
    run.to_server(run.client_output())


def _big_writes(run: Run) -> None:
    run.send(bytes(range(256)) * 400)  # 100 KiB: seven records each way


def _application_writes_a_lot_at_once(run: Run) -> None:
    bulk = bytes(range(256)) * 1200  # 300 KiB in one write: nineteen records

    def answer(app: App, data: bytes) -> None:
        app.transport.write(bulk)  # type: ignore[union-attr]

    run.app.on_data = answer
    run.send(b"go")


def _client_close_notify(run: Run) -> None:
    run.send(b"last words")
    run.client.shutdown()
    run.to_server(run.client_output())


def _server_closes(run: Run) -> None:
    run.send(b"ping")
    run.app.transport.loseConnection()  # type: ignore[union-attr]
    run.settle()
    run.client.shutdown()
    run.to_server(run.client_output())


def _peer_vanishes(run: Run) -> None:
    run.send(b"no goodbye")
    run.transport_lost = True
    run.server.connectionLost(Failure(ConnectionDone()))


def _peer_vanishes_mid_record(run: Run) -> None:
    run.client.send(b"cut short")
    record = run.client_output()
    run.to_server(record[:-3])
    run.transport_lost = True
    run.server.connectionLost(Failure(ConnectionDone()))


def _corrupted_record(run: Run) -> None:
    run.client.send(b"tampered")
    record = bytearray(run.client_output())
    record[-1] ^= 0x01
    run.to_server(bytes(record))


def _plaintext_alert(run: Run) -> None:
    run.send(b"before")
    run.to_server(b"\x15\x03\x03\x00\x02\x02\x28")  # a fatal handshake_failure


def _garbage(run: Run) -> None:
    run.to_server(b"GET / HTTP/1.1\r\n\r\n")


def _renegotiation(run: Run) -> None:
    run.send(b"before")
    if run.client.renegotiate():
        with contextlib.suppress(SSL.WantReadError):
            run.client.do_handshake()
        run.to_server(run.client_output())
    if run.client_state == "open" and not run.transport_lost:
        run.send(b"after")


def _key_update(run: Run) -> None:
    key_update = _symbols.openssl_function("SSL_key_update", "int (*)(SSL *, int)")
    run.send(b"before")
    assert key_update(run.client._ssl, 1) == 1  # type: ignore[attr-defined]
    run.send(b"after")
    run.send(b"and again")


SCENARIOS = {
    "echo": (_echo, ("1.2", "1.3")),
    "split at every byte": (_split_at_every_byte, ("1.2", "1.3")),
    "many records at once": (_many_records_at_once, ("1.2", "1.3")),
    "big writes": (_big_writes, ("1.2", "1.3")),
    "application writes a lot at once": (_application_writes_a_lot_at_once, ("1.2", "1.3")),
    "client close_notify": (_client_close_notify, ("1.2", "1.3")),
    "server closes": (_server_closes, ("1.2", "1.3")),
    "peer vanishes": (_peer_vanishes, ("1.2", "1.3")),
    "peer vanishes mid-record": (_peer_vanishes_mid_record, ("1.2", "1.3")),
    "corrupted record": (_corrupted_record, ("1.2", "1.3")),
    "plaintext alert": (_plaintext_alert, ("1.2", "1.3")),
    "garbage": (_garbage, ("1.2", "1.3")),
    "renegotiation": (_renegotiation, ("1.2",)),
    "key update": (_key_update, ("1.3",)),
}


@pytest.mark.parametrize(
    ("scenario", "version"),
    [(name, version) for name, (_, versions) in SCENARIOS.items() for version in versions],
)
def test_same_as_twisted_transport(
    scenario: str, version: str, variant: str, tls_files: TLSFiles
) -> None:
    """The application and the client see the same with either transport."""
    drive = SCENARIOS[scenario][0]
    seen = {}
    for kind in ("upstream", "tlsecho"):
        run = start(kind, tls_files, version)
        if scenario != "garbage":
            run.handshake()
            assert run.app.handshakes == 1, kind
        drive(run)
        seen[kind] = run.seen()
    assert seen["tlsecho"] == seen["upstream"]
    if scenario in ("echo", "split at every byte", "many records at once", "big writes"):
        assert seen["tlsecho"]["client got"] == seen["tlsecho"]["app data"] != b""


def test_both_record_layers_are_tested() -> None:
    """The lean layer is what tlsecho uses here; the public one stays available."""
    assert _records.lean_unavailable() is None
    connection = SSL.Connection(SSL.Context(SSL.TLS_METHOD), None)
    assert isinstance(_records.record_layer(connection), _records._BindingRecords)


# Interfaces ---------------------------------------------------------------------------


def test_ssl_transport_and_peer_certificate(tls_files: TLSFiles, variant: str) -> None:
    """It is an ISSLTransport; getPeerCertificate gives the client's certificate."""
    run = start(
        "tlsecho", tls_files, "1.3", verify=VerifyMode.OPTIONAL, ca=(tls_files.client_ca,)
    )
    run.handshake()
    assert isinstance(run.server, TLSProtocol)
    assert ISSLTransport.providedBy(run.server)
    certificate = run.server.getPeerCertificate()
    assert certificate is not None
    expected = x509.load_pem_x509_certificates(tls_files.client_cert.read_bytes())[0]
    assert certificate.to_cryptography() == expected


def test_declares_what_twisted_transport_declares(tls_files: TLSFiles) -> None:
    """The transport's interfaces are declared on it as Twisted's transport does
    (tlsecho's makeConnection declares them in one step), plus ISSLTransport."""
    servers = {}
    for kind in ("upstream", "tlsecho"):
        run = start(kind, tls_files, "1.3")
        servers[kind] = run.server
        assert run.server.connected
        assert set(run.server.factory.protocols) == {run.server}
        assert run.app.transport is run.server
    for interface in providedBy(servers["upstream"]).flattened():
        assert interface.providedBy(servers["tlsecho"]), interface
    for interface in providedBy(servers["tlsecho"]).flattened():
        assert interface.providedBy(servers["upstream"]) or interface is ISSLTransport, (
            interface
        )
    assert ISSLTransport.providedBy(servers["tlsecho"])
    assert ITCPTransport.providedBy(servers["tlsecho"]) is ITCPTransport.providedBy(
        servers["upstream"]
    )


def test_negotiated_protocol(tls_files: TLSFiles, variant: str) -> None:
    """negotiatedProtocol is the ALPN protocol both sides chose (None before)."""
    run = start("tlsecho", tls_files, "1.2", alpn=("echo",))
    assert run.server.negotiatedProtocol is None
    run.handshake()
    assert run.server.negotiatedProtocol == b"echo"


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_handshake_completed_once_after_the_final_flight(
    tls_files: TLSFiles, variant: str, version: str
) -> None:
    """handshakeCompleted comes once, when the server's last flight is already written."""
    run = start("tlsecho", tls_files, version)
    flights_at_completion: list[bytes] = []
    original = run.app.handshakeCompleted

    def completed() -> None:
        flights_at_completion.append(run.wire.value())
        original()

    run.app.handshakeCompleted = completed  # type: ignore[method-assign]
    run.handshake()
    assert run.app.handshakes == 1
    (written,) = flights_at_completion
    if version == "1.2":
        assert written  # the server's ChangeCipherSpec and Finished
    run.send(b"after")
    assert run.app.handshakes == 1
    assert run.received == b"after"


def test_writes_before_the_handshake_are_queued(tls_files: TLSFiles, variant: str) -> None:
    """What the application writes in connectionMade arrives after the handshake."""
    run = start("tlsecho", tls_files, "1.3", early_write=True)
    run.handshake()
    run.send(b"then echo")
    assert run.received == b"early then echo"


@implementer(IPushProducer)
class Producer:
    """A streaming producer that records what it was told."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def pauseProducing(self) -> None:
        self.events.append("pause")

    def resumeProducing(self) -> None:
        self.events.append("resume")

    def stopProducing(self) -> None:
        self.events.append("stop")


def test_producer_is_paused_and_resumed(tls_files: TLSFiles, variant: str) -> None:
    """A registered producer hears the transport below pausing and resuming, and
    pauses while writes wait for the handshake."""
    run = start("tlsecho", tls_files, "1.3")
    producer = Producer()
    run.server.registerProducer(producer, True)
    run.server.write(b"queued")  # before the handshake: buffered, producer paused
    run.clock.advance(0)
    assert producer.events == ["pause"]
    run.handshake()
    assert producer.events == ["pause", "resume"]
    assert run.received == b"queued"
    run.wire.producer.pauseProducing()
    run.wire.producer.resumeProducing()
    assert producer.events[2:] == ["pause", "resume"]
    run.server.unregisterProducer()
    assert run.wire.producer is None
    run.send(b"still echoes")
    assert run.received == b"queuedstill echoes"


def test_lose_connection_waits_for_the_producer(tls_files: TLSFiles, variant: str) -> None:
    """loseConnection with a producer registered sends close_notify once it unregisters."""
    run = start("tlsecho", tls_files, "1.3")
    run.handshake()
    producer = Producer()
    run.server.registerProducer(producer, True)
    run.server.loseConnection()
    run.settle()
    assert run.client_state == "open"
    run.server.unregisterProducer()
    run.settle()
    assert run.client_state == "close_notify"


def test_half_close_from_the_peer(tls_files: TLSFiles, variant: str) -> None:
    """A half-closeable application hears the peer's close_notify as
    readConnectionLost, and can still write until it closes."""
    run = start("tlsecho", tls_files, "1.3", app=HalfCloseableApp)
    run.handshake()
    run.send(b"request")
    run.client.shutdown()
    run.to_server(run.client_output())
    app = run.app
    assert isinstance(app, HalfCloseableApp)
    assert app.read_closed
    assert app.lost is None
    assert run.received == b"requestbye"
    run.server.write(b" and more")
    run.clock.advance(0)
    run.settle()
    assert run.received == b"requestbye and more"
    run.server.loseConnection()
    run.settle()
    assert run.client_state == "close_notify"
    assert run.wire.disconnecting
    assert isinstance(app.lost, Failure)
    assert app.lost.check(ConnectionDone)


def test_lose_write_connection_keeps_reading(tls_files: TLSFiles, variant: str) -> None:
    """loseWriteConnection sends close_notify and the peer's data still arrives;
    the peer's close_notify then ends the connection."""
    run = start("tlsecho", tls_files, "1.3")
    run.handshake()
    run.send(b"first")
    run.server.loseWriteConnection()
    run.settle()
    assert run.client_state == "close_notify"
    assert not run.wire.disconnecting
    run.server.write(b"dropped, as on TCP after loseWriteConnection")
    run.clock.advance(0)
    run.settle()
    assert run.received == b"first"
    assert not run.wire.disconnecting
    run.client.send(b"late")
    run.to_server(run.client_output())
    assert run.app.data == b"firstlate"
    run.client.shutdown()
    run.to_server(run.client_output())
    assert run.wire.disconnecting


def test_lose_write_connection_before_the_handshake_closes(
    tls_files: TLSFiles, variant: str
) -> None:
    """Before the handshake there is no half to close: it is loseConnection."""
    run = start("tlsecho", tls_files, "1.3")
    run.server.loseWriteConnection()
    assert run.wire.disconnecting


def test_abort_mid_handshake_delivers_nothing(tls_files: TLSFiles, variant: str) -> None:
    """abortConnection: the transport is aborted, no data reaches the application."""
    run = start("tlsecho", tls_files, "1.3")
    run.server.abortConnection()
    assert run.wire.disconnected
    run.handshake()
    assert run.app.data == b""
    assert run.app.handshakes == 0


def test_abort_after_data_stops_delivery(tls_files: TLSFiles, variant: str) -> None:
    """Records after abortConnection, even in the same read, are not delivered."""
    run = start("tlsecho", tls_files, "1.3")
    run.handshake()
    run.app.on_data = lambda app, data: app.transport.abortConnection()  # type: ignore[union-attr]
    run.client.send(b"one")
    run.client.send(b"two")
    run.to_server(run.client_output())
    assert run.app.data == b"one"
    assert run.wire.disconnected


@pytest.mark.parametrize("data_path", ["lean", "pyopenssl"])
def test_real_server_echoes_on_either_record_layer(
    servers: list[ServerProcess], tls_files: TLSFiles, data_path: str
) -> None:
    """The real plugin, on each record layer (TLSECHO_TLS_TRANSPORT), echoes a
    payload of many records byte for byte, over TLS 1.2 and 1.3."""
    server = start_server(
        servers, *identity(tls_files), env={_records.TRANSPORT_VARIABLE: data_path}
    )
    payload = bytes(range(256)) * 1200  # 300 KiB: about twenty records
    for flags in (["--max-tls", "1.2"], ["--min-tls", "1.3"]):
        result = run_client(
            server.address,
            "--ca",
            str(tls_files.ca),
            "--timeout",
            "30",
            *flags,
            payload=payload,
        )
        assert (result.returncode, result.stderr) == (0, b"")
        assert result.stdout == payload
