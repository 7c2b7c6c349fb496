"""
Functions of the OpenSSL inside C{cryptography} that no binding exposes:
found by name in the extension module's ELF symbol table, called by address.

C{cryptography} (50) links OpenSSL statically into its Rust extension module
with the symbols hidden, and its cffi binding (C{OpenSSL._util.lib}, what
pyOpenSSL uses) lists only the functions pyOpenSSL needs, so no other library
can reach that OpenSSL.  The full symbol table (C{SHT_SYMTAB}) still names
every function: its offset, relative to the module's exported init function
C{PyInit__rust}, gives its address in this process.
"""

from __future__ import annotations

import ctypes
import functools
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["Unavailable", "openssl_function"]


class Unavailable(Exception):
    """
    Why a call below pyOpenSSL's public API cannot be made in this process; its
    text is one line, for the error or warning of the option that needs it.
    """


@functools.cache
def openssl_function(name: str, signature: str) -> Any:
    """
    The function C{name} of the OpenSSL pyOpenSSL uses, as a cffi function
    pointer of type C{signature}.

    Removed by: C{cryptography} binding the function (or pyOpenSSL calling it
    for us); until then every caller must handle L{Unavailable}.

    @raise Unavailable: saying why it cannot be found (no module file, not an
        ELF file, a stripped build).
    """
    from cryptography.hazmat.bindings import _rust
    from OpenSSL._util import ffi

    module = getattr(_rust, "__file__", None)
    if not module:
        raise Unavailable("cryptography's OpenSSL binding has no module file")
    try:
        found = _function_symbols(Path(module), (name, "PyInit__rust"))
    except (OSError, ValueError, struct.error) as e:
        raise Unavailable(f"cannot read the symbols of {module}: {e}") from None
    if set(found) != {name, "PyInit__rust"}:
        raise Unavailable(f"{module} does not list {name} (stripped?)")
    library = ctypes.CDLL(module)  # already loaded: the same mapping
    exported = ctypes.cast(library.PyInit__rust, ctypes.c_void_p).value
    assert exported is not None
    address = exported - found["PyInit__rust"] + found[name]
    return ffi.cast(signature, address)


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
