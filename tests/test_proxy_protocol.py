"""
``--listen haproxy:...``: the PROXY protocol (v1 and v2) under TLS, against the
real plugin.  Logs, metrics and authorization refusals name the client the
header names; a connection without a valid header is closed and logged.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import struct

import pytest

from _processes import (
    ServerProcess,
    identity,
    metrics_of,
    start_json_server,
    start_server,
)
from conftest import TLSFiles

PROXY_LISTEN = "haproxy:tcp:0:interface=127.0.0.1"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1_header(source: str, source_port: int, port: int) -> bytes:
    """A PROXY v1 header for a TCP connection from source:source_port."""
    family = "TCP6" if ":" in source else "TCP4"
    destination = "::1" if family == "TCP6" else "127.0.0.1"
    return f"PROXY {family} {source} {destination} {source_port} {port}\r\n".encode()


def v2_header(source: str, source_port: int, port: int) -> bytes:
    """A PROXY v2 header (PROXY command, TCP over IPv4 or IPv6)."""
    address = ipaddress.ip_address(source)
    if address.version == 4:
        family, destination = 0x11, ipaddress.ip_address("127.0.0.1")
    else:
        family, destination = 0x21, ipaddress.ip_address("::1")
    body = address.packed + destination.packed + struct.pack("!HH", source_port, port)
    return V2_SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(body)) + body


def v2_local() -> bytes:
    """A PROXY v2 LOCAL header, as HAProxy's health checks send."""
    return V2_SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)


def echo_through_proxy(
    port: int, header: bytes, tls_files: TLSFiles, certificate: bool = False
) -> bytes:
    """Send ``header``, then TLS on the same connection; echo a line."""
    context = ssl.create_default_context(cafile=str(tls_files.ca))
    if certificate:
        context.load_cert_chain(str(tls_files.client_cert), str(tls_files.client_key))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(header)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"proxied\n")
            received = b""
            while len(received) < 8:
                chunk = tls.recv(100)
                if not chunk:
                    break
                received += chunk
            return received


def _proxy_server(
    servers: list[ServerProcess], tls_files: TLSFiles, *extra: str
) -> ServerProcess:
    return start_server(servers, *identity(tls_files), *extra, listen=PROXY_LISTEN)


@pytest.mark.parametrize("header", [v1_header, v2_header], ids=["v1", "v2"])
@pytest.mark.parametrize("source", ["203.0.113.7", "2001:db8::7"])
def test_logged_peer_is_the_client_the_header_names(
    servers: list[ServerProcess], tls_files: TLSFiles, header: object, source: str
) -> None:
    """Echo works after the header, and the connection's log names the real client."""
    server, port = start_json_server(servers, *identity(tls_files), listen=PROXY_LISTEN)
    made = header(source, 51234, port)  # type: ignore[operator]
    assert echo_through_proxy(port, made, tls_files) == b"proxied\n"
    expected = f"[{source}]:51234" if ":" in source else f"{source}:51234"
    line = server.wait_for(r'"bytes_in": ?8')
    event = json.loads(line.string)
    assert event["peer"] == expected
    assert event["via"].startswith("127.0.0.1:")
    assert event["event"] == "connection.closed"


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 32, "no PROXY header"),
        (b"PROXY BOGUS 1.2.3.4 5.6.7.8 1 2\r\n", "invalid PROXY header"),
        (V2_SIGNATURE + b"\x99\x11\x00\x0c" + b"\x00" * 12, "invalid PROXY header"),
    ],
    ids=["tls-without-header", "bad-v1", "bad-v2-version"],
)
def test_connection_without_a_valid_header_is_closed_and_logged(
    servers: list[ServerProcess], tls_files: TLSFiles, sent: bytes, reason: str
) -> None:
    """No header, or a malformed one: closed before TLS, logged and counted."""
    server = _proxy_server(servers, tls_files, "--metrics", "tcp:0:interface=127.0.0.1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(sent)
        assert raw.recv(100) == b""  # closed, nothing sent back
    server.wait_for(rf"127\.0\.0\.1:\d+: PROXY header failed: {reason}")
    values = metrics_of(server)
    assert values[f'tlsecho_failures_total{{reason="{reason}"}}'] == 1
    failed = 'tlsecho_handshakes_total{cipher="",group="none",outcome="failed",version=""}'
    assert failed not in values
    # A well-behaved client still gets its echo.
    good = v1_header("198.51.100.1", 4000, server.port)
    assert echo_through_proxy(server.port, good, tls_files) == b"proxied\n"


def test_health_check_without_client_address(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """A v2 LOCAL header (a health check) is accepted; the peer is the proxy itself."""
    server = _proxy_server(servers, tls_files)
    assert echo_through_proxy(server.port, v2_local(), tls_files) == b"proxied\n"
    server.wait_for(r"127\.0\.0\.1:\d+: (closed|connection lost) after 8 bytes echoed")


def test_authorization_refusal_names_the_real_client(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """A client certificate refused by --allow-cn is logged with the real address."""
    server = _proxy_server(
        servers,
        tls_files,
        "--verify",
        "required",
        "--ca",
        str(tls_files.client_ca),
        "--allow-cn",
        "someone.else",
    )
    with pytest.raises((ssl.SSLError, ConnectionError)):
        # TLS 1.3: the refusal arrives after the client's handshake is done.
        echo_through_proxy(
            server.port, v1_header("192.0.2.44", 60000, server.port), tls_files, True
        )
    server.wait_for(
        r"192\.0\.2\.44:60000: TLS handshake failed: client certificate not authorized"
    )


@pytest.mark.parametrize(
    "header", [v2_local(), b"PROXY UNKNOWN\r\n"], ids=["v2-local", "v1-unknown"]
)
def test_health_check_is_neither_failure_nor_noise(
    servers: list[ServerProcess], tls_files: TLSFiles, header: bytes
) -> None:
    """
    A header naming no client, then nothing (HAProxy's check-send-proxy): not
    logged, not a failure, counted as a health check.
    """
    server = _proxy_server(servers, tls_files, "--metrics", "tcp:0:interface=127.0.0.1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(header)
    # Then a real connection, whose line proves the check's was handled first.
    good = v1_header("198.51.100.2", 4001, server.port)
    assert echo_through_proxy(server.port, good, tls_files) == b"proxied\n"
    server.wait_for(r"198\.51\.100\.2:4001: \w[\w ]* after 8 bytes echoed")
    assert "failed" not in server.output
    assert "health check" not in server.output
    values = metrics_of(server)
    assert not any(name.startswith("tlsecho_failures_total{") for name in values)
    assert values["tlsecho_connections_total"] == 2
    assert values["tlsecho_health_checks_total"] == 1
