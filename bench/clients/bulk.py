"""
Bulk: one connection echoing C{--total} bytes written in C{--chunk}-byte writes;
reports the round-trip rate (bytes echoed back per second), the median of
C{--repeat} such connections made one after another.

The client writes as fast as its transport's flow control lets it and reads
everything that comes back; the clock runs from the first write to the last
byte received.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, cast

from bench.clients._common import (
    SERVER_NAME,
    client_context,
    cpu_seconds,
    emit,
    parser,
    run,
)


class BulkProtocol(asyncio.Protocol):
    """Send C{total} bytes, count them back, resolve C{done} when all are back."""

    def __init__(self, total: int, chunk: int, done: asyncio.Future[tuple[float, float]]):
        self.total = total
        self.payload = os.urandom(chunk)
        self.sent = 0
        self.received = 0
        self.paused = False
        self.done = done
        self.started = 0.0
        self.cpu = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start writing (TLS is up: asyncio calls this after the handshake)."""
        # uvloop's TLS transport is not an asyncio.Transport subclass.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=1 << 20)
        self.started = time.perf_counter()
        self.cpu = cpu_seconds()
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
        chunk = len(self.payload)
        while not self.paused and self.sent < self.total:
            self.transport.write(self.payload)
            self.sent += chunk

    def data_received(self, data: bytes) -> None:
        """Count the echo; finish when it is complete."""
        self.received += len(data)
        if self.received >= self.total and not self.done.done():
            self.done.set_result(
                (time.perf_counter() - self.started, cpu_seconds() - self.cpu)
            )

    def connection_lost(self, exc: Exception | None) -> None:
        """A connection lost before the end is a failure."""
        if not self.done.done():
            self.done.set_exception(
                ConnectionError(f"lost after {self.received} of {self.total} bytes: {exc}")
            )


async def bulk(
    host: str, port: int, ca: str | None, total: int, chunk: int
) -> dict[str, float]:
    """Echo C{total} bytes over one new connection and time it."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[float, float]] = loop.create_future()
    transport, _ = await loop.create_connection(
        lambda: BulkProtocol(total, chunk, done),
        host,
        port,
        ssl=client_context(ca),
        server_hostname=SERVER_NAME,
    )
    try:
        seconds, cpu = await asyncio.wait_for(done, timeout=120)
    finally:
        transport.close()
    return {"bytes": total, "seconds": seconds, "rate": total / seconds, "cpu_seconds": cpu}


async def repeated(
    host: str, port: int, ca: str | None, total: int, chunk: int, repeat: int
) -> dict[str, Any]:
    """
    L{bulk} C{repeat} times, one connection after another; the result is the
    median transfer (a single 64 MiB transfer lasts a fraction of a second, so
    one alone is at the mercy of the scheduler), with every transfer listed.
    """
    runs = [await bulk(host, port, ca, total, chunk) for _ in range(repeat)]
    middle = sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]
    return {**middle, "rates": [r["rate"] for r in runs]}


def main() -> None:
    """Parse the arguments, run, print the result."""
    arguments = parser(__doc__.splitlines()[1])
    arguments.add_argument("--total", type=int, default=64 << 20)
    arguments.add_argument("--chunk", type=int, default=64 << 10)
    arguments.add_argument(
        "--repeat", type=int, default=1, help="transfers; the median is kept"
    )
    options = arguments.parse_args()
    emit(
        run(
            repeated(
                options.host,
                options.port,
                options.ca,
                options.total,
                options.chunk,
                options.repeat,
            ),
            options.loop,
        )
    )


if __name__ == "__main__":
    main()
