"""
L{tlsecho._net._eager}: on tlsecho's TCP listeners a write to an idle connection is
sent inside C{write()}; what the socket does not take is queued in order, as
Twisted always does.  Real loopback sockets.  (The flow-control tests in
test_flow_control.py run on the same transport.)
"""

from __future__ import annotations

import socket
from typing import Any

import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.threads import deferToThread
from twisted.internet.unix import Port as UNIXPort

from tlsecho._net._eager import EagerServer, eager_endpoint


class _Writer(Protocol):
    """Writes its payload as soon as connected and notes what was left queued."""

    payload = b""
    queued_after_write: int | None = None

    def connectionMade(self) -> None:
        transport: Any = self.transport
        transport.write(self.payload)
        queued = sum(len(b) for b in transport._tempDataBuffer)
        self.queued_after_write = queued + len(transport.dataBuffer) - transport.offset
        self.factory.made.callback(self)  # type: ignore[attr-defined]


def _factory(payload: bytes) -> Factory:
    factory = Factory.forProtocol(_Writer)
    factory.made = Deferred()  # type: ignore[attr-defined]
    _Writer.payload = payload
    return factory


def _receive(port: int, size: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        received = b""
        while len(received) < size:
            chunk = client.recv(1 << 20)
            if not chunk:
                break
            received += chunk
        return received


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


@pytest_twisted.ensureDeferred
async def test_small_write_is_sent_inside_write() -> None:
    """Nothing is queued after a small write to an idle connection."""
    factory = _factory(b"at once\n")
    port = await eager_endpoint(
        TCP4ServerEndpoint(_reactor(), 0, interface="127.0.0.1")
    ).listen(factory)
    try:
        assert port.transport is EagerServer  # type: ignore[attr-defined]
        received = deferToThread(_receive, port.getHost().port, 8)  # type: ignore[attr-defined]
        writer = await factory.made  # type: ignore[attr-defined]
        assert writer.queued_after_write == 0
        assert await received == b"at once\n"
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_large_write_queues_the_rest_in_order() -> None:
    """A write larger than the socket takes is sent in part, the rest queued in order."""
    payload = bytes(range(256)) * (64 * 1024)  # 16 MiB: more than any socket buffer
    factory = _factory(payload)
    port = await eager_endpoint(
        TCP4ServerEndpoint(_reactor(), 0, interface="127.0.0.1")
    ).listen(factory)
    try:
        received = deferToThread(_receive, port.getHost().port, len(payload))  # type: ignore[attr-defined]
        writer = await factory.made  # type: ignore[attr-defined]
        assert 0 < writer.queued_after_write < len(payload)
        assert await received == payload
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_unix_ports_keep_their_transport(tmp_path: Any) -> None:
    """Only TCP ports get the eager transport."""
    from twisted.internet.endpoints import UNIXServerEndpoint

    port = await eager_endpoint(
        UNIXServerEndpoint(_reactor(), str(tmp_path / "echo.sock"))
    ).listen(Factory.forProtocol(Protocol))
    try:
        assert isinstance(port, UNIXPort)
        assert port.transport is not EagerServer
    finally:
        await port.stopListening()
