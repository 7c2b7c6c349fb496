"""
TCP connections that send at once: what asyncio and uvloop do, and Twisted's
TCP transport does not.

Twisted's TCP transport never sends inside C{write()}: it queues the bytes,
registers the socket for writability (an C{epoll_ctl}), sends on the next
reactor turn and unregisters (another C{epoll_ctl}).  For an echo, where each
read brings one write, that is two system calls and a reactor turn per
message.  L{EagerServer} tries the send in C{write()} when nothing is queued
and falls back to Twisted's queue for whatever the socket did not take, so
ordering, flow control (the queue still pauses the producer) and error
handling (an error is met again by the queued write and reported the usual
way) are Twisted's.  See docs/performance.md for what it gave.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from zope.interface import implementer

__all__ = ["EagerServer", "eager_endpoint"]


class EagerServer(tcp.Server):
    """
    A server-side TCP connection whose C{write()} sends at once when nothing
    is queued.
    """

    def write(self, data: bytes) -> None:
        if (
            data
            and self.connected
            and not self.disconnecting
            and not self._writeDisconnected
            and not self._tempDataBuffer
            and self.offset == len(self.dataBuffer)
        ):
            sent: Any = self.writeSomeData(data)
            if isinstance(sent, int):
                if sent == len(data):
                    return
                data = data[sent:]
            # Otherwise the connection failed: queue it, and let doWrite meet
            # the error and close the connection as it always does.
        super().write(data)


@implementer(IStreamServerEndpoint)
class _EagerEndpoint:
    """
    An endpoint whose TCP ports make L{EagerServer} connections.
    """

    def __init__(self, endpoint: IStreamServerEndpoint):
        self._endpoint = endpoint

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        def eager(port: IListeningPort) -> IListeningPort:
            # Ports of other kinds (UNIX sockets) keep their own transport.
            if type(port) is tcp.Port and port.transport is tcp.Server:
                port.transport = EagerServer
            return port

        return self._endpoint.listen(factory).addCallback(eager)


def eager_endpoint(endpoint: IStreamServerEndpoint) -> IStreamServerEndpoint:
    """
    C{endpoint}, with connections that send at once on its TCP ports.
    """
    return _EagerEndpoint(endpoint)
