"""
The standard library's TLS echo server: an C{asyncio.Protocol} whose
C{data_received} writes back to the transport, served with an C{ssl.SSLContext}.

This is what the asyncio documentation teaches; like it, it has no flow control.
C{--loop uvloop} runs the same code on uvloop.

    python -m bench.peers.asyncio_echo --cert server.pem --key server.key [--loop uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
from typing import cast


class EchoProtocol(asyncio.Protocol):
    """Write back whatever arrives."""

    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to write to."""
        # uvloop's TLS transport is not an asyncio.Transport subclass.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        """Echo C{data}."""
        self.transport.write(data)


async def serve(context: ssl.SSLContext, host: str, port: int) -> None:
    """Listen on C{host}:C{port} with TLS, announce the address, serve forever."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoProtocol, host, port, ssl=context, backlog=1024)
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    await server.serve_forever()


def main() -> None:
    """Parse the arguments and run the server until it is killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--cert", required=True, help="PEM certificate chain")
    parser.add_argument("--key", required=True, help="PEM private key")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    arguments = parser.parse_args()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(arguments.cert, arguments.key)
    coroutine = serve(context, arguments.host, arguments.port)
    if arguments.loop == "uvloop":
        import uvloop

        uvloop.run(coroutine)
    else:
        asyncio.run(coroutine)


if __name__ == "__main__":
    main()
