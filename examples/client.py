"""
Echo a message through a TLS echo server, verifying it against your CA:

    python examples/client.py CA_FILE [HOST [PORT [MESSAGE]]]

for example  python examples/client.py server-ca.pem localhost 8443 hello
"""

from __future__ import annotations

import sys
from pathlib import Path

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from tlsecho import EchoError, TLSSettings, client_creator, client_endpoint, echo


async def main(
    reactor: object,
    ca: str,
    host: str = "localhost",
    port: str = "8443",
    message: str = "hello",
) -> None:
    settings = TLSSettings(ca=(Path(ca),))  # verify: the chain, and the host name
    creator = client_creator(settings, host)  # SNI and the name to check: host
    endpoint = client_endpoint(reactor, host, int(port), creator)
    try:
        echoed = await echo(endpoint, message.encode())
    except EchoError as e:
        raise SystemExit(f"client.py: {e}") from None
    print(echoed.decode())


if __name__ == "__main__":
    react(lambda reactor, *args: ensureDeferred(main(reactor, *args)), sys.argv[1:])
