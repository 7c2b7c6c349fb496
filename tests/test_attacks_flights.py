"""
Attacks with handshake flights larger than one 32 KiB read (issue 10, item 6).

The real server (the twistd plugin) and the real client (C{tlsecho client}) talk
over loopback with certificate chains and client certificates of 40 KiB and
100 KiB; the echo must arrive over TLS 1.2 and 1.3, a refused big flight must be
a handshake failure (exit 4), and a peer that stops halfway through a big
flight must be cut off by the handshake timeout.  In memory, the server must
only report a handshake done once its final flight has left.  The hostile
peers are built in L{hostile.flights}.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
import time
from pathlib import Path

import pytest
import trustme
from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IHandshakeListener,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor
from twisted.protocols import tls as upstream
from twisted.protocols.policies import ProtocolWrapper
from twisted.test.iosim import connectedServerAndClient
from zope.interface import implementer

from tlsecho import TLSSettings, TLSVersion, VerifyMode, client_creator, server_creator
from tlsecho._net._endpoints import client_endpoint, server_endpoint
from tlsecho._tls._tlsendpoints import tls_client_endpoint
from tlsecho._tls._tlsprotocol import TLSFactory, TLSProtocol

from _processes import ServerProcess, identity, run_client, start_server
from conftest import TLSFiles
from hostile.flights import big_identity

#: What TLSProtocol overrides or relies on in Twisted's TLSMemoryBIOProtocol: if
#: upstream renames any of these, the override silently stops applying.
OVERRIDDEN = (
    "dataReceived",
    "_flushReceiveBIO",
    "_flushSendBIO",
    "_write",
    "_checkHandshakeStatus",
    "_tlsConnection",
    "_aborted",
    "_handshakeDone",
    "_lostTLSConnection",
    "_appSendBuffer",
    "_unbufferPendingWrites",
    "_bufferedWrite",
    "_shutdownTLS",
    "_tlsShutdownFinished",
    "connectionLost",
    "makeConnection",
    "_connectWrapped",
)
KiB = 1024
#: The most one upstream flush sends.
UPSTREAM_READ = 32 * KiB
#: Just under OpenSSL's default limit on a peer's certificate list
#: (SSL_CTX_set_max_cert_list: 100 KiB for the whole Certificate message).
NEAR_LIMIT = 100 * KiB - 512
PAYLOAD = b"a payload after a big flight\n"
VERSIONS = {"TLSv1.2": ["--max-tls", "1.2"], "TLSv1.3": ["--min-tls", "1.3"]}
#: Seconds the server gives a handshake in the tests that do not wait for it;
#: long enough that a stalled handshake shows up as a client timeout first.
LONG_HANDSHAKE = "60"
CLIENT_TIMEOUT = "20"


def _client(server: ServerProcess, *arguments: str) -> tuple[int, bytes, str]:
    result = run_client(
        server.address, "--timeout", CLIENT_TIMEOUT, *arguments, payload=PAYLOAD
    )
    return result.returncode, result.stdout, result.stderr.decode()


@pytest.mark.parametrize(
    ("size", "intermediates"),
    [(40 * KiB, 1), (NEAR_LIMIT, 2)],
    ids=["40KiB", "100KiB"],
)
def test_big_server_chain_is_echoed(
    tmp_path: Path,
    ca: trustme.CA,
    servers: list[ServerProcess],
    size: int,
    intermediates: int,
) -> None:
    """A server chain of 40 or 100 KiB is sent whole: the echo arrives, TLS 1.2 and 1.3."""
    chain = big_identity(ca, tmp_path, "big", size, intermediates=intermediates)
    assert chain.der_size > UPSTREAM_READ + 4 * KiB
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    server = start_server(
        servers,
        "--cert",
        str(chain.chain),
        "--key",
        str(chain.key),
        "--handshake-timeout",
        LONG_HANDSHAKE,
    )
    for version, flags in VERSIONS.items():
        status, out, err = _client(server, "--ca", str(ca_path), *flags)
        assert (status, out, err) == (0, PAYLOAD, ""), version
    lines = server.output
    for version in VERSIONS:
        assert f"closed after {len(PAYLOAD)} bytes echoed" in lines
        assert f"({version}, " in lines


@pytest.mark.parametrize("verify", ["optional", "required"])
def test_big_client_certificate_is_echoed(
    tmp_path: Path,
    tls_files: TLSFiles,
    servers: list[ServerProcess],
    verify: str,
) -> None:
    """A 40 KiB client certificate is sent whole: the echo arrives, TLS 1.2 and 1.3."""
    client = big_identity(
        tls_files.client_authority,
        tmp_path,
        "client-big",
        40 * KiB,
        names=("client.example",),
        client=True,
        intermediates=0,
    )
    server = start_server(
        servers,
        *identity(tls_files),
        "--ca",
        str(tls_files.client_ca),
        "--verify",
        verify,
        "--handshake-timeout",
        LONG_HANDSHAKE,
    )
    for version, flags in VERSIONS.items():
        status, out, err = _client(
            server,
            "--ca",
            str(tls_files.ca),
            "--cert",
            str(client.chain),
            "--key",
            str(client.key),
            *flags,
        )
        assert (status, out, err) == (0, PAYLOAD, ""), version
    for version in VERSIONS:
        server.wait_for(
            rf"closed after {len(PAYLOAD)} bytes echoed .*\({version}, .*"
            r"client CN=client\.example"
        )


@pytest.mark.parametrize("version", VERSIONS)
def test_refused_big_server_chain_is_a_handshake_failure(
    tmp_path: Path,
    tls_files: TLSFiles,
    servers: list[ServerProcess],
    version: str,
) -> None:
    """A client refusing a 40 KiB chain's CA exits 4 ("unknown CA"); the server sees why."""
    # A root the client is not told about: tls_files.ca is another CA.
    chain = big_identity(trustme.CA(), tmp_path, "big", 40 * KiB)
    server = start_server(
        servers,
        "--cert",
        str(chain.chain),
        "--key",
        str(chain.key),
        "--handshake-timeout",
        LONG_HANDSHAKE,
    )
    status, out, err = _client(server, "--ca", str(tls_files.ca), *VERSIONS[version])
    assert (status, out) == (4, b"")
    assert "certificate verify failed: unknown CA" in err
    assert err.count("\n") == 1
    # The client's alert reached the server: no stall until the handshake timeout.
    server.wait_for(r"TLS handshake failed: the peer does not trust our certificate")
    assert "handshake timeout" not in server.output


def test_server_chain_over_openssl_limit_is_a_handshake_failure(
    tmp_path: Path, ca: trustme.CA, servers: list[ServerProcess]
) -> None:
    """A chain over OpenSSL's 100 KiB certificate-list limit is refused: exit 4."""
    chain = big_identity(ca, tmp_path, "huge", 140 * KiB, intermediates=3)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    server = start_server(
        servers,
        "--cert",
        str(chain.chain),
        "--key",
        str(chain.key),
        "--handshake-timeout",
        LONG_HANDSHAKE,
    )
    for version, flags in VERSIONS.items():
        status, out, err = _client(server, "--ca", str(ca_path), *flags)
        assert (status, out) == (4, b""), version
        assert "excessive message size" in err, version
        assert err.count("\n") == 1, version


def test_peer_stalling_halfway_through_a_big_flight_hits_handshake_timeout(
    tmp_path: Path, tls_files: TLSFiles, servers: list[ServerProcess]
) -> None:
    """A client that stops after 32 KiB of its 40 KiB flight meets the handshake timeout."""
    timeout = 2.0
    client = big_identity(
        tls_files.client_authority,
        tmp_path,
        "client-big",
        40 * KiB,
        names=("client.example",),
        client=True,
        intermediates=0,
    )
    server = start_server(
        servers,
        *identity(tls_files),
        "--ca",
        str(tls_files.client_ca),
        "--verify",
        "optional",
        "--handshake-timeout",
        str(timeout),
    )
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_max_proto_version(SSL.TLS1_2_VERSION)
    context.use_certificate_chain_file(str(client.chain))
    context.use_privatekey_file(str(client.key))
    connection = SSL.Connection(context, None)
    connection.set_connect_state()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        started = time.monotonic()
        flight = b""
        while len(flight) <= UPSTREAM_READ:
            with contextlib.suppress(SSL.WantReadError):
                connection.do_handshake()
            while True:
                try:
                    flight += connection.bio_read(2**16)
                except SSL.WantReadError:
                    break
            if len(flight) > UPSTREAM_READ:
                break
            sock.sendall(flight)
            flight = b""
            received = sock.recv(2**16)
            assert received, "the server closed before asking for our certificate"
            connection.bio_write(received)
        # Half of the big flight, then silence, as a stuck sender would.
        sock.sendall(flight[:UPSTREAM_READ])
        closed = b""
        try:
            while chunk := sock.recv(2**16):
                closed += chunk
        except ConnectionResetError:
            pass
        elapsed = time.monotonic() - started
    assert elapsed < timeout + 10
    server.wait_for(r"TLS handshake failed: handshake timeout")


@implementer(IHandshakeListener)
class _Witness(Protocol):
    """Notes what the TLS layer still held when it said the handshake was done."""

    left: bytes | None = None

    def handshakeCompleted(self) -> None:
        tls = self.transport
        try:
            self.left = tls._tlsConnection.bio_read(2**20)  # type: ignore[union-attr]
        except SSL.WantReadError:
            self.left = b""


@implementer(IHandshakeListener)
class _Quiet(Protocol):
    def handshakeCompleted(self) -> None:
        pass


def _handshake_in_memory(
    tls_files: TLSFiles, cert: Path, key: Path, max_tls: TLSVersion, factory: type
) -> _Witness:
    """A TLS handshake in memory, with C{factory} on both sides; what was held."""
    clock = Clock()
    witness = _Witness()
    server = factory(
        server_creator(
            TLSSettings(
                certificate=tls_files.server_cert,
                private_key=tls_files.server_key,
                ca=(tls_files.client_ca,),
                verify=VerifyMode.OPTIONAL,
            )
        ),
        False,
        Factory.forProtocol(lambda: witness),
        clock=clock,
    )
    quiet = _Quiet()
    client_side = factory(
        client_creator(
            TLSSettings(
                ca=(tls_files.ca,),
                certificate=cert,
                private_key=key,
                max_tls=max_tls,
            ),
            "localhost",
        ),
        True,
        Factory.forProtocol(lambda: quiet),
        clock=clock,
    )
    address = IPv4Address("TCP", "127.0.0.1", 54321)
    _, _, pump = connectedServerAndClient(
        lambda: server.buildProtocol(address),
        lambda: client_side.buildProtocol(address),
        clock=clock,
    )
    for _ in range(100):
        clock.advance(0)
        if not pump.pump() and witness.left is not None:
            break
    return witness


@pytest.mark.parametrize("max_tls", [TLSVersion.TLSv1_2, TLSVersion.TLSv1_3])
def test_server_reports_handshake_done_only_once_its_final_flight_left(
    tmp_path: Path, tls_files: TLSFiles, max_tls: TLSVersion
) -> None:
    """The server calls a handshake done (timer stops) only once its final flight left."""
    client = big_identity(
        tls_files.client_authority,
        tmp_path,
        "client-big",
        40 * KiB,
        names=("client.example",),
        client=True,
        intermediates=0,
    )
    witness = _handshake_in_memory(tls_files, client.chain, client.key, max_tls, TLSFactory)
    assert witness.left == b""


def test_upstream_reports_handshake_done_before_its_final_flight_left(
    tls_files: TLSFiles,
) -> None:
    """Control: under Twisted's TLS transport the check finds the last flight still held."""
    # A small client certificate: upstream stalls before the end with a big one.
    witness = _handshake_in_memory(
        tls_files,
        tls_files.client_cert,
        tls_files.client_key,
        TLSVersion.TLSv1_2,
        upstream.TLSMemoryBIOFactory,
    )
    assert witness.left is not None
    assert len(witness.left) > 0


def test_upstream_still_has_what_the_tls_protocol_overrides() -> None:
    """Every upstream name TLSProtocol overrides or uses still exists and is called."""
    base = upstream.TLSMemoryBIOProtocol
    source = inspect.getsource(base)
    for name in OVERRIDDEN:
        assert f"self.{name}" in source or f"def {name}(" in source, (
            f"Twisted no longer has {name}"
        )
    for method in ("_flushSendBIO", "_checkHandshakeStatus", "_flushReceiveBIO", "_write"):
        assert callable(getattr(base, method, None)), method
        assert method in vars(TLSProtocol), method
        assert f"self.{method}(" in source, method
    # makeConnection: upstream's steps, which TLSProtocol.makeConnection repeats
    # (a TCP transport is a StringTransport's superset: see test_transport).
    steps = inspect.getsource(base.makeConnection)
    for step in (
        "self._tlsConnection = self.factory._creatorCallable(self)",
        "self._appSendBuffer = []",
        "directlyProvides(self, interface)",
        "ProtocolWrapper.makeConnection(self, transport)",
        "self._checkHandshakeStatus()",
    ):
        assert step in steps, step
    assert "directlyProvides(self, providedBy(transport))" in inspect.getsource(
        ProtocolWrapper.makeConnection
    )
    # Upstream's own methods that stay call the replaced ones by these names.
    assert "self._flushSendBIO()" in inspect.getsource(base._shutdownTLS)  # type: ignore[attr-defined]
    assert "self._flushReceiveBIO()" in inspect.getsource(base.connectionLost)
    assert "self._write(" in inspect.getsource(base.write)
    # And upstream still reads only once: if it now drains, the override can go.
    assert "bio_read(2**15)" in inspect.getsource(base._flushSendBIO)  # type: ignore[attr-defined]


def test_endpoints_use_the_draining_tls_protocol(tls_files: TLSFiles) -> None:
    """server_endpoint and client_endpoint put tlsecho's TLSProtocol on every connection."""
    reactor = MemoryReactor()
    creator = server_creator(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    )
    server_endpoint(reactor, "tcp:0:interface=127.0.0.1", creator).listen(
        Factory.forProtocol(Protocol)
    )
    ((_, server_factory, _, _),) = reactor.tcpServers
    assert isinstance(server_factory, TLSFactory)
    assert server_factory.protocol is TLSProtocol

    @implementer(IStreamClientEndpoint)
    class Recording:
        factories: list[IProtocolFactory] = []

        def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
            self.factories.append(factory)
            return Deferred()

    below = Recording()
    tls_client_endpoint(
        client_creator(TLSSettings(ca=(tls_files.ca,)), "localhost"), below
    ).connect(Factory.forProtocol(Protocol))
    (client_factory,) = below.factories
    assert isinstance(client_factory, TLSFactory)
    assert client_factory.protocol is TLSProtocol
    endpoint = client_endpoint(
        reactor,
        "127.0.0.1",
        8443,
        client_creator(TLSSettings(ca=(tls_files.ca,)), "localhost"),
    )
    assert isinstance(endpoint, type(tls_client_endpoint(creator, below)))  # type: ignore[arg-type]
