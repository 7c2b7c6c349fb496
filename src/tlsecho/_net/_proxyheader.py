"""
A strict, total parser of PROXY protocol headers (v1 text, v2 binary), fed
whatever bytes have arrived so far.

Twisted's own parsers (C{twisted.protocols.haproxy}) refuse a first read
shorter than 8 (v1) or 16 (v2) bytes, so a valid header split across TCP
segments was refused; they take a v1 port or address as given (a non-numeric
port raised a C{ValueError} traceback, invalid UTF-8 a C{UnicodeDecodeError},
and any text at all was believed as an address); and they buffer whatever
length a v2 header declares.  L{parse_header} instead waits while the bytes so
far can still begin a valid header, checks every field (addresses of the
declared family, ports 0-65535, v2 address blocks and TLVs that fit), caps
what it buffers, and reports any fault as a L{HeaderRefused} with a fixed
reason: it raises nothing else, whatever the bytes.
"""

from __future__ import annotations

import ipaddress
import re
import struct

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.protocols.haproxy._info import ProxyInfo

from .._settings._text import printable

__all__ = [
    "INVALID",
    "MAX_V1_HEADER",
    "MAX_V2_HEADER",
    "NO_HEADER",
    "TOO_LONG",
    "HeaderRefused",
    "parse_header",
]

#: The longest v1 header, line end included (the protocol's own limit).
MAX_V1_HEADER = 107
#: The longest v2 header tlsecho buffers: 16 fixed bytes, the address block
#: and TLVs.  nginx's limit (C{NGX_PROXY_PROTOCOL_MAX_HEADER}); what HAProxy
#: sends (addresses, ALPN, authority, a unique ID of at most 128 bytes, the
#: SSL TLVs, a network namespace) and cloud balancers' TLVs fit in well under
#: 1 KiB.
MAX_V2_HEADER = 4096

V1_SIGNATURE = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

#: The reasons a header is refused (fixed words: they become metric labels).
NO_HEADER = "no PROXY header"
INVALID = "invalid PROXY header"
TOO_LONG = "PROXY header too long"

_V1_ADDRESS = re.compile(rb"[0-9A-Fa-f:.]{1,45}")
_V1_PORT = re.compile(rb"[0-9]{1,5}")
#: v2 address block sizes by family and protocol (stream only; 0x00 is UNSPEC).
_V2_STREAM_BLOCKS = {0x11: 12, 0x21: 36, 0x31: 216}


class HeaderRefused(Exception):
    """
    The bytes cannot begin a valid PROXY header.

    @ivar reason: L{NO_HEADER}, L{INVALID} or L{TOO_LONG}.
    """

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def parse_header(buffer: bytes) -> tuple[ProxyInfo, int] | None:
    """
    The header at the start of C{buffer} and its length, or L{None} while
    C{buffer} is a valid header's beginning.

    @raise HeaderRefused: when no valid header can start with C{buffer}, or
        it would be longer than L{MAX_V1_HEADER} or L{MAX_V2_HEADER}.
    """
    if buffer[:1] == V2_SIGNATURE[:1]:
        return _parse_v2(buffer)
    if buffer[:1] == V1_SIGNATURE[:1]:
        return _parse_v1(buffer)
    raise HeaderRefused(NO_HEADER)


def _signature(buffer: bytes, signature: bytes) -> bool:
    """
    Whether C{buffer} starts with C{signature} (C{False}: not yet all here).

    @raise HeaderRefused: if it cannot.
    """
    head = buffer[: len(signature)]
    if head != signature[: len(head)]:
        started = buffer[:5] == b"PROXY" or buffer[:4] == b"\r\n\r\n"
        raise HeaderRefused(INVALID if started else NO_HEADER)
    return len(head) == len(signature)


def _parse_v1(buffer: bytes) -> tuple[ProxyInfo, int] | None:
    if not _signature(buffer, V1_SIGNATURE):
        return None
    end = buffer.find(b"\r\n", 0, MAX_V1_HEADER)
    if end < 0:
        if len(buffer) >= MAX_V1_HEADER or b"\n" in buffer:
            raise HeaderRefused(INVALID)
        return None
    line = buffer[:end]
    if line == b"PROXY UNKNOWN" or line.startswith(b"PROXY UNKNOWN "):
        # The spec (2.1): whatever follows UNKNOWN is ignored.
        return ProxyInfo(line, None, None), end + 2
    fields = line.split(b" ")
    if len(fields) != 6 or fields[1] not in (b"TCP4", b"TCP6"):
        raise HeaderRefused(INVALID)
    family = IPv4Address if fields[1] == b"TCP4" else IPv6Address
    source = _v1_address(family, fields[2], fields[4])
    destination = _v1_address(family, fields[3], fields[5])
    return ProxyInfo(line, source, destination), end + 2


def _v1_address(
    family: type[IPv4Address] | type[IPv6Address], host: bytes, port: bytes
) -> IPv4Address | IPv6Address:
    """
    An address from v1 text: an IP address of the declared family (no
    names, no scope) and a decimal port 0-65535.
    """
    if _V1_ADDRESS.fullmatch(host) is None or _V1_PORT.fullmatch(port) is None:
        raise HeaderRefused(INVALID)
    number = int(port)
    try:
        parsed = ipaddress.ip_address(host.decode("ascii"))
    except ValueError:
        raise HeaderRefused(INVALID) from None
    if number > 65535 or (parsed.version == 4) != (family is IPv4Address):
        raise HeaderRefused(INVALID)
    return family("TCP", str(parsed), number)


def _parse_v2(buffer: bytes) -> tuple[ProxyInfo, int] | None:
    if not _signature(buffer, V2_SIGNATURE) or len(buffer) < 16:
        return None
    version_command, family, length = struct.unpack("!BBH", buffer[12:16])
    if version_command >> 4 != 2 or version_command & 0x0F not in (0, 1):
        raise HeaderRefused(INVALID)
    size = 16 + length
    if size > MAX_V2_HEADER:
        raise HeaderRefused(TOO_LONG)
    if len(buffer) < size:
        return None
    header, body = buffer[:size], buffer[16:size]
    if version_command & 0x0F == 0 or family == 0x00:
        # LOCAL (a health check) or UNSPEC: the spec says to ignore the
        # addresses and use the connection's own.
        return ProxyInfo(header, None, None), size
    block = _V2_STREAM_BLOCKS.get(family)
    if block is None or length < block or not _tlvs_fit(body[block:]):
        # Datagram, unknown families and protocols, truncated blocks.
        raise HeaderRefused(INVALID)
    if family == 0x31:
        source: object = UNIXAddress(unix_path_text(body[:108]))
        destination: object = UNIXAddress(unix_path_text(body[108:216]))
    else:
        width = 4 if family == 0x11 else 16
        kind = IPv4Address if family == 0x11 else IPv6Address
        ports = struct.unpack("!HH", body[2 * width : 2 * width + 4])
        source = kind("TCP", str(ipaddress.ip_address(body[:width])), ports[0])
        destination = kind(
            "TCP", str(ipaddress.ip_address(body[width : 2 * width])), ports[1]
        )
    return ProxyInfo(header, source, destination), size  # type: ignore[arg-type]


def _tlvs_fit(tlvs: bytes) -> bool:
    """Whether C{tlvs} is a whole number of type-length-value entries."""
    offset = 0
    while offset < len(tlvs):
        if offset + 3 > len(tlvs):
            return False
        offset += 3 + struct.unpack("!H", tlvs[offset + 1 : offset + 3])[0]
    return offset == len(tlvs)


def unix_path_text(raw: bytes) -> str:
    """
    A UNIX socket path from a v2 header as printable text: up to its first
    NUL (an abstract name, which starts with one, as C{@name}), escaped like
    every peer-chosen text (L{tlsecho._settings._text.printable}).
    """
    abstract = raw[:1] == b"\x00"
    path = (raw[1:] if abstract else raw).split(b"\x00", 1)[0]
    # A v2 path is at most 108 bytes: shown whole, however escaped.
    text = printable(path, limit=4 * len(path) + 1)
    return "@" + text if abstract else text
