"""
A TLS client that keeps its session, to test resumption: Python's ``ssl``
module, as a real client would use it.
"""

from __future__ import annotations

import functools
import socket
import ssl
from pathlib import Path
from typing import NamedTuple


class Echoed(NamedTuple):
    """One connection's outcome."""

    resumed: bool
    session: ssl.SSLSession
    client_port: int


@functools.cache
def _context(ca: Path) -> ssl.SSLContext:
    # Python offers a session only on the context that made it.
    return ssl.create_default_context(cafile=str(ca))


def echo_session(
    port: int, ca: Path, session: ssl.SSLSession | None = None, host: str = "127.0.0.1"
) -> Echoed:
    """
    Connect to ``host:port`` (offering ``session``), echo a line, and return
    whether the session was resumed, the session to offer next time, and the
    client's own port (to find the connection in the server's log).

    TLS 1.3 tickets arrive after the handshake: reading the echo receives them.
    """
    context = _context(ca)
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost", session=session) as tls,
    ):
        tls.sendall(b"resume?\n")
        received = b""
        while len(received) < 8:
            chunk = tls.recv(100)
            assert chunk, "connection closed before the echo"
            received += chunk
        assert received == b"resume?\n"
        assert tls.session is not None
        return Echoed(tls.session_reused, tls.session, tls.getsockname()[1])
