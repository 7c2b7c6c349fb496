"""
TLS session resumption across processes: shared session-ticket keys and a
stable session ID context.

A TLS session resumes on another process (a worker, or another instance
behind a load balancer) only if that process can decrypt the ticket and
considers the session's context its own.  Twisted gives every context random
ticket keys and a random session ID context, so by default a session resumes
only on the process that issued it.

L{session_id_context} derives the context from the settings that decide who
may connect (client verification, CAs, CRLs, authorization rules): processes
with the same policy accept each other's sessions; a session made under a
different policy is never resumed into this one.

L{install_ticket_keys} sets the keys of C{--ticket-key-file} with OpenSSL's
C{SSL_CTX_set_tlsext_ticket_keys}.  pyOpenSSL (26.4) has no call for it, and
the OpenSSL it uses is linked statically into cryptography's extension module
with its symbols hidden, so no other library can reach that OpenSSL either.
The function is still in the module's symbol table: we find its address there
(relative to the module's exported init function) and call it with the same
context pointer pyOpenSSL uses, then read the keys back to prove the call did
what it should.  Where that is impossible (a stripped build, another layout)
the option fails with a one-line error naming the reason.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

from . import _pem
from ._errors import ConfigurationError

__all__ = [
    "TICKET_KEY_LENGTH",
    "install_ticket_keys",
    "load_ticket_keys",
    "session_id_context",
]

#: A ticket key file holds 80 bytes: a 16-byte key name, a 32-byte HMAC key
#: and a 32-byte AES key (as nginx's ssl_session_ticket_key, made with
#: C{openssl rand 80}).
TICKET_KEY_LENGTH = 80

# From OpenSSL's ssl.h: the controls behind SSL_CTX_{set,get}_tlsext_ticket_keys.
_SET_TICKET_KEYS = 59
_GET_TICKET_KEYS = 58

_OPTION = "--ticket-key-file"


def load_ticket_keys(path: Path) -> bytes:
    """
    Read and check a ticket key file, and that this process can install it.

    @raise ConfigurationError: naming C{--ticket-key-file}, the file and the
        reason: unreadable, open to other users, a key or certificate (PEM or
        DER) instead of keys, not 80 bytes, or no way to set ticket keys in
        this build.
    """
    keys = _pem.read_file(path, _OPTION)
    _pem.check_private_file(path, _OPTION, "ticket key")
    kind = _encoded_kind(keys)
    if kind is not None:
        # Never advise "openssl rand 80 > path" here: it would destroy the key.
        raise ConfigurationError(
            _OPTION,
            f"holds {kind} data (a key or certificate?), not {TICKET_KEY_LENGTH} "
            "random bytes; make a new file with: "
            f"(umask 077; openssl rand {TICKET_KEY_LENGTH} > NEWFILE)",
            path,
        )
    if len(keys) != TICKET_KEY_LENGTH:
        raise ConfigurationError(
            _OPTION,
            f"holds {len(keys)} bytes, not {TICKET_KEY_LENGTH}; make one with: "
            f"openssl rand {TICKET_KEY_LENGTH} > {path}",
            path,
        )
    try:
        _ticket_key_control()
    except _Unavailable as e:
        raise ConfigurationError(
            _OPTION, f"cannot set session-ticket keys in this build: {e}", path
        ) from None
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


def install_ticket_keys(context: SSL.Context, keys: bytes) -> None:
    """
    Make C{context} encrypt and decrypt session tickets with C{keys}.

    @param keys: From L{load_ticket_keys}.
    @raise ConfigurationError: if OpenSSL does not take them.
    """
    from OpenSSL._util import ffi

    control = _ticket_key_control()
    raw = context._context  # the SSL_CTX pointer pyOpenSSL holds
    given = ffi.new("unsigned char[]", keys)
    read_back = ffi.new("unsigned char[]", len(keys))
    if (
        control(raw, _SET_TICKET_KEYS, len(keys), given) != 1
        or control(raw, _GET_TICKET_KEYS, len(keys), read_back) != 1
        or ffi.buffer(read_back)[:] != keys
    ):
        raise ConfigurationError(_OPTION, "OpenSSL did not take the session-ticket keys")


def session_id_context(
    verify: str,
    trusted: Iterable[x509.Certificate],
    crls: Iterable[x509.CertificateRevocationList],
    rules: Iterable[str],
) -> bytes:
    """
    The session ID context for a client-admission policy: the same for the
    same policy in every process, different when the policy differs.

    @param verify: The client verification mode.
    @param trusted: The CA certificates client certificates must chain to.
    @param crls: The CRLs client certificates are checked against.
    @param rules: The authorization rules, as text.
    @return: 32 bytes, the most OpenSSL keeps.
    """
    digest = hashlib.sha256(b"tlsecho session context 1\0")
    digest.update(verify.encode() + b"\0")
    for certificate in trusted:
        digest.update(hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest())
    digest.update(b"\0")
    for crl in crls:
        digest.update(hashlib.sha256(crl.public_bytes(Encoding.DER)).digest())
    digest.update(b"\0")
    for rule in rules:
        digest.update(rule.encode() + b"\0")
    return digest.digest()


class _Unavailable(Exception):
    """Why ticket keys cannot be set in this process."""


@functools.cache
def _ticket_key_control() -> Any:
    """
    C{SSL_CTX_ctrl} of the OpenSSL pyOpenSSL uses, as a cffi function pointer.

    @raise _Unavailable: saying why it cannot be found.
    """
    from cryptography.hazmat.bindings import _rust
    from OpenSSL._util import ffi

    module = getattr(_rust, "__file__", None)
    if not module:
        raise _Unavailable("cryptography's OpenSSL binding has no module file")
    try:
        found = _function_symbols(Path(module), ("SSL_CTX_ctrl", "PyInit__rust"))
    except (OSError, ValueError, struct.error) as e:
        raise _Unavailable(f"cannot read the symbols of {module}: {e}") from None
    if set(found) != {"SSL_CTX_ctrl", "PyInit__rust"}:
        raise _Unavailable(f"{module} does not list SSL_CTX_ctrl (stripped?)")
    library = ctypes.CDLL(module)  # already loaded: the same mapping
    exported = ctypes.cast(library.PyInit__rust, ctypes.c_void_p).value
    assert exported is not None
    address = exported - found["PyInit__rust"] + found["SSL_CTX_ctrl"]
    return ffi.cast("long (*)(SSL_CTX *, int, long, void *)", address)


def _function_symbols(path: Path, names: Iterable[str]) -> dict[str, int]:
    """
    The addresses (relative to the load base) of the named functions in the
    symbol table of a 64-bit little-endian ELF shared object.
    """
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4:6] != b"\x02\x01":
        raise ValueError("not a 64-bit little-endian ELF file")
    (section_table,) = struct.unpack_from("<Q", data, 0x28)
    entry_size, count = struct.unpack_from("<HH", data, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, section_table + i * entry_size)
        for i in range(count)
    ]
    wanted = set(names)
    found: dict[str, int] = {}
    for _, kind, _, _, offset, size, link, _, _, _ in sections:
        if kind != 2:  # SHT_SYMTAB: the full table, local symbols included
            continue
        string_offset, string_size = sections[link][4], sections[link][5]
        strings = data[string_offset : string_offset + string_size]
        by_name_offset: dict[int, str] = {}
        for name in wanted:
            at = strings.find(b"\0" + name.encode() + b"\0")
            if at >= 0:
                by_name_offset[at + 1] = name
        for name_offset, info, _, _, value, _ in struct.iter_unpack(
            "<IBBHQQ", data[offset : offset + size]
        ):
            symbol = by_name_offset.get(name_offset)
            if symbol is not None and info & 0xF == 2 and value:  # STT_FUNC
                found[symbol] = value
    return found
