"""
The textbook Twisted TLS echo server: C{dataReceived} writes back to the transport,
listening on an C{ssl:} server endpoint (what C{listenSSL} does), with no flow control.

    python -m bench.peers.twisted_echo --cert server.pem --key server.key
"""

from __future__ import annotations

import argparse
from typing import cast

from twisted.internet import endpoints, protocol
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IListeningPort, IReactorCore


class Echo(protocol.Protocol):
    """Write back whatever arrives."""

    def dataReceived(self, data: bytes) -> None:
        """Echo C{data}."""
        assert self.transport is not None
        self.transport.write(data)


def main() -> None:
    """Parse the arguments, listen, announce the address and run the reactor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--cert", required=True, help="PEM certificate chain")
    parser.add_argument("--key", required=True, help="PEM private key")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    arguments = parser.parse_args()
    from twisted.internet import reactor

    description = (
        f"ssl:{arguments.port}:interface={arguments.host}"
        f":privateKey={arguments.key}:certKey={arguments.cert}"
    )
    endpoint = endpoints.serverFromString(reactor, description)
    factory = protocol.Factory.forProtocol(Echo)

    def announce(port: IListeningPort) -> None:
        address = cast(IPv4Address, port.getHost())
        print(f"listening on {address.host}:{address.port}", flush=True)

    endpoint.listen(factory).addCallback(announce)
    cast(IReactorCore, reactor).run()


if __name__ == "__main__":
    main()
