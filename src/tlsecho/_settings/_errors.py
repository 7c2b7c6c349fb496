"""
The exceptions tlsecho raises, each carrying the data a caller needs to report it.

A L{ConfigurationError} is what every bad setting becomes: one line that names the
option, the file (when there is one) and the reason.  The client's outcomes that are
not a clean echo are L{EchoError} subclasses, each mapped to one exit status of
C{tlsecho client}.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path


class Surface(Enum):
    """
    Where a setting was given, which decides how an error spells the option.

    @cvar LIBRARY: A keyword of L{tlsecho.TLSSettings} (C{certificate}).
    @cvar COMMAND_LINE: A flag (C{--cert}).
    @cvar TOML: A key of the configuration file (C{cert}).
    """

    LIBRARY = "library"
    COMMAND_LINE = "command line"
    TOML = "TOML"


#: An option as the code that raises names it: its row's flag (C{--cert}), a
#: token that cannot be mistaken for a word of the reason.
_FLAG = re.compile(r"(?<![\w-])--([a-z0-9]+(?:-[a-z0-9]+)*)(?![\w-])")


def _spell(text: str, surface: Surface) -> str:
    """
    C{text} with each option-table flag in it spelt for C{surface}.
    """
    if surface is Surface.COMMAND_LINE:
        return text
    from ._options import OPTIONS  # the table's value types import this module

    spelling = {o.name: o.field if surface is Surface.LIBRARY else o.name for o in OPTIONS}
    return _FLAG.sub(lambda m: spelling.get(m.group(1), m.group(0)), text)


class ConfigurationError(ValueError):
    """
    A setting is invalid; nothing was started.

    The code that raises it names options by their row of the option table,
    written as the flag (C{"--cert"}, also inside the reason: C{"needs --key"}).
    C{str()} is the message for a library caller, naming L{tlsecho.TLSSettings}
    fields (C{certificate /etc/x.pem: no such file}); L{for_surface} gives it as
    the command line (C{--cert /etc/x.pem: no such file}) or a TOML file spells
    it.  Names outside the table (C{--config}, C{HOST:PORT}) stay as they are.

    @ivar option: The option, as a library caller spells it (C{"certificate"}).
    @ivar path: The file the problem is in, if any.
    @ivar reason: What is wrong, in words, ideally with the fix, spelt for a
        library caller.
    @ivar flag: The option as the command line spells it (C{"--cert"}).
    """

    def __init__(self, option: str, reason: str, path: Path | str | None = None):
        self.flag = option
        self._reason = reason
        self.path = None if path is None else Path(path)
        self.option = _spell(option, Surface.LIBRARY)
        self.reason = _spell(reason, Surface.LIBRARY)
        super().__init__(str(self))

    def reason_for(self, surface: Surface) -> str:
        """The reason, with the options it names spelt for C{surface}."""
        return _spell(self._reason, surface)

    def for_surface(self, surface: Surface) -> str:
        """
        The one-line message, naming options as C{surface} spells them.
        """
        option = _spell(self.flag, surface)
        reason = _spell(self._reason, surface)
        if self.path is None:
            return f"{option}: {reason}"
        return f"{option} {self.path}: {reason}"

    def __str__(self) -> str:
        return self.for_surface(Surface.LIBRARY)


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
