"""
A connection that ended, read off its transport stack (TLS, the PROXY
layer, TCP) for the one event it is logged and counted with.

Each part is read on its own, and a part that cannot be read is logged in
one line and left out (L{_described}), so describing a connection never
fails.  What the parts mean in words, and the event's fields, are
L{tlsecho._net._connlog}'s; the echo protocol calls L{describe_connection} when
its connection is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.abstract import FileDescriptor
from twisted.internet.error import ConnectionLost
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure

from .._settings._text import printable
from .._tls._diagnosis import (
    client_identity,
    connection_summary,
    describe_failure,
    is_tls_failure,
)
from ._connlog import Ending, connection_fields, format_address
from ._proxy import ProxyState, proxy_state

__all__ = ["describe_connection"]

_log = Logger()


def describe_connection(
    transport: Any,
    reason: Failure | None,
    *,
    handshake_done: bool,
    ended_by: str | None,
    bytes_received: int,
    bytes_written: int,
    duration: float,
    handshake_seconds: float | None,
) -> dict[str, Any]:
    """
    The fields of the event a connection that ended is logged and counted
    with (see L{connection_fields}).

    @param transport: The echo protocol's transport.
    @param reason: Why it was lost, as given to C{connectionLost}.
    @param handshake_done: Whether its TLS handshake completed.
    @param ended_by: What of ours ended it (a timeout), or L{None}.
    @param bytes_received: Bytes received from the peer.
    @param bytes_written: Bytes handed to the transport to echo (see
        L{_bytes_sent} for how many were really sent).
    @param duration: Seconds it was open.
    @param handshake_seconds: Seconds the handshake took, or L{None}.
    """
    proxied = _described(lambda: proxy_state(transport), ProxyState(), "PROXY state")
    ending = Ending(
        handshake_done=handshake_done,
        header_error=proxied.header_error,
        proxy_health_check=proxied.health_check,
        ended_by=ended_by,
        failure=(
            None
            if reason is None
            else describe_failure(reason, transport, established=handshake_done)
        ),
        tls_failure=reason is not None and is_tls_failure(reason),
        reset=reason is not None and reason.check(ConnectionLost) is not None,
    )
    return connection_fields(
        ending,
        peer=(
            _described(lambda: format_address(transport.getPeer()), "?", "peer")
            if transport
            else "?"
        ),
        via=format_address(proxied.proxy) if proxied.proxy is not None else None,
        bytes_in=bytes_received,
        bytes_out=_described(
            lambda: _bytes_sent(bytes_written, transport), 0, "bytes sent"
        ),
        duration=duration,
        handshake_seconds=handshake_seconds,
        alpn=_described(lambda: _negotiated_protocol(transport), None, "ALPN"),
        client=client_identity(transport),
        summary=connection_summary(transport),
    )


_T = TypeVar("_T")


def _described(describe: Callable[[], _T], fallback: _T, what: str) -> _T:
    """
    What C{describe()} returns; if it raises, C{fallback}, with one line
    logged naming C{what} could not be described.
    """
    try:
        return describe()
    except Exception as e:
        _log.error(
            "could not describe the {what} of a connection: {error}",
            what=what,
            error=printable(f"{type(e).__name__}: {e}"),
            event="internal.error",
        )
        return fallback


def _bytes_sent(written: int, transport: object) -> int:
    """
    How many of the C{written} application bytes were really sent: handed by
    tlsecho, as TLS records, to the operating system's socket.

    What is still queued when the connection ends (in Twisted's TLS layer
    before the handshake, and in the TCP transport's write buffer, where a
    peer that does not read makes it pile up) was never sent, and is not
    counted.  The TCP buffer holds TLS records, which are larger than the
    application bytes in them, so the result is a lower bound: exact but for
    the application bytes in the one record the socket took only part of,
    at most 16 KiB.  What the kernel took but the peer's application never
    read cannot be seen from here and counts as sent.
    """
    queued = 0
    layer: Any = transport
    for _ in range(4):
        if layer is None:
            break
        if isinstance(layer, TLSMemoryBIOProtocol):
            queued += sum(len(data) for data in layer._appSendBuffer)
        if isinstance(layer, FileDescriptor):
            # Twisted's write queue, as _eager.EagerServer reads it.
            queued += len(layer.dataBuffer) - layer.offset + layer._tempDataLen
            break
        layer = getattr(layer, "transport", None)
    return max(0, written - queued)


def _negotiated_protocol(transport: object) -> str | None:
    protocol = getattr(transport, "negotiatedProtocol", None)
    return printable(protocol) if isinstance(protocol, bytes) else None
