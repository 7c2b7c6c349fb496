"""
What a C{--listen} description says, read once, and the one loopback rule.

A description such as C{haproxy:tcp6:8443:interface=\\:\\:1} is read here, by
Twisted's own quoting rules (C{:} between arguments, C{=} between a keyword
and its value, C{\\} escaping the next character), into a
L{ListenDescription}: whether a C{haproxy:} (PROXY protocol) wrapper is
present, and the type, port and interface of the transport below it.  Every
part of tlsecho that needs to know what a description says (the endpoint
checks, the development certificate's loopback-only rule, the workers' main
process) asks this module; building the endpoint stays Twisted's job
(L{tlsecho._net._endpoints}).

L{is_loopback_host} is the one rule for "this machine only", used both for a
listener the development certificate may serve and for the hosts the client
trusts the development CA for.

This module imports nothing from Twisted or OpenSSL.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

__all__ = ["PROXY_TYPE", "ListenDescription", "is_loopback_host"]

#: The endpoint type that asks for the PROXY protocol below TLS.
PROXY_TYPE = "haproxy"

#: Types whose interface is an IP address or host name.
_TCP_TYPES = frozenset({"tcp", "tcp6"})

#: Host names that always mean this machine (RFC 6761: and any name under
#: C{localhost.}).
_LOCALHOST_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback_host(host: str) -> bool:
    """
    Whether C{host} names this machine only: C{localhost} (any case, a
    trailing dot, C{localhost.localdomain}, or a name under C{.localhost}), a
    loopback address (C{127.0.0.0/8}, C{::1}, with or without a zone), or a
    loopback IPv4 address mapped into IPv6 (C{::ffff:127.0.0.1}).

    The unspecified addresses (C{0.0.0.0}, C{::}) are not loopback: they
    listen everywhere.
    """
    name = host.lower().rstrip(".")
    if name in _LOCALHOST_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _tokens(description: str) -> tuple[list[str], dict[str, str]]:
    """
    Twisted's reading of an endpoint description (as
    C{twisted.internet.endpoints._parse}): its positional and its keyword
    arguments, unescaped.

    @raise ValueError: if the description ends with a lone backslash.
    """
    arguments: list[str] = []
    keywords: dict[str, str] = {}
    parts: list[str] = []  # the key and value of the argument being read
    current: list[str] = []
    # After an '=', only ':' separates (a value may hold '=').
    separators = ":="
    characters = iter(description)
    for character in characters:
        if character in separators:
            parts.append("".join(current))
            current = []
            if character == ":":
                _add(parts, arguments, keywords)
                parts = []
                separators = ":="
            else:
                separators = ":"
        elif character == "\\":
            escaped = next(characters, None)
            if escaped is None:
                raise ValueError("it ends with a lone backslash")
            current.append(escaped)
        else:
            current.append(character)
    parts.append("".join(current))
    _add(parts, arguments, keywords)
    return arguments, keywords


def _quote(text: str) -> str:
    """
    C{text} escaped to be one argument, key or value of a description.
    """
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def _unparse(arguments: list[str], keywords: Mapping[str, str]) -> str:
    """
    A description that reads as C{arguments} and C{keywords} (as Twisted's
    C{haproxy:} parser rebuilds the description below it).
    """
    return ":".join(
        [_quote(argument) for argument in arguments]
        + [f"{_quote(key)}={_quote(value)}" for key, value in keywords.items()]
    )


def _add(parts: list[str], arguments: list[str], keywords: dict[str, str]) -> None:
    """
    Add one argument: positional if it had no C{=}, else a keyword.
    """
    if len(parts) == 1:
        arguments.append(parts[0])
    else:
        keywords[parts[0]] = parts[1]


@dataclass(frozen=True)
class ListenDescription:
    """
    A server endpoint description, read.

    @ivar text: The description as given.
    @ivar proxied: Whether a C{haproxy:} wrapper asks for the PROXY protocol.
    @ivar inner: The description below that wrapper (C{text} without one):
        what Twisted is given to build the transport.
    @ivar kind: The transport's type, lower-cased as Twisted matches it
        (C{tcp}, C{tcp6}, C{unix}, C{systemd}, ...).
    @ivar arguments: The transport's positional arguments after its type,
        unescaped.
    @ivar options: The transport's keyword arguments, unescaped.
    """

    text: str
    proxied: bool
    inner: str
    kind: str
    arguments: tuple[str, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def parse(cls, text: str) -> ListenDescription:
        """
        Read C{text}.

        @raise ValueError: saying why, if it ends with a lone backslash or
            asks for the PROXY protocol twice.
        """
        arguments, options = _tokens(text)
        kind = arguments[0].lower() if arguments else ""
        if kind == PROXY_TYPE:
            below = cls.parse(_unparse(arguments[1:], options))
            if below.proxied:
                raise ValueError(f"{PROXY_TYPE}: is given twice")
            return replace(below, text=text, proxied=True)
        return cls(text, False, text, kind, tuple(arguments[1:]), options)

    @property
    def port(self) -> str | None:
        """
        A TCP transport's port as written (keyword or first argument), else
        L{None}.
        """
        if self.kind not in _TCP_TYPES:
            return None
        return self.options.get("port", self.arguments[0] if self.arguments else None)

    @property
    def interface(self) -> str | None:
        """
        A TCP transport's C{interface}, or L{None} (none given: every address).
        """
        return self.options.get("interface") if self.kind in _TCP_TYPES else None

    def is_loopback(self) -> bool:
        """
        Whether it listens on this machine only: a UNIX socket, or TCP on an
        C{interface} that L{is_loopback_host} accepts (none given means every
        address, which is not).
        """
        if self.kind == "unix":
            return True
        interface = self.interface
        return interface is not None and is_loopback_host(interface)
