"""
The exceptions tlsecho raises, each carrying the data a caller needs to report it.

A L{ConfigurationError} is what every bad setting becomes: one line that names the
option, the file (when there is one) and the reason.  The client's outcomes that are
not a clean echo are L{EchoError} subclasses, each mapped to one exit status of
C{tlsecho client}.
"""

from __future__ import annotations

from pathlib import Path


class ConfigurationError(ValueError):
    """
    A setting is invalid; nothing was started.

    @ivar option: The option as a user spells it, such as C{"--cert"}.
    @ivar path: The file the problem is in, if any.
    @ivar reason: What is wrong, in words, ideally with the fix.
    """

    def __init__(self, option: str, reason: str, path: Path | str | None = None):
        self.option = option
        self.reason = reason
        self.path = None if path is None else Path(path)
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path is None:
            return f"{self.option}: {self.reason}"
        return f"{self.option} {self.path}: {self.reason}"


class PeerRejected(Exception):
    """
    We refused the peer during the TLS handshake: a pin that does not match, a
    missing or bad OCSP staple.

    @ivar reason: One line saying why.
    """

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class EchoError(Exception):
    """
    The echo exchange did not succeed; C{exit_status} is the client's exit code.

    @ivar reason: One line saying what happened.
    """

    exit_status = 1

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class EchoMismatch(EchoError):
    """
    The server sent back a byte that differs from the one sent at its offset,
    or more bytes than were sent.

    @ivar offset: The offset (from 0) of the first wrong or extra byte.
    """

    exit_status = 1

    def __init__(self, reason: str, offset: int | None = None):
        super().__init__(reason)
        self.offset = offset


class ConnectionDropped(EchoError):
    """The connection ended before the whole echo came back."""

    exit_status = 1


class ConnectFailed(EchoError):
    """No TCP connection could be made (refused, unreachable, name not found)."""

    exit_status = 3


class HandshakeFailed(EchoError):
    """The TLS handshake or certificate verification failed, on either side."""

    exit_status = 4
