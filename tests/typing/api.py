"""
A small consumer of tlsecho's public API, type-checked by mypy (never run).

If a change breaks the types users rely on, mypy fails on this file.
"""

from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)

from tlsecho import (
    EchoMismatch,
    EchoServerFactory,
    Material,
    ServerConnectionCreator,
    TLSSettings,
    TLSVersion,
    VerifyMode,
    client_creator,
    client_endpoint,
    echo,
    server_creator,
    server_endpoint,
)


def build(reactor: object) -> Deferred[bytes]:
    settings = TLSSettings(
        certificate=Path("server.pem"),
        private_key=Path("server.key"),
        ca=(Path("clients-ca.pem"),),
        verify=VerifyMode.REQUIRED,
        min_tls=TLSVersion.TLSv1_3,
    )
    renewed: TLSSettings = settings.replace()
    creator: ServerConnectionCreator = server_creator(renewed, Material.load(renewed))
    listening: IStreamServerEndpoint = server_endpoint(reactor, "tcp:8443", creator)
    listening.listen(EchoServerFactory())
    client: IOpenSSLClientConnectionCreator = client_creator(settings, "localhost")
    endpoint: IStreamClientEndpoint = client_endpoint(reactor, "localhost", 8443, client)
    return echo(endpoint, b"hello", reactor=None, timeout=5.0)


def warnings_about(settings: TLSSettings) -> list[str]:
    return Material.load(settings).warnings()


def where_it_differs(error: EchoMismatch) -> int | None:
    return error.offset
