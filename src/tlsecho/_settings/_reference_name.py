"""
The name a client checks the server's certificate for, normalised once.

A C{HOST:PORT} or C{--servername} given as an IP address (bracketed, with a
zone, IPv4-mapped) or as a DNS name (trailing dot, any case, Unicode) becomes
one L{ReferenceName}: the text sent as SNI and checked by both name checks of
L{tlsecho._tls._server_checks}.  Pure: no Twisted, no OpenSSL.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import idna

from ._errors import ConfigurationError

__all__ = ["ReferenceName", "reference_name"]

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: An ASCII host name that IDNA 2008 refuses but DNS allows (an underscore,
#: say): non-empty labels of letters, digits, hyphens and underscores.
_ASCII_HOST = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")


@dataclass(frozen=True)
class ReferenceName:
    """
    The name the server's certificate must be valid for, normalised once and
    used for SNI and for both name checks.

    @ivar text: The DNS name (ASCII, lower case, no trailing dot) or the IP
        address as text.
    @ivar address: The IP address, or L{None} for a DNS name.
    """

    text: str
    address: _IPAddress | None = None

    @property
    def sni(self) -> bytes | None:
        """
        What to send as SNI: the DNS name; nothing for an IP address (RFC 6066).
        """
        return None if self.address is not None else self.text.encode("ascii")


def _address(text: str) -> _IPAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # Without a zone (%eth0), and an IPv4-mapped IPv6 address as the IPv4
    # address it is, so that an IPv4 name constraint applies to it.
    address = ipaddress.ip_address(address.packed)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def reference_name(name: str, option: str = "servername") -> ReferenceName:
    """
    Normalise the name to verify the server's certificate for: an IP address
    (IPv4-mapped IPv6 as IPv4, brackets and zone dropped), or a DNS name with
    one trailing dot stripped, case folded and IDNA-encoded (UTS 46, as
    Twisted's verifying client does).  C{localhost.} is C{localhost}.

    @raise ConfigurationError: naming C{option}, for a name that is neither.
    """
    text = name.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    address = _address(text)
    if address is None:
        address = _address(text.removesuffix("."))
    if address is not None:
        return ReferenceName(str(address), address)
    text = text.removesuffix(".")
    try:
        encoded = idna.encode(text, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        encoded = text.lower() if text.isascii() else ""
        if _ASCII_HOST.fullmatch(encoded) is None:
            raise ConfigurationError(
                option, f"{name!r} is neither a host name nor an IP address"
            ) from None
    if _address(encoded) is not None or _ASCII_HOST.fullmatch(encoded) is None:
        raise ConfigurationError(option, f"{name!r} is not a usable host name")
    return ReferenceName(encoded)
