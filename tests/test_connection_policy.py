"""
Connection policy: --max-connection-age closes old connections with close_notify
(so that long-lived clients reconnect to a reloaded certificate), and
--max-connections-per-ip keeps one address (behind a trusted proxy, the client
its PROXY header names) from taking every slot.  Against the real plugin, with
stdlib ``ssl`` clients; the factory's bookkeeping on a StringTransport.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from test_echoserver import TLSStringTransport
from tlsecho import EchoServerFactory

from _processes import ServerProcess, identity, metrics_of, start_server
from conftest import TLSFiles, write_cert
from hostile.proxy import is_closed, v1, v2_inet

#: How long a close_notify may take beyond the configured age: generous, for a
#: loaded machine (the abort after the close grace is 10 s later still).
SLACK = 8.0
REFUSED = r"refused: 2 connections from this address are open \(--max-connections-per-ip\)"


def _tls(
    port: int, ca: Path, source: str = "127.0.0.1", header: bytes = b""
) -> ssl.SSLSocket:
    """A TLS connection from C{source} (after C{header}, if any) that has echoed once."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(10)
    raw.bind((source, 0))
    raw.connect(("127.0.0.1", port))
    raw.sendall(header)
    context = ssl.create_default_context(cafile=str(ca))
    # An EOF without close_notify raises rather than reads as b"".
    tls = context.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    tls.sendall(b"ping\n")
    assert tls.recv(100) == b"ping\n"
    return tls


def _raw(port: int, source: str = "127.0.0.1", header: bytes = b"") -> socket.socket:
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(10)
    raw.bind((source, 0))
    raw.connect(("127.0.0.1", port))
    raw.sendall(header)
    return raw


def _serial(tls: ssl.SSLSocket) -> int:
    der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


@contextlib.contextmanager
def _closing(*sockets: socket.socket) -> Iterator[None]:
    try:
        yield
    finally:
        for s in sockets:
            s.close()


def test_max_connection_age_closes_with_close_notify_then_new_certificate(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """
    A client holding a connection is closed with close_notify once it is
    --max-connection-age old (not before, and well within age + slack), the
    close is logged with its reason, and after a SIGHUP with a new certificate
    the reconnecting client sees the new serial.
    """
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.write_bytes(tls_files.server_cert.read_bytes())
    key.write_bytes(tls_files.server_key.read_bytes())
    key.chmod(0o600)
    server = start_server(
        servers, "--cert", str(cert), "--key", str(key), "--max-connection-age", "2"
    )
    started = time.monotonic()
    held = _tls(server.port, tls_files.ca)
    with _closing(held):
        old = _serial(held)
        renewed_cert, renewed_key = write_cert(
            tls_files.server_ca.issue_cert("localhost", "127.0.0.1"), tmp_path, "renewed"
        )
        os.replace(renewed_cert, cert)
        os.replace(renewed_key, key)
        os.kill(server.process.pid, signal.SIGHUP)
        server.wait_for("reloaded the TLS configuration")
        held.sendall(b"still here\n")  # the old connection goes on until its age
        assert held.recv(100) == b"still here\n"
        held.settimeout(2 + SLACK)
        assert held.recv(100) == b""  # close_notify (an unclean EOF would raise)
        elapsed = time.monotonic() - started
    assert elapsed >= 2, elapsed
    server.wait_for(r"127\.0\.0\.1:\d+: max connection age after 16 bytes echoed")
    again = _tls(server.port, tls_files.ca)
    with _closing(again):
        assert _serial(again) != old


def test_max_connection_age_in_toml(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """max-connection-age and max-connections-per-ip are TOML keys too."""
    config = tmp_path / "tlsecho.toml"
    config.write_text("max-connection-age = 4.5\nmax-connections-per-ip = 1\n")
    server = start_server(servers, *identity(tls_files), "--config", str(config))
    held = _tls(server.port, tls_files.ca)
    with _closing(held):
        second = _raw(server.port)
        with _closing(second):
            assert is_closed(second)
        server.wait_for(
            r"refused: 1 connections from this address are open "
            r"\(--max-connections-per-ip\)"
        )
        held.settimeout(4.5 + SLACK)
        assert held.recv(100) == b""
    server.wait_for(r"max connection age after 5 bytes echoed")


def _refusals(server: ServerProcess) -> int:
    return len(re.findall(REFUSED, server.output))


def test_max_connections_per_ip(servers: list, tls_files: TLSFiles) -> None:
    """
    With --max-connections-per-ip 2, a third connection from 127.0.0.1 is closed
    before TLS (logged once, counted) while one from 127.0.0.2 is served; when
    a connection from 127.0.0.1 ends, its slot is free again.
    """
    server = start_server(
        servers,
        *identity(tls_files),
        "--max-connections-per-ip",
        "2",
        "--metrics",
        "tcp:0:interface=127.0.0.1",
    )
    port = server.port
    first, second = _tls(port, tls_files.ca), _tls(port, tls_files.ca)
    with _closing(first, second):
        third = _raw(port)
        with _closing(third):
            # Nothing of TLS: the server closes without reading or sending.
            third.sendall(b"\x16\x03\x01\x00\x05hello")
            assert is_closed(third)
        line = server.wait_for(rf"127\.0\.0\.1:\d+: {REFUSED}").group(0)
        assert line
        other = _tls(port, tls_files.ca, source="127.0.0.2")
        with _closing(other):
            values = metrics_of(server)
            assert (
                values['tlsecho_connections_refused_total{limit="max-connections-per-ip"}']
                == 1
            )
            assert values['tlsecho_connections_refused_total{limit="max-connections"}'] == 0
            assert values["tlsecho_connections_active"] == 3
        assert _refusals(server) == 1
        first.close()
        server.wait_for(r"127\.0\.0\.1:\d+: [\w ]+ after 5 bytes echoed")
        fourth = _tls(port, tls_files.ca)  # the slot first held is free
        fourth.close()
    assert _refusals(server) == 1


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_max_connections_per_ip_counts_the_proxied_client(
    servers: list, tls_files: TLSFiles, version: str
) -> None:
    """
    Behind a trusted proxy (loopback, on a haproxy: listener), connections are
    counted by the client the PROXY header names: a third claiming 192.0.2.1 is
    closed before TLS while one claiming 192.0.2.2 is served, though all come
    from 127.0.0.1.
    """
    server = start_server(
        servers,
        *identity(tls_files),
        "--max-connections-per-ip",
        "2",
        listen="haproxy:tcp:0:interface=127.0.0.1",
    )
    port = server.port

    def header(client: str, client_port: int) -> bytes:
        if version == "v1":
            return v1("TCP4", client, "127.0.0.1", str(client_port), str(port))
        return v2_inet(client, client_port, port)

    first = _tls(port, tls_files.ca, header=header("192.0.2.1", 40001))
    second = _tls(port, tls_files.ca, header=header("192.0.2.1", 40002))
    with _closing(first, second):
        third = _raw(port, header=header("192.0.2.1", 40003) + b"\x16\x03\x01")
        with _closing(third):
            assert is_closed(third)
        server.wait_for(rf"192\.0\.2\.1:40003: {REFUSED}")
        other = _tls(port, tls_files.ca, header=header("192.0.2.2", 40004))
        other.close()
        server.wait_for(r"192\.0\.2\.2:40004: [\w ]+ after 5 bytes echoed")
        # Refused before TLS: one line, and no line for the connection ending.
        about_third = [line for line in server.lines if "192.0.2.1:40003" in line]
        assert len(about_third) == 1, about_third
    assert _refusals(server) == 1


# The factory's bookkeeping, on a StringTransport.


def _open(factory: EchoServerFactory, peer: object) -> tuple[object, TLSStringTransport]:
    protocol = factory.buildProtocol(peer)
    transport = TLSStringTransport(peerAddress=peer)
    protocol.makeConnection(transport)
    return protocol, transport


def test_slots_are_given_back_and_forgotten() -> None:
    """
    Each address holds as many slots as it has connections open; a refused
    connection holds none; when they end the count is back to 0 and the
    bookkeeping empty, however many addresses came.
    """
    factory = EchoServerFactory(clock=Clock(), max_connections_per_ip=2)
    opened = [
        _open(factory, IPv4Address("TCP", f"192.0.2.{n % 50}", 1000 + n))
        for n in range(100)
    ]
    assert factory.peer_slots.counts == {f"192.0.2.{n}": 2 for n in range(50)}
    extra, extra_transport = _open(factory, IPv4Address("TCP", "192.0.2.7", 9))
    assert extra_transport.disconnected  # aborted at once
    assert factory.refused == 1
    for protocol, _ in [*opened, (extra, extra_transport)]:
        protocol.connectionLost(Failure(ConnectionDone()))  # type: ignore[attr-defined]
    assert factory.peer_slots.counts == {}
    assert factory.connections == set()


def test_slot_keys() -> None:
    """IPv4-mapped IPv6 counts as IPv4; UNIX peers are not counted."""
    factory = EchoServerFactory(clock=Clock(), max_connections_per_ip=1)
    _open(factory, IPv4Address("TCP", "192.0.2.9", 1))
    _, mapped = _open(factory, IPv6Address("TCP", "::ffff:192.0.2.9", 2))
    assert mapped.disconnected
    for _ in range(3):
        _, unix = _open(factory, UNIXAddress(None))
        assert not unix.disconnected
    assert factory.peer_slots.counts == {"192.0.2.9": 1}


def test_no_limit_counts_nothing() -> None:
    """Without --max-connections-per-ip nothing is counted."""
    factory = EchoServerFactory(clock=Clock())
    for n in range(10):
        _open(factory, IPv4Address("TCP", "192.0.2.1", n))
    assert factory.peer_slots.counts == {}


def test_age_closes_with_close_notify_then_aborts() -> None:
    """
    At max_connection_age the connection is closed politely (its producer
    unregistered, so TLS sends close_notify), and aborted close_timeout later
    if the peer never takes it.
    """
    clock = Clock()
    factory = EchoServerFactory(clock=clock, max_connection_age=5, idle_timeout=None)
    protocol, transport = _open(factory, IPv4Address("TCP", "192.0.2.1", 1))
    protocol.handshakeCompleted()  # type: ignore[attr-defined]
    clock.advance(4.9)
    assert not transport.disconnecting
    clock.advance(0.1)
    assert transport.disconnecting  # loseConnection: close_notify first
    assert transport.producer is None
    assert not transport.disconnected
    clock.advance(factory.close_timeout - 0.1)
    assert not transport.disconnected
    clock.advance(0.1)
    assert transport.disconnected  # aborted
