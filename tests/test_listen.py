"""
Tests for L{tlsecho._net._listen}: reading a C{--listen} description as Twisted
does, and the one loopback rule shared by the development certificate (which
listeners it may serve) and the client (which hosts it trusts the development
CA for).  Nothing here needs a reactor or a transport.
"""

from __future__ import annotations

import pytest
from twisted.internet.endpoints import _parse

from tlsecho._net._listen import ListenDescription, _tokens, is_loopback_host


@pytest.mark.parametrize(
    "description",
    [
        "tcp:8443:interface=127.0.0.1",
        r"tcp6:8443:interface=\:\:1",
        "haproxy:tcp:port=8443:backlog=5",
        "unix:/run/tlsecho/echo.sock:mode=660",
        r"unix:/tmp/a\=b\\c",
        "systemd:domain=INET:index=0",
        "a=b=c:d",
        "port=8443:tcp",
        "tcp:8443:",
        "",
        ":",
    ],
)
def test_tokens_read_as_twisted_reads(description: str) -> None:
    """Positional and keyword arguments come out as Twisted's own parser has them."""
    arguments, keywords = _tokens(description)
    assert (arguments, keywords) == _parse(description)


def test_trailing_backslash_is_refused() -> None:
    """A description ending in a lone backslash cannot be read."""
    with pytest.raises(ValueError, match="lone backslash"):
        ListenDescription.parse("tcp:8443\\")


def test_tcp_description() -> None:
    """A tcp: description: its type, port and interface, unescaped; no PROXY wrapper."""
    listen = ListenDescription.parse("tcp:8443:interface=127.0.0.1")
    assert listen.kind == "tcp"
    assert not listen.proxied
    assert listen.inner == listen.text == "tcp:8443:interface=127.0.0.1"
    assert listen.port == "8443"
    assert listen.interface == "127.0.0.1"


def test_port_by_keyword() -> None:
    """A port= keyword is the port as well as a first argument is."""
    listen = ListenDescription.parse("tcp6:port=0:interface=\\:\\:1")
    assert (listen.kind, listen.port, listen.interface) == ("tcp6", "0", "::1")


def test_proxy_wrapper() -> None:
    """haproxy: is the wrapper; the fields describe the transport below it."""
    listen = ListenDescription.parse(r"HAProxy:tcp6:8443:interface=\:\:1")
    assert listen.proxied
    assert listen.text == r"HAProxy:tcp6:8443:interface=\:\:1"
    assert listen.kind == "tcp6"
    assert ListenDescription.parse(listen.inner) == ListenDescription(
        listen.inner, False, listen.inner, "tcp6", ("8443",), {"interface": "::1"}
    )


def test_proxy_wrapper_keeps_escapes_below() -> None:
    """The description below the wrapper reads as the same arguments."""
    listen = ListenDescription.parse(r"haproxy:unix:/tmp/a\:b\=c\\d:mode=600")
    assert listen.kind == "unix"
    assert listen.arguments == ("/tmp/a:b=c\\d",)
    below = ListenDescription.parse(listen.inner)
    assert (below.arguments, below.options) == (listen.arguments, listen.options)


def test_proxy_wrapper_twice_is_refused() -> None:
    """haproxy:haproxy: would read two PROXY headers: refused."""
    with pytest.raises(ValueError, match="haproxy: is given twice"):
        ListenDescription.parse("haproxy:haproxy:tcp:8443")


def test_other_types_have_no_port_or_interface() -> None:
    """Only TCP descriptions have a port and an interface."""
    listen = ListenDescription.parse("unix:/run/echo.sock")
    assert (listen.port, listen.interface) == (None, None)
    listen = ListenDescription.parse("systemd:domain=INET:index=0")
    assert (listen.kind, listen.port, listen.interface) == ("systemd", None, None)


@pytest.mark.parametrize(
    ("description", "loopback"),
    [
        ("tcp:8443:interface=127.0.0.1", True),
        ("tcp:8443:interface=localhost", True),
        (r"tcp6:8443:interface=\:\:ffff\:127.0.0.1", True),
        ("unix:/run/echo.sock", True),
        ("haproxy:unix:/run/echo.sock", True),
        ("tcp:8443", False),
        ("tcp:8443:interface=0.0.0.0", False),
        ("systemd:domain=INET:index=0", False),
        ("ssl:8443:interface=127.0.0.1", False),
    ],
)
def test_is_loopback(description: str, loopback: bool) -> None:
    """UNIX sockets and TCP on a loopback interface are loopback; nothing else is."""
    assert ListenDescription.parse(description).is_loopback() is loopback


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST",
        "localhost.",
        "localhost.localdomain",
        "echo.localhost",
        "127.0.0.1",
        "127.9.8.7",
        "::1",
        "::1%lo",
        "::ffff:127.0.0.1",
    ],
)
def test_is_loopback_host(host: str) -> None:
    """localhost names and loopback addresses are loopback hosts."""
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "localhost.example.com",
        "notlocalhost",
        "192.0.2.1",
        "0.0.0.0",
        "::",
        "10.0.0.1",
        "::ffff:192.0.2.1",
        "",
    ],
)
def test_is_not_loopback_host(host: str) -> None:
    """Other names and addresses, including the unspecified ones, are not."""
    assert not is_loopback_host(host)
