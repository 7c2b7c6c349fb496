"""
The TLS echo as a service of a twistd application: run it with

    twistd -n --pidfile= -y examples/service.py

Set TLSECHO_CERT and TLSECHO_KEY to your certificate chain and key (PEM);
without them it serves the development certificate for localhost.  It listens
on TLSECHO_LISTEN (default tcp:8443:interface=127.0.0.1).
"""

from __future__ import annotations

import os
from pathlib import Path

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Application
from twisted.internet import reactor

from tlsecho import (
    EchoServerFactory,
    TLSSettings,
    ensure_development_certificate,
    server_creator,
    server_endpoint,
)

if "TLSECHO_CERT" in os.environ:
    certificate = Path(os.environ["TLSECHO_CERT"])
    private_key = Path(os.environ.get("TLSECHO_KEY", certificate))
else:
    development = ensure_development_certificate()
    certificate, private_key = development.certificate, development.private_key
listen = os.environ.get("TLSECHO_LISTEN", "tcp:8443:interface=127.0.0.1")

settings = TLSSettings(certificate=certificate, private_key=private_key)
endpoint = server_endpoint(reactor, listen, server_creator(settings))

application = Application("tlsecho")
StreamServerEndpointService(endpoint, EchoServerFactory()).setServiceParent(application)
