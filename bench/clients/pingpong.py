"""
Ping-pong: C{--connections} connections each sending a C{--size}-byte message and
waiting for its echo before sending the next; counts round trips per second over
C{--duration} seconds after C{--warmup}, starting at once (at the bench's go, with
C{--go}, once every connection is open).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import cast

from bench.clients._common import (
    GO_HELP,
    SERVER_NAME,
    client_context,
    cpu_seconds,
    emit,
    parser,
    run,
)


class PingPong(asyncio.Protocol):
    """Keep one message in flight; count the ones that come back whole."""

    def __init__(self, message: bytes):
        self.message = message
        self.pending = 0
        self.count = 0
        self.running = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport; nothing is sent until L{start}."""
        # uvloop's TLS transport is not an asyncio.Transport subclass.
        self.transport = cast(asyncio.Transport, transport)

    def start(self) -> None:
        """Send the first message."""
        assert self.transport is not None
        self.running = True
        self.transport.write(self.message)

    def data_received(self, data: bytes) -> None:
        """Count complete echoes and send the next message."""
        self.pending += len(data)
        size = len(self.message)
        while self.pending >= size:
            self.pending -= size
            self.count += 1
            if self.running:
                assert self.transport is not None
                self.transport.write(self.message)


async def pingpong(
    host: str,
    port: int,
    ca: str | None,
    connections: int,
    size: int,
    go: bool,
    warmup: float,
    duration: float,
) -> dict[str, float | list[float]]:
    """
    Open the connections; with C{go}, say C{ready} and wait for a line on
    standard input; then run, count inside the window after the warm-up.
    """
    loop = asyncio.get_running_loop()
    context = client_context(ca)
    message = b"p" * size
    opened = [
        await loop.create_connection(
            lambda: PingPong(message), host, port, ssl=context, server_hostname=SERVER_NAME
        )
        for _ in range(connections)
    ]
    protocols = [protocol for _, protocol in opened]
    if go:
        print("ready", flush=True)
        # Blocking: nothing else runs until the go.
        sys.stdin.readline()
    for protocol in protocols:
        protocol.start()
    await asyncio.sleep(warmup)
    before = sum(p.count for p in protocols)
    cpu = cpu_seconds()
    began = time.time()
    started = time.perf_counter()
    await asyncio.sleep(duration)
    count = sum(p.count for p in protocols) - before
    seconds = time.perf_counter() - started
    # The window the count is from, in epoch seconds: the bench takes the
    # server's CPU over the same one.
    window = [began, time.time()]
    cpu = cpu_seconds() - cpu
    for transport, protocol in opened:
        protocol.running = False
        transport.close()
    return {
        "window": window,
        "count": count,
        "seconds": seconds,
        "rate": count / seconds,
        "cpu_seconds": cpu,
    }


def main() -> None:
    """Parse the arguments, run, print the result."""
    arguments = parser(__doc__.splitlines()[1])
    arguments.add_argument("--connections", type=int, default=25)
    arguments.add_argument("--size", type=int, default=64)
    arguments.add_argument("--go", action="store_true", help=GO_HELP)
    arguments.add_argument("--warmup", type=float, default=1.0)
    arguments.add_argument("--duration", type=float, default=5.0)
    options = arguments.parse_args()
    emit(
        run(
            pingpong(
                options.host,
                options.port,
                options.ca,
                options.connections,
                options.size,
                options.go,
                options.warmup,
                options.duration,
            ),
            options.loop,
        )
    )


if __name__ == "__main__":
    main()
