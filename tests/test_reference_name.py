"""
Tests for tlsecho._settings._reference_name: the name a client checks the server's
certificate for, normalised from what a user typed (no transport, no OpenSSL).
"""

from __future__ import annotations

import ipaddress

import pytest

from tlsecho import ConfigurationError
from tlsecho._settings._reference_name import ReferenceName, reference_name


@pytest.mark.parametrize(
    ("typed", "text"),
    [
        ("localhost", "localhost"),
        ("localhost.", "localhost"),
        ("LocalHost.", "localhost"),
        (" Example.COM ", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("_service.example", "_service.example"),
    ],
)
def test_dns_names(typed: str, text: str) -> None:
    """A DNS name loses one trailing dot, is case folded and IDNA-encoded; it is
    sent as SNI."""
    name = reference_name(typed)
    assert name == ReferenceName(text)
    assert name.sni == text.encode("ascii")


@pytest.mark.parametrize(
    ("typed", "text"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("[::FFFF:10.0.0.1]", "10.0.0.1"),
    ],
)
def test_addresses(typed: str, text: str) -> None:
    """An IP address drops brackets and zone, an IPv4-mapped one is the IPv4
    address it is, and none is sent as SNI (RFC 6066)."""
    name = reference_name(typed)
    assert name == ReferenceName(text, ipaddress.ip_address(text))
    assert name.sni is None


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("bad name!", "is neither a host name nor an IP address"),
        ("a..example", "is neither a host name nor an IP address"),
        ("", "is neither a host name nor an IP address"),
        # Full-width digits that IDNA maps to an address, not to a host name.
        ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", "is not a usable host name"),
    ],
)
def test_refused(typed: str, why: str) -> None:
    """A name that is neither a host name nor an IP address is refused, naming the
    option it came from."""
    with pytest.raises(ConfigurationError) as raised:
        reference_name(typed, "--servername")
    assert str(raised.value) == f"--servername: {typed!r} {why}"
