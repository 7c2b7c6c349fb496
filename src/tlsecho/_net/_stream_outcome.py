"""
Why a streaming echo ended: the L{EchoError} that explains it, or none.

L{stream_outcome} reads what L{tlsecho._net._echostream.EchoStreamProtocol} saw (the
echo compared so far, the handshake, its own close, a local failure or timeout)
and the reason the connection was lost, and names the failure a user can act on.
"""

from __future__ import annotations

from typing import Any

from twisted.python.failure import Failure

from .._settings._errors import ConnectionDropped, EchoError, EchoMismatch, HandshakeFailed
from .._tls._diagnosis import describe_failure, is_tls_failure
from ._comparator import EchoComparator, count_bytes

__all__ = ["stream_outcome"]


def _progress(echo: EchoComparator) -> str:
    """How much of the echo came back, for messages."""
    return f"{echo.matched} of {echo.sent} bytes"


def stream_outcome(
    reason: Failure,
    echo: EchoComparator,
    transport: Any,
    *,
    handshake_done: bool,
    closing: bool,
    local: EchoError | None,
    timed_out_after: float | None,
) -> EchoError | None:
    """
    The L{EchoError} that explains why the connection ended, or L{None} if the
    whole echo came back and the connection closed cleanly.

    @param reason: Why the connection was lost.
    @param echo: The echo compared so far.
    @param transport: The connection's transport, for TLS diagnosis.
    @param handshake_done: Whether the TLS handshake completed.
    @param closing: Whether the client had begun its clean close.
    @param local: A local failure the client gave up with, if any.
    @param timed_out_after: Seconds waited, if the client gave up waiting.
    """
    fault = echo.fault
    if fault is not None:
        # Whatever ended the connection afterwards, the wrong byte decides.
        return EchoMismatch(fault.reason, fault.offset)
    if local is not None:
        return local
    if timed_out_after is not None:
        after = f"timed out after {timed_out_after:g}s"
        if not handshake_done:
            return HandshakeFailed(f"TLS handshake {after}")
        if echo.complete:
            return ConnectionDropped(
                f"{after} waiting for the server to close the connection, "
                + (
                    f"after the whole echo ({count_bytes(echo.sent)}) came back intact"
                    if echo.sent
                    else "with nothing to echo"
                )
            )
        if echo.matched == 0:
            return ConnectionDropped(
                f"{after} waiting for the echo: none of the "
                f"{count_bytes(echo.sent)} sent came back"
            )
        return ConnectionDropped(
            f"{after} waiting for the echo: {_progress(echo)} came back, all matching"
        )
    if is_tls_failure(reason):
        why = describe_failure(reason, transport)
        if not handshake_done or echo.matched == 0:
            # Includes TLS 1.3, where a refused client certificate is only
            # reported after the client's side of the handshake is done.
            return HandshakeFailed(why)
        return ConnectionDropped(f"TLS error after {_progress(echo)}: {why}")
    if not closing or not handshake_done:
        stage = "" if handshake_done else " during the TLS handshake"
        early = ", before the end of the input" if handshake_done and echo.complete else ""
        return (HandshakeFailed if not handshake_done else ConnectionDropped)(
            f"connection closed by the server{stage} after {_progress(echo)}"
            f"{early} ({describe_failure(reason, transport)})"
        )
    return None
