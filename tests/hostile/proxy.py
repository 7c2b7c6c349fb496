"""
PROXY protocol senders that lie, dawdle or overflow: a peer that is not the
configured load balancer sends a header claiming any client address; a header
arrives split across TCP segments at an arbitrary byte; a health-check header
(v1 C{UNKNOWN}, v2 C{LOCAL}) is followed by silence; a v2 header declares a
65 KB TLV block; v1 fields hold non-numeric ports, addresses that are not
addresses, invalid UTF-8 or terminal escapes, and v2 blocks are truncated or of
an unknown kind.  tlsecho promises that only the sources in C{--proxy-trusted}
(loopback by default) may name a client, that any other connection on a
C{haproxy:} listener is closed before TLS, logged and counted; that a valid
header is accepted however it is split; that a header naming no client and
then nothing is logged when the handshake timeout closes it; that at most
L{tlsecho._net._proxy.MAX_V2_HEADER} bytes are buffered before a header is
complete, a longer header being closed at once; and that every malformed
header costs one log line and its own connection, never a traceback.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import struct
import time
from pathlib import Path

__all__ = [
    "V2_SIGNATURE",
    "echo_after",
    "is_closed",
    "tlv",
    "v1",
    "v2",
    "v2_inet",
    "v2_unix",
]

#: The 12 bytes every PROXY v2 header starts with.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(*fields: bytes | str) -> bytes:
    """A PROXY v1 line of exactly these space-separated fields (any bytes)."""
    raw = [f.encode() if isinstance(f, str) else f for f in fields]
    return b"PROXY " + b" ".join(raw) + b"\r\n"


def tlv(kind: int, value: bytes) -> bytes:
    """One PROXY v2 type-length-value entry."""
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def v2(
    command: int,
    family: int,
    body: bytes,
    declared: int | None = None,
    version: int = 0x20,
) -> bytes:
    """
    A PROXY v2 header: signature, version and command, family and protocol,
    the length (C{declared}, or the real one), then C{body}.
    """
    length = len(body) if declared is None else declared
    return (
        V2_SIGNATURE + bytes([version | command, family]) + struct.pack("!H", length) + body
    )


def v2_inet(source: str, source_port: int, port: int, tlvs: bytes = b"") -> bytes:
    """A v2 PROXY header for a TCP client at C{source}, with C{tlvs} after it."""
    address = ipaddress.ip_address(source)
    if address.version == 4:
        family, destination = 0x11, ipaddress.ip_address("127.0.0.1")
    else:
        family, destination = 0x21, ipaddress.ip_address("::1")
    body = address.packed + destination.packed + struct.pack("!HH", source_port, port)
    return v2(0x01, family, body + tlvs)


def v2_unix(source: bytes, destination: bytes = b"/run/echo.sock") -> bytes:
    """A v2 PROXY header for a client on a UNIX stream socket (raw path bytes)."""
    body = source.ljust(108, b"\x00") + destination.ljust(108, b"\x00")
    return v2(0x01, 0x31, body)


def is_closed(connection: socket.socket) -> bool:
    """
    Whether the server closed C{connection} without sending anything (EOF or
    reset); raises C{TimeoutError} if it stays open past the socket timeout.
    """
    try:
        return connection.recv(100) == b""
    except ConnectionResetError:
        return True


def echo_after(
    port: int,
    parts: list[bytes],
    ca: Path,
    pause: float = 0.0,
    payload: bytes = b"proxied\n",
) -> bytes:
    """
    Send C{parts} one send each (C{pause} seconds apart, so each is likely a
    read of its own), then TLS on the same connection; return the echo.
    """
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for index, part in enumerate(parts):
            if index and pause:
                time.sleep(pause)  # not a timing assertion: only makes a split likely
            raw.sendall(part)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(payload)
            received = b""
            while len(received) < len(payload):
                chunk = tls.recv(100)
                if not chunk:
                    break
                received += chunk
            return received
