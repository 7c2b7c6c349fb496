"""
Listeners behind a load balancer that speaks the PROXY protocol (HAProxy's
C{send-proxy} / C{send-proxy-v2}, cloud and Kubernetes L4 balancers).

C{--listen haproxy:tcp:8443} reads the PROXY header (v1 or v2) with Twisted's
own parser before TLS starts, so the echo protocol's C{getPeer()} (and with it
logs and metrics) is the real client.  On top of Twisted's wrapper this
module remembers why a connection was refused (no header, or a malformed
one), so the connection's log line says so instead of "closed", and which
proxy a connection came through.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from twisted.internet.endpoints import _WrapperServerEndpoint
from twisted.internet.interfaces import IAddress, IStreamServerEndpoint
from twisted.protocols.haproxy._v1parser import V1Parser
from twisted.protocols.haproxy._wrapper import (
    HAProxyProtocolWrapper,
    HAProxyWrappingFactory,
)

__all__ = ["ProxyState", "proxy_endpoint", "proxy_state", "split_proxy"]

#: The endpoint description prefix that asks for the PROXY protocol.
PROXY_PREFIX = "haproxy:"


def split_proxy(description: str) -> tuple[str, bool]:
    """
    The endpoint description below a C{haproxy:} prefix, and whether there
    was one.
    """
    if description[: len(PROXY_PREFIX)].lower() == PROXY_PREFIX:
        return description[len(PROXY_PREFIX) :], True
    return description, False


_V1_UNKNOWN = b"PROXY UNKNOWN\r\n"


class _LoggedProxyWrapper(HAProxyProtocolWrapper):
    """
    Twisted's PROXY protocol wrapper, remembering why it refused a connection.

    @ivar header_error: Why the connection was refused, or L{None}.
    """

    header_error: str | None = None
    #: Whether anything came after the header.
    data_after_header = False
    _header_bytes = 0

    def dataReceived(self, data: bytes) -> None:
        if self._proxyInfo is not None:
            self.data_after_header = True
            self.wrappedProtocol.dataReceived(data)
            return
        started = self._parser is not None
        if not started and data.startswith(_V1_UNKNOWN):
            # The PROXY protocol spec (2.1) allows "PROXY UNKNOWN" with nothing
            # after it, which HAProxy's v1 health checks send; Twisted 26.10's
            # parser wants a space after UNKNOWN.
            data = b"PROXY UNKNOWN \r\n" + data[len(_V1_UNKNOWN) :]
        self._header_bytes += len(data)
        super().dataReceived(data)
        if self._proxyInfo is not None:
            # The header's last bytes may have come with the start of TLS.
            # (A v1 header is kept without its line end.)
            length = len(self._proxyInfo.header)
            if isinstance(self._parser, V1Parser):
                length += len(V1Parser.NEWLINE)
            self.data_after_header = self._header_bytes > length
        elif self.disconnecting:
            self.header_error = (
                "invalid PROXY header"
                if started or data[:5] == b"PROXY" or data[:4] == b"\r\n\r\n"
                else "no PROXY header"
            )


class _LoggedProxyFactory(HAProxyWrappingFactory):
    protocol = _LoggedProxyWrapper  # type: ignore[assignment]  # a subclass


def proxy_endpoint(inner: IStreamServerEndpoint) -> IStreamServerEndpoint:
    """
    C{inner}, reading a PROXY protocol header before anything else on each
    connection.
    """
    return _WrapperServerEndpoint(inner, _LoggedProxyFactory)


class ProxyState(NamedTuple):
    """
    What the PROXY protocol layer knows of a connection.

    @ivar header_error: Why its header was refused, or L{None}.
    @ivar proxy: The address of the proxy it came through, or L{None} (no
        PROXY layer, or a header that names no client).
    @ivar health_check: Whether it was a proxy's health check: a header that
        names no client (v2 LOCAL, v1 UNKNOWN) and nothing after it.
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
                    info is not None and not named and not wrapper.data_after_header
                ),
            )
        wrapper = getattr(wrapper, "transport", None)
    return ProxyState()
