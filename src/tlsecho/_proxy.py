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

from typing import Any

from twisted.internet.endpoints import _WrapperServerEndpoint
from twisted.internet.interfaces import IAddress, IStreamServerEndpoint
from twisted.protocols.haproxy._wrapper import (
    HAProxyProtocolWrapper,
    HAProxyWrappingFactory,
)

__all__ = ["proxy_details", "proxy_endpoint", "split_proxy"]

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


class _LoggedProxyWrapper(HAProxyProtocolWrapper):
    """
    Twisted's PROXY protocol wrapper, remembering why it refused a connection.

    @ivar header_error: Why the connection was refused, or L{None}.
    """

    header_error: str | None = None

    def dataReceived(self, data: bytes) -> None:
        if self._proxyInfo is not None:
            self.wrappedProtocol.dataReceived(data)
            return
        started = self._parser is not None
        super().dataReceived(data)
        if self._proxyInfo is None and self.disconnecting:
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


def proxy_details(transport: object) -> tuple[str | None, IAddress | None]:
    """
    For a connection under a PROXY protocol listener: why its header was
    refused (or L{None}), and the address of the proxy it came through (or
    L{None} when the header named no client, as health checks do).

    @param transport: The echo protocol's transport (TLS, or the wrapper).
    """
    wrapper: Any = transport
    for _ in range(3):
        if isinstance(wrapper, _LoggedProxyWrapper):
            info = wrapper._proxyInfo
            proxy = (
                wrapper.transport.getPeer()
                if info is not None and info.source is not None and wrapper.transport
                else None
            )
            return wrapper.header_error, proxy
        wrapper = getattr(wrapper, "transport", None)
    return None, None
