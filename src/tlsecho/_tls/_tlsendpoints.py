"""
Endpoints with tlsecho's TLS transport on top of another endpoint: what
Twisted's C{wrapServerTLS} and C{wrapClientTLS} do, with L{TLSFactory}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IListeningPort,
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from zope.interface import implementer

from ._tlsprotocol import TLSFactory

__all__ = ["tls_client_endpoint", "tls_server_endpoint"]


@implementer(IStreamServerEndpoint)
class _TLSServerEndpoint:
    """
    A server endpoint with TLS (L{TLSFactory}) on top of another.
    """

    def __init__(
        self, creator: IOpenSSLServerConnectionCreator, endpoint: IStreamServerEndpoint
    ) -> None:
        self._creator = creator
        self._endpoint = endpoint

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen on the wrapped endpoint with TLS around C{protocolFactory}.
        """
        return self._endpoint.listen(TLSFactory(self._creator, False, protocolFactory))


@implementer(IStreamClientEndpoint)
class _TLSClientEndpoint:
    """
    A client endpoint with TLS (L{TLSFactory}) on top of another.
    """

    def __init__(
        self, creator: IOpenSSLClientConnectionCreator, endpoint: IStreamClientEndpoint
    ) -> None:
        self._creator = creator
        self._endpoint = endpoint

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Connect through the wrapped endpoint; fire with the application's
        protocol (not the TLS one).
        """
        connecting = self._endpoint.connect(
            TLSFactory(self._creator, True, protocolFactory)
        )
        return connecting.addCallback(_wrapped)


def _wrapped(protocol: Any) -> IProtocol:
    wrapped: IProtocol = protocol.wrappedProtocol
    return wrapped


def tls_server_endpoint(
    creator: IOpenSSLServerConnectionCreator, endpoint: IStreamServerEndpoint
) -> IStreamServerEndpoint:
    """
    C{endpoint} with tlsecho's TLS on top (like Twisted's C{wrapServerTLS}).
    """
    return _TLSServerEndpoint(creator, endpoint)


def tls_client_endpoint(
    creator: IOpenSSLClientConnectionCreator, endpoint: IStreamClientEndpoint
) -> IStreamClientEndpoint:
    """
    C{endpoint} with tlsecho's TLS on top (like Twisted's C{wrapClientTLS}).
    """
    return _TLSClientEndpoint(creator, endpoint)
