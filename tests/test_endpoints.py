"""
Tests for L{tlsecho._net._endpoints}: C{HOST:PORT} parsing, the loopback-only check the
development certificate relies on, and the C{--listen} description checks, with a
L{MemoryReactor} (nothing listens).
"""

from __future__ import annotations

import pytest
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint, IStreamServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor
from twisted.protocols.tls import TLSMemoryBIOFactory

from tlsecho import ConfigurationError, TLSSettings, client_creator, server_creator
from tlsecho._net._endpoints import (
    client_endpoint,
    parse_address,
    plain_server_endpoint,
    require_loopback,
    server_endpoint,
    transport_endpoint,
)

from conftest import TLSFiles

WHY = "the development certificate may only serve loopback"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost:8443", ("localhost", 8443)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("echo.example.com:65535", ("echo.example.com", 65535)),
        ("[::1]:8443", ("::1", 8443)),
        ("[2001:db8::1]:443", ("2001:db8::1", 443)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    """HOST:PORT and [IPv6]:PORT split into host and integer port."""
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    "text",
    ["localhost", "localhost:", ":8443", "::1:8443", "[::1]", "[::1]8443", "host:http", ""],
)
def test_parse_address_rejects_malformed(text: str) -> None:
    """Text that is not HOST:PORT or [IPv6]:PORT is a ConfigurationError quoting it."""
    with pytest.raises(ConfigurationError) as info:
        parse_address(text)
    assert str(info.value) == (
        f"HOST:PORT: expected HOST:PORT or [IPv6]:PORT, got {text!r}"
    )


@pytest.mark.parametrize("text", ["localhost:0", "localhost:65536", "[::1]:99999"])
def test_parse_address_rejects_port_out_of_range(text: str) -> None:
    """A port outside 1-65535 is a ConfigurationError naming the port."""
    with pytest.raises(ConfigurationError, match="out of range") as info:
        parse_address(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    "description",
    [
        "tcp:8443:interface=127.0.0.1",
        "tcp:8443:interface=127.0.0.53",
        "tcp:port=8443:interface=127.0.0.1",
        r"tcp6:8443:interface=\:\:1",
        "tcp:8443:interface=localhost",
        "unix:/run/tlsecho/echo.sock",
        "unix:relative.sock:mode=660",
        "haproxy:tcp:8443:interface=127.0.0.1",
        r"haproxy:tcp6:8443:interface=\:\:1",
        "haproxy:unix:/run/tlsecho/echo.sock",
    ],
)
def test_require_loopback_accepts(description: str) -> None:
    """Loopback TCP interfaces, localhost and UNIX sockets count as loopback-only."""
    require_loopback(description, WHY)


@pytest.mark.parametrize(
    "description",
    [
        "tcp:8443",
        "tcp6:8443",
        "tcp:8443:interface=0.0.0.0",
        r"tcp6:8443:interface=\:\:",
        "tcp:8443:interface=192.0.2.10",
        "tcp:8443:interface=echo.example.com",
        "haproxy:tcp:8443",
        "haproxy:tcp:8443:interface=0.0.0.0",
        "systemd:domain=INET:index=0",
        "ssl:8443:interface=127.0.0.1",
    ],
)
def test_require_loopback_rejects(description: str) -> None:
    """Anything not provably loopback, including a missing interface, is rejected."""
    with pytest.raises(ConfigurationError) as info:
        require_loopback(description, WHY)
    assert info.value.option == "listen"
    assert str(info.value) == f"listen: {description!r} is not loopback-only: {WHY}"


@pytest.mark.parametrize(
    "description",
    ["ssl:8443", "tls:8443", "le:/certs:tcp:443", "lets:/certs:tcp:443", " SSL:8443"],
)
def test_plain_server_endpoint_rejects_tls_types(description: str) -> None:
    """A description that already asks for TLS is rejected, suggesting the plain form."""
    with pytest.raises(ConfigurationError) as info:
        plain_server_endpoint(MemoryReactor(), description)
    assert str(info.value) == (
        f"listen: {description!r}: tlsecho adds TLS itself; describe the plain "
        "transport instead (for example tcp:8443)"
    )


@pytest.mark.parametrize(
    "description",
    ["bogus:8443", "tcp:http", "tcp:8443:backlog=many", "tcp", "tcp:8443:nosuch=1"],
)
def test_plain_server_endpoint_rejects_bad_description(description: str) -> None:
    """A description Twisted cannot parse is a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError) as info:
        plain_server_endpoint(MemoryReactor(), description)
    message = str(info.value)
    assert message.startswith(f"listen: bad endpoint description {description!r}: ")
    assert "\n" not in message
    assert not message.endswith(": ")


@pytest.mark.parametrize(
    "description",
    [
        "tcp:65536:interface=127.0.0.1",
        "tcp:99999",
        "tcp:-1",
        r"tcp6:70000:interface=\:\:1",
        "haproxy:tcp:65536:interface=127.0.0.1",
    ],
)
def test_plain_server_endpoint_rejects_port_out_of_range(description: str) -> None:
    """A TCP port outside 0-65535 is a bad description, caught before any listening."""
    with pytest.raises(ConfigurationError) as info:
        plain_server_endpoint(MemoryReactor(), description)
    assert str(info.value).startswith(f"listen: bad endpoint description {description!r}: ")


@pytest.mark.parametrize("description", ["haproxy:ssl:8443", "haproxy:tls:8443"])
def test_tls_type_below_proxy_is_refused(description: str) -> None:
    """A TLS type below the haproxy: wrapper is refused as at the top."""
    with pytest.raises(ConfigurationError, match="tlsecho adds TLS itself"):
        plain_server_endpoint(MemoryReactor(), description)


@pytest.mark.parametrize(
    ("description", "reason"),
    [
        ("haproxy:haproxy:tcp:8443", "haproxy: is given twice"),
        ("tcp:8443\\", "it ends with a lone backslash"),
    ],
)
def test_unreadable_description_is_refused(description: str, reason: str) -> None:
    """A description that cannot be read is one ConfigurationError, everywhere."""
    expected = f"listen: bad endpoint description {description!r}: {reason}"
    for check in (
        lambda: plain_server_endpoint(MemoryReactor(), description),
        lambda: transport_endpoint(MemoryReactor(), description),
        lambda: require_loopback(description, WHY),
    ):
        with pytest.raises(ConfigurationError) as info:
            check()
        assert str(info.value) == expected


def test_transport_endpoint_is_below_the_proxy_wrapper() -> None:
    """transport_endpoint builds the transport a haproxy: description wraps."""
    endpoint = transport_endpoint(MemoryReactor(), "haproxy:tcp:8443:interface=127.0.0.1")
    assert isinstance(endpoint, TCP4ServerEndpoint)


def test_plain_server_endpoint_parses_tcp() -> None:
    """A tcp: description becomes a TCP server endpoint."""
    endpoint = plain_server_endpoint(MemoryReactor(), "tcp:8443:interface=127.0.0.1")
    assert isinstance(endpoint, TCP4ServerEndpoint)


def test_plain_server_endpoint_parses_escaped_tcp6() -> None:
    """A tcp6: description with an escaped IPv6 interface becomes a TCP6 endpoint."""
    endpoint = plain_server_endpoint(MemoryReactor(), r"tcp6:8443:interface=\:\:1")
    assert isinstance(endpoint, TCP6ServerEndpoint)


def test_server_endpoint_puts_tls_on_top(tls_files: TLSFiles) -> None:
    """server_endpoint listens on the described port with TLS wrapped around the factory."""
    reactor = MemoryReactor()
    creator = server_creator(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    )
    endpoint = server_endpoint(reactor, "tcp:8443:interface=127.0.0.1", creator)
    assert IStreamServerEndpoint.providedBy(endpoint)
    application = Factory.forProtocol(Protocol)
    endpoint.listen(application)
    ((port, factory, _backlog, interface),) = reactor.tcpServers
    assert (port, interface) == (8443, "127.0.0.1")
    assert isinstance(factory, TLSMemoryBIOFactory)
    assert factory.wrappedFactory is application


def test_server_endpoint_rejects_bad_description(tls_files: TLSFiles) -> None:
    """server_endpoint checks the description before wrapping it."""
    creator = server_creator(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    )
    with pytest.raises(ConfigurationError, match="tlsecho adds TLS itself"):
        server_endpoint(MemoryReactor(), "ssl:8443", creator)


def test_client_endpoint_is_a_client_endpoint(tls_files: TLSFiles) -> None:
    """client_endpoint returns a stream client endpoint."""
    creator = client_creator(TLSSettings(ca=(tls_files.ca,)), "localhost")
    endpoint = client_endpoint(MemoryReactor(), "localhost", 8443, creator, timeout=5)
    assert IStreamClientEndpoint.providedBy(endpoint)
