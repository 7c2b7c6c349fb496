"""
What C{tlsecho client} reports on standard error about a connection: the
negotiated parameters (C{--verbose}), the certificates the server sent
(C{--show-certs}) and whether a session was resumed (C{--resume}).  Each is a
handshake callback, called with the TLS transport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from .._settings._chain_text import chain_lines
from .._settings._text import printable
from .._tls._client_creator import resumed
from .._tls._diagnosis import certificate_names, connection_summary
from ._client_args import PROG

__all__ = ["Resumption", "chain_printer", "handshake_reporter", "reporter"]


def reporter(stderr: IO[str], address: str) -> Callable[[Any], None]:
    """
    A handshake callback that reports the negotiated parameters (--verbose).
    """

    def report(transport: Any) -> None:
        summary = connection_summary(transport)
        names = certificate_names(transport)
        protocol = transport.negotiatedProtocol
        stderr.write(
            f"{PROG}: connected to {address}: {summary['tls_version']}, "
            f"{summary['cipher']}, group {summary['group'] or '(none)'}, ALPN "
            f"{printable(protocol) if protocol else '(none)'}, "
            f"server certificate for {', '.join(names) or '(no names)'}\n"
        )

    return report


def chain_printer(stderr: IO[str], verifying: bool) -> Callable[[Any], None]:
    """
    A handshake callback that prints the chain the server sent (--show-certs).

    @param verifying: Whether the client verified the chain.  Without it
        OpenSSL still builds a "verified" chain (up to whatever the server
        sent), which says nothing: it is not shown.
    """

    def show(transport: Any) -> None:
        connection = transport.getHandle()
        sent = connection.get_peer_cert_chain(as_cryptography=True) or []
        verified = None
        if verifying:
            verified = connection.get_verified_chain(as_cryptography=True)
        lines = chain_lines(sent, verified)
        stderr.write(f"{PROG}: " + "\n".join(lines) + "\n")

    return show


class Resumption:
    """
    A handshake callback that notes whether the connection resumed a session
    (--resume), and says so.
    """

    resumed: bool | None = None
    version: str | None = None

    def __call__(self, transport: Any) -> None:
        self.resumed, self.version = resumed(transport)

    def words(self) -> str:
        """The line that says whether the session was resumed."""
        if self.resumed is None:
            return "no second handshake"
        return f"session {'resumed' if self.resumed else 'not resumed'} ({self.version})"


def handshake_reporter(
    *callbacks: Callable[[Any], None] | None,
) -> Callable[[Any], None] | None:
    """One handshake callback that calls each of C{callbacks} given."""
    given = [callback for callback in callbacks if callback is not None]
    if not given:
        return None

    def report(transport: Any) -> None:
        for callback in given:
            callback(transport)

    return report
