"""
The session-ticket key file of C{--ticket-key-file}: read and checked.

The file holds the 80 bytes of keys that every process sharing sessions must
have (as nginx's C{ssl_session_ticket_key}).  A key or certificate given by
mistake, a file of the wrong size or open to other users, and a build that
cannot set ticket keys are each refused with one line naming the option and
the file.  L{tlsecho._tls._tickets} installs the keys in a context.
"""

from __future__ import annotations

from pathlib import Path

from . import _files
from ._errors import ConfigurationError
from ._tls_library import linked

__all__ = ["OPTION", "TICKET_KEY_LENGTH", "load_ticket_keys"]

#: A ticket key file holds 80 bytes: a 16-byte key name, a 32-byte HMAC key
#: and a 32-byte AES key (as nginx's ssl_session_ticket_key, made with
#: C{openssl rand 80}).
TICKET_KEY_LENGTH = 80

OPTION = "--ticket-key-file"


def load_ticket_keys(path: Path) -> bytes:
    """
    Read and check a ticket key file, and that this process can install it.

    @raise ConfigurationError: naming C{--ticket-key-file}, the file and the
        reason: unreadable, open to other users, a key or certificate (PEM or
        DER) instead of keys, not 80 bytes, or no way to set ticket keys in
        this build.
    """
    keys = _files.read_file(path, OPTION)
    _files.check_private_file(path, OPTION, "ticket key")
    kind = _encoded_kind(keys)
    if kind is not None:
        # Never advise "openssl rand 80 > path" here: it would destroy the key.
        raise ConfigurationError(
            OPTION,
            f"holds {kind} data (a key or certificate?), not {TICKET_KEY_LENGTH} "
            "random bytes; make a new file with: "
            f"(umask 077; openssl rand {TICKET_KEY_LENGTH} > NEWFILE)",
            path,
        )
    if len(keys) != TICKET_KEY_LENGTH:
        raise ConfigurationError(
            OPTION,
            f"holds {len(keys)} bytes, not {TICKET_KEY_LENGTH}; make one with: "
            f"openssl rand {TICKET_KEY_LENGTH} > {path}",
            path,
        )
    reason = linked().ticket_keys_unsettable()
    if reason is not None:
        raise ConfigurationError(
            OPTION, f"cannot set session-ticket keys in this build: {reason}", path
        )
    return keys


def _encoded_kind(data: bytes) -> str | None:
    """
    C{"PEM"} or C{"DER"} if C{data} is a PEM file or one whole DER structure
    (a key or certificate given by mistake), else L{None}.

    Random bytes are neither: C{openssl rand} does not make a PEM header, and
    a DER SEQUENCE whose length is exactly the rest of the file is looked for
    only in a file of the wrong size (80 random bytes are one 1 time in 65536).
    """
    if b"-----BEGIN" in data:
        return "PEM"
    if len(data) == TICKET_KEY_LENGTH or len(data) < 2 or data[0] != 0x30:
        return None
    first = data[1]
    if first < 0x80:
        header, length = 2, first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4 or len(data) < 2 + count:
            return None
        header, length = 2 + count, int.from_bytes(data[2 : 2 + count], "big")
    return "DER" if header + length == len(data) else None
