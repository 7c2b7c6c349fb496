"""
tlsecho: a TLS echo server and client that show how to do TLS right with Twisted.

One L{TLSSettings} value (certificate chain and key, trust roots, verification
policy, ciphers, protocol versions) builds both the server's and the client's
TLS, on top of any Twisted endpoint; L{Material.load} reads the files it names
(the creators do that themselves)::

    settings = TLSSettings(certificate=Path("server.pem"), private_key=Path("server.key"))
    endpoint = server_endpoint(reactor, "tcp:8443", server_creator(settings))
    endpoint.listen(EchoServerFactory())
"""

# Provides the linked OpenSSL to the settings checks (see tlsecho._settings._tls_library).
from ._app._configuration import ServerConfiguration
from ._app._service import EchoService
from ._app._version import package_version as _package_version
from ._net._echoclient import EchoClientProtocol, echo
from ._net._echofactory import EchoServerFactory
from ._net._echoserver import EchoServerProtocol
from ._net._endpoints import client_endpoint, server_endpoint
from ._settings._devcert import DevelopmentCertificate, ensure_development_certificate
from ._settings._errors import (
    ConfigurationError,
    ConnectFailed,
    ConnectionDropped,
    EchoError,
    EchoMismatch,
    HandshakeFailed,
    PeerRejected,
)
from ._settings._material import Material
from ._settings._profiles import Profile
from ._settings._tls_settings import (
    DEFAULT_CIPHERS,
    SNICertificate,
    TLSSettings,
    TLSVersion,
    VerifyMode,
)
from ._tls import _policy  # noqa: F401
from ._tls._client_creator import client_creator
from ._tls._server_creator import ServerConnectionCreator, server_creator

#: This tlsecho's version, from the package metadata (C{0+unknown} if none says).
__version__ = _package_version()

__all__ = [
    "DEFAULT_CIPHERS",
    "ConfigurationError",
    "ConnectFailed",
    "ConnectionDropped",
    "DevelopmentCertificate",
    "EchoClientProtocol",
    "EchoError",
    "EchoMismatch",
    "EchoServerFactory",
    "EchoServerProtocol",
    "EchoService",
    "HandshakeFailed",
    "Material",
    "PeerRejected",
    "Profile",
    "SNICertificate",
    "ServerConfiguration",
    "ServerConnectionCreator",
    "TLSSettings",
    "TLSVersion",
    "VerifyMode",
    "client_creator",
    "client_endpoint",
    "echo",
    "ensure_development_certificate",
    "server_creator",
    "server_endpoint",
]
