"""
Listeners behind a load balancer that speaks the PROXY protocol (HAProxy's
C{send-proxy} / C{send-proxy-v2}, cloud and Kubernetes L4 balancers).

C{--listen haproxy:tcp:8443} reads the PROXY header (v1 or v2) before TLS
starts, so the echo protocol's C{getPeer()} (and with it logs, metrics and
authorization) is the real client.  A header is believed only from the
sources C{--proxy-trusted} names (like nginx's C{set_real_ip_from}; loopback
and UNIX sockets by default): a connection from anywhere else is closed before
it is read.  The header is parsed strictly by L{tlsecho._net._proxyheader}, in
pieces as they come, with at most L{MAX_V2_HEADER} bytes buffered.  This
module remembers why a connection was refused (untrusted source, no header, a
malformed or over-long one), so the connection's log line says so, which proxy
a connection came through, and whether a header naming no client was a health
check (the proxy closed) or a connection held open until a timeout.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from twisted.internet.endpoints import _WrapperServerEndpoint
from twisted.internet.interfaces import IAddress, IProtocolFactory, IStreamServerEndpoint
from twisted.protocols.haproxy._wrapper import (
    HAProxyProtocolWrapper,
    HAProxyWrappingFactory,
)

from .._settings._errors import ConfigurationError
from ._connlog import peer_ip
from ._proxyheader import MAX_V2_HEADER, HeaderRefused, parse_header

__all__ = [
    "DEFAULT_TRUSTED",
    "MAX_V2_HEADER",
    "UNTRUSTED",
    "ProxyState",
    "TrustedSources",
    "after_proxy_header",
    "proxy_endpoint",
    "proxy_state",
    "trusted_sources",
]

#: The C{--proxy-trusted} value that trusts peers on UNIX sockets.
UNIX_SOURCE = "unix:"
#: Who may send PROXY headers when C{--proxy-trusted} is not given.
DEFAULT_TRUSTED = ("127.0.0.0/8", "::1", UNIX_SOURCE)
#: Why a connection from a source not in C{--proxy-trusted} was closed.
UNTRUSTED = "PROXY header from untrusted source"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedSources:
    """
    The peers that may send a PROXY header.

    @ivar networks: IP networks of trusted proxies.
    @ivar unix: Whether peers on UNIX sockets are trusted.
    """

    networks: tuple[_Network, ...]
    unix: bool = False

    def __contains__(self, address: object) -> bool:
        """
        Whether C{address} (a connection's own peer) is trusted; an IPv4
        address mapped into IPv6 counts as the IPv4 address.
        """
        ip = peer_ip(address)
        if ip is None:
            return self.unix and hasattr(address, "name") and not hasattr(address, "host")
        return any(ip in network for network in self.networks)


def trusted_sources(
    values: Iterable[str] | None, path: Path | str | None = None
) -> TrustedSources:
    """
    The C{--proxy-trusted} values (L{DEFAULT_TRUSTED} if none): IP networks in
    CIDR notation, single addresses, or C{unix:}.

    @param path: The configuration file the values came from, if any.
    @raise ConfigurationError: naming C{--proxy-trusted} (and C{path}), for a
        value that is none of these, or a network with host bits set.
    """
    given = list(values or ())
    networks: list[_Network] = []
    unix = False
    for value in given or DEFAULT_TRUSTED:
        text = value.strip()
        if text.lower() == UNIX_SOURCE:
            unix = True
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError as e:
            raise ConfigurationError(
                "--proxy-trusted",
                f"{value!r} is not an IP network (CIDR such as 10.0.0.0/8 or "
                f"2001:db8::/32), an IP address, or unix: ({e})",
                path,
            ) from None
    return TrustedSources(tuple(networks), unix)


class _LoggedProxyWrapper(HAProxyProtocolWrapper):
    """
    A PROXY protocol wrapper that only believes trusted sources, parses
    strictly and boundedly, and remembers why it refused a connection.

    @ivar header_error: Why the connection was refused, or L{None}.
    @ivar data_after_header: Whether anything came after the header.
    @ivar closed_here: Whether this side closed the connection (a timeout, a
        refusal, a shutdown) rather than the peer.
    """

    factory: _LoggedProxyFactory
    header_error: str | None = None
    data_after_header = False
    closed_here = False
    _buffer = b""
    _lost = False
    _on_header: list[Callable[[IAddress | None], None]] | None = None

    def makeConnection(self, transport: Any) -> None:
        """
        Connect the wrapped protocol (so that the connection is logged and
        counted), then close it at once if its peer may not send headers.
        """
        super().makeConnection(transport)
        if transport.getPeer() not in self.factory.trusted:
            self._refuse(UNTRUSTED)

    def dataReceived(self, data: bytes) -> None:
        """
        Pass C{data} on once the header is complete; until then buffer it (at
        most a header's length) and refuse the connection as soon as it cannot
        begin a valid header.
        """
        if self._proxyInfo is not None:
            self.data_after_header = True
            self.wrappedProtocol.dataReceived(data)
            return
        if self.header_error is not None:
            return  # refused, closing
        buffer = self._buffer + data
        try:
            parsed = parse_header(buffer)
        except HeaderRefused as e:
            self._buffer = b""
            self._refuse(e.reason)
            return
        if parsed is None:
            self._buffer = buffer
            return
        self._buffer = b""
        self._proxyInfo, length = parsed
        for call in self._on_header or ():
            call(self._proxyInfo.source)
        rest = buffer[length:]
        if rest and not self.closed_here:
            self.data_after_header = True
            self.wrappedProtocol.dataReceived(rest)

    def _refuse(self, reason: str) -> None:
        self.header_error = reason
        self.loseConnection()

    def connectionLost(self, reason: Any = None) -> None:
        # Whatever the layers above do while the connection ends (TLS calls
        # loseConnection when its peer went away mid-handshake) is not this
        # side closing it.
        self._lost = True
        super().connectionLost(reason)

    def loseConnection(self) -> None:
        self.closed_here = self.closed_here or not self._lost
        super().loseConnection()

    def abortConnection(self) -> None:
        self.closed_here = self.closed_here or not self._lost
        transport: Any = self.transport
        transport.abortConnection()


class _LoggedProxyFactory(HAProxyWrappingFactory):
    """
    Wraps each connection in a L{_LoggedProxyWrapper}.

    @ivar trusted: Who may send PROXY headers.
    """

    protocol = _LoggedProxyWrapper  # type: ignore[assignment]  # a subclass

    def __init__(
        self, wrappedFactory: IProtocolFactory, trusted: TrustedSources | None = None
    ) -> None:
        super().__init__(wrappedFactory)
        self.trusted = trusted if trusted is not None else trusted_sources(None)


def proxy_endpoint(
    inner: IStreamServerEndpoint, trusted: TrustedSources | None = None
) -> IStreamServerEndpoint:
    """
    C{inner}, reading a PROXY protocol header before anything else on each
    connection.

    @param trusted: Who may send headers; L{DEFAULT_TRUSTED} if L{None}.
    """
    sources = trusted if trusted is not None else trusted_sources(None)
    return _WrapperServerEndpoint(
        inner, lambda wrapped: _LoggedProxyFactory(wrapped, sources)
    )


def after_proxy_header(transport: object, call: Callable[[IAddress | None], None]) -> bool:
    """
    Have C{call} told the client address a connection's PROXY header names
    (L{None} for a header naming none: a health check or the proxy's own)
    once the header is read, before anything after it is passed on; if
    C{call} closes the connection, nothing after the header is.

    @param transport: The echo protocol's transport (TLS, or the wrapper).
    @return: Whether the connection has a PROXY layer (without one, C{call}
        is not called); C{call} is called at once if the header is read
        already, and never if it was refused (the connection is closing).
    """
    wrapper: Any = transport
    for _ in range(3):
        if isinstance(wrapper, _LoggedProxyWrapper):
            if wrapper._proxyInfo is not None:
                call(wrapper._proxyInfo.source)
            elif wrapper.header_error is None:
                wrapper._on_header = [*(wrapper._on_header or ()), call]
            return True
        wrapper = getattr(wrapper, "transport", None)
    return False


class ProxyState(NamedTuple):
    """
    What the PROXY protocol layer knows of a connection.

    @ivar header_error: Why its header was refused, or L{None}.
    @ivar proxy: The address of the proxy it came through, or L{None} (no
        PROXY layer, or a header that names no client).
    @ivar health_check: Whether it was a proxy's health check: a header that
        names no client (v2 LOCAL, v1 UNKNOWN), nothing after it, and the
        proxy closed the connection (one held open until a timeout is not).
    """

    header_error: str | None = None
    proxy: IAddress | None = None
    health_check: bool = False


def proxy_state(transport: object) -> ProxyState:
    """
    The PROXY protocol state of a connection (empty without that layer).

    @param transport: The echo protocol's transport (TLS, or the wrapper).
    """
    wrapper: Any = transport
    for _ in range(3):
        if isinstance(wrapper, _LoggedProxyWrapper):
            info = wrapper._proxyInfo
            named = info is not None and info.source is not None
            return ProxyState(
                header_error=wrapper.header_error,
                proxy=wrapper.transport.getPeer() if named and wrapper.transport else None,
                health_check=(
                    info is not None
                    and not named
                    and not wrapper.data_after_header
                    and not wrapper.closed_here
                ),
            )
        wrapper = getattr(wrapper, "transport", None)
    return ProxyState()
