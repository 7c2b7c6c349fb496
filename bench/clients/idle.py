"""
Idle connections: open C{--connections} TLS connections (each completes its
handshake and echoes one byte), print C{ready}, hold them open until standard
input closes, then close them all and print the result.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import cast

from bench.clients._common import (
    SERVER_NAME,
    client_context,
    cpu_seconds,
    emit,
    parser,
    run,
)


class OneEcho(asyncio.Protocol):
    """Send one byte and resolve C{echoed} when it comes back."""

    def __init__(self, echoed: asyncio.Future[None]):
        self.echoed = echoed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the byte."""
        cast(asyncio.Transport, transport).write(b"x")

    def data_received(self, data: bytes) -> None:
        """The echo is back: the connection is established on both sides."""
        if not self.echoed.done():
            self.echoed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        """Lost before the echo: a failure."""
        if not self.echoed.done():
            self.echoed.set_exception(ConnectionError(f"connection lost: {exc}"))


async def hold(
    host: str, port: int, ca: str | None, connections: int, parallel: int
) -> dict[str, float]:
    """Open the connections, a few at a time; hold them until stdin closes."""
    loop = asyncio.get_running_loop()
    context = client_context(ca)
    limit = asyncio.Semaphore(parallel)
    cpu = cpu_seconds()
    started = time.perf_counter()

    async def open_one() -> asyncio.BaseTransport:
        async with limit:
            echoed: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(
                lambda: OneEcho(echoed),
                host,
                port,
                ssl=context,
                server_hostname=SERVER_NAME,
            )
            await asyncio.wait_for(echoed, timeout=30)
            return transport

    transports = await asyncio.gather(*(open_one() for _ in range(connections)))
    seconds = time.perf_counter() - started
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    for transport in transports:
        transport.close()
    await asyncio.sleep(0.1)
    return {
        "connections": len(transports),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds() - cpu,
    }


def main() -> None:
    """Parse the arguments, run, print the result."""
    arguments = parser(__doc__.splitlines()[1])
    arguments.add_argument("--connections", type=int, default=2000)
    arguments.add_argument("--parallel", type=int, default=32)
    options = arguments.parse_args()
    emit(
        run(
            hold(
                options.host,
                options.port,
                options.ca,
                options.connections,
                options.parallel,
            ),
            options.loop,
        )
    )


if __name__ == "__main__":
    main()
