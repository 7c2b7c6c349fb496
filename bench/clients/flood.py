"""
Backpressure: one connection that stops reading once TLS is up, then offers
C{--total} bytes in C{--chunk}-byte writes as fast as its transport takes them,
until all are sent or nothing has moved for C{--stall} seconds.

A server with flow control stops reading from such a client, so the client
stalls; one without keeps reading and buffers the echo it cannot send.
"""

from __future__ import annotations

import asyncio
import os
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


class Flooder(asyncio.Protocol):
    """Never read; write whenever the transport is not paused."""

    def __init__(self, total: int, chunk: int):
        self.total = total
        self.payload = os.urandom(chunk)
        self.offered = 0
        self.paused = False
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Stop reading at once, then write."""
        # uvloop's TLS transport is not an asyncio.Transport subclass.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.pause_reading()
        self._write_more()

    def pause_writing(self) -> None:
        """The transport's buffer is full: stop writing."""
        self.paused = True

    def resume_writing(self) -> None:
        """The transport's buffer drained: write on."""
        self.paused = False
        self._write_more()

    def _write_more(self) -> None:
        assert self.transport is not None
        while not self.paused and self.offered < self.total:
            self.transport.write(self.payload)
            self.offered += len(self.payload)

    def sent(self) -> int:
        """Bytes the transport has handed on (offered less what it still holds)."""
        assert self.transport is not None
        return self.offered - self.transport.get_write_buffer_size()

    def connection_lost(self, exc: Exception | None) -> None:
        """The server closed the connection."""
        if not self.lost.done():
            self.lost.set_result(None)


async def flood(
    host: str, port: int, ca: str | None, total: int, chunk: int, stall: float
) -> dict[str, float | bool]:
    """Flood until all is sent or progress stops; report what got through."""
    loop = asyncio.get_running_loop()
    cpu = cpu_seconds()
    started = time.perf_counter()
    transport, protocol = await loop.create_connection(
        lambda: Flooder(total, chunk),
        host,
        port,
        ssl=client_context(ca),
        server_hostname=SERVER_NAME,
    )
    last, moved_at = -1, time.perf_counter()
    stalled = False
    while not protocol.lost.done():
        sent = protocol.sent()
        now = time.perf_counter()
        if sent != last:
            last, moved_at = sent, now
        elif now - moved_at > stall:
            # All sent, or stuck: either way the server has had C{stall}
            # seconds to take what it was going to take.
            stalled = sent < total
            break
        await asyncio.sleep(0.02)
    seconds = time.perf_counter() - started
    transport.abort()
    return {
        "sent": last,
        "stalled": stalled,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds() - cpu,
    }


def main() -> None:
    """Parse the arguments, run, print the result."""
    arguments = parser(__doc__.splitlines()[1])
    arguments.add_argument("--total", type=int, default=256 << 20)
    arguments.add_argument("--chunk", type=int, default=64 << 10)
    arguments.add_argument("--stall", type=float, default=2.0)
    options = arguments.parse_args()
    emit(
        run(
            flood(
                options.host,
                options.port,
                options.ca,
                options.total,
                options.chunk,
                options.stall,
            ),
            options.loop,
        )
    )


if __name__ == "__main__":
    main()
