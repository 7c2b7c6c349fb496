"""
Embed tlsecho's echo factory in a larger Twisted program.

This program runs two services in one reactor: a small twisted.web site over
plain HTTP, and tlsecho's TLS echo, both built from ordinary endpoint
descriptions.  The TLS side comes from one TLSSettings value; here it is the
development certificate, so it needs no files:

    python examples/embed.py                    # web on 8080, TLS echo on 8443
    python examples/embed.py tcp:0:interface=127.0.0.1 tcp:0:interface=127.0.0.1

then, in another terminal:  echo hi | tlsecho client localhost:8443
"""

from __future__ import annotations

import sys

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from tlsecho import (
    EchoServerFactory,
    TLSSettings,
    ensure_development_certificate,
    server_creator,
    server_endpoint,
)


def build(reactor: object, web: str, echo: str) -> MultiService:
    """Both services: the web site on C{web}, TLS echo on C{echo}."""
    development = ensure_development_certificate()
    settings = TLSSettings(
        certificate=development.certificate, private_key=development.private_key
    )
    root = Resource()
    root.putChild(b"", Data(b"tlsecho runs beside me\n", "text/plain"))

    application = MultiService()
    StreamServerEndpointService(
        serverFromString(reactor, web), Site(root)
    ).setServiceParent(application)
    StreamServerEndpointService(
        server_endpoint(reactor, echo, server_creator(settings)), EchoServerFactory()
    ).setServiceParent(application)
    return application


def main(
    reactor: object,
    web: str = "tcp:8080:interface=127.0.0.1",
    echo: str = "tcp:8443:interface=127.0.0.1",
) -> Deferred[None]:
    """Start both services and run until interrupted."""
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    application = build(reactor, web, echo)
    application.startService()
    reactor.addSystemEventTrigger("before", "shutdown", application.stopService)  # type: ignore[attr-defined]
    return Deferred()  # never fires: serve until Ctrl-C / SIGTERM


if __name__ == "__main__":
    from twisted.internet.task import react

    react(main, sys.argv[1:])
