"""
Peers that make the server describe them with hostile text: client certificates
whose names cannot be parsed, hold control characters or name two people, SNI
names with terminal escapes and line breaks, PROXY v2 headers naming a UNIX
path that is not UTF-8, a TLS 1.2 client that asks to renegotiate, and a client
that sends without ever reading.  The attacker tries to make the server raise
while describing a connection (leaking its slot for good), to forge or rewrite
log lines, to be authorized as a name it only half holds, or to have bytes it
never read counted as echoed.  tlsecho promises that describing a connection
never fails and every connection is counted as ended, that every peer-chosen
string reaches the text log escaped and length-capped on one line, that an
ambiguous identity never matches an allow rule, and that its byte counts and
reasons are true.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL

T = TypeVar("T")

__all__ = [
    "PROXY_V2_SIGNATURE",
    "Client",
    "client_certificate",
    "non_reading_client",
    "proxy_v2_unix_header",
    "renegotiating_client",
    "tls_client",
]

#: The 12 bytes every PROXY protocol v2 header starts with.
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

_NOW = datetime.datetime.now(datetime.UTC)


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv_end(der: bytes, start: int) -> int:
    """Where the DER element starting at C{start} ends."""
    first = der[start + 1]
    if first < 0x80:
        return start + 2 + first
    count = first & 0x7F
    length = int.from_bytes(der[start + 2 : start + 2 + count], "big")
    return start + 2 + count + length


def _sign(tbs: bytes, key: object) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())


def client_certificate(
    authority: trustme.CA,
    directory: Path,
    name: str,
    *,
    common_names: Sequence[str] = (),
    dns_names: Sequence[str] = (),
    raw_dns_name: bytes | None = None,
) -> tuple[Path, Path]:
    """
    A client certificate issued by C{authority}, written as NAME.pem and
    NAME.key in C{directory}; return both paths.

    @param common_names: The subject's CN attributes, in order (several make an
        ambiguous subject).
    @param dns_names: Well-formed dNSName SANs.
    @param raw_dns_name: One more dNSName holding exactly these bytes (invalid
        UTF-8, say): the certificate is built with a placeholder and the bytes
        patched into the signed part, so no library check stands in the way.
    """
    ca_key = serialization.load_pem_private_key(authority.private_key_pem.bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(authority.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    placeholder = None
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    if raw_dns_name is not None:
        placeholder = b"Q" * len(raw_dns_name)
        names.append(x509.DNSName(placeholder.decode()))
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, n) for n in common_names])
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - datetime.timedelta(hours=1))
        .not_valid_after(_NOW + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    certificate = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    der = certificate.public_bytes(serialization.Encoding.DER)
    if placeholder is not None:
        assert raw_dns_name is not None
        tbs = certificate.tbs_certificate_bytes
        assert tbs.count(placeholder) == 1
        tbs = tbs.replace(placeholder, raw_dns_name)
        # The outer SEQUENCE: header, TBS, signature algorithm, signature.
        header_end = 2 + (der[1] & 0x7F if der[1] >= 0x80 else 0)
        algorithm_start = header_end + len(certificate.tbs_certificate_bytes)
        algorithm = der[algorithm_start : _tlv_end(der, algorithm_start)]
        signature = b"\x00" + _sign(tbs, ca_key)
        body = tbs + algorithm + b"\x03" + _der_length(len(signature)) + signature
        der = b"\x30" + _der_length(len(body)) + body
    chain = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    chain.write_bytes(pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return chain, key_path


def proxy_v2_unix_header(source: bytes, destination: bytes = b"/run/lb.sock") -> bytes:
    """
    A PROXY protocol v2 header (PROXY command, AF_UNIX stream) naming these
    paths, built byte by byte: 108 bytes per path, NUL-padded.
    """
    addresses = source.ljust(108, b"\x00") + destination.ljust(108, b"\x00")
    return PROXY_V2_SIGNATURE + bytes([0x21, 0x31]) + struct.pack("!H", 216) + addresses


def _until_done(
    connection: SSL.Connection, operation: Callable[[], T], timeout: float
) -> T:
    """
    Run a pyOpenSSL C{operation} on a non-blocking socket, waiting (at most
    C{timeout} seconds) whenever it wants to read or write.

    @raise TimeoutError: if it is still waiting after C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return operation()
        except SSL.WantReadError:
            wanted = ([connection], [])
        except SSL.WantWriteError:
            wanted = ([], [connection])
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not any(select.select(*wanted, [], remaining)):
            raise TimeoutError("the server neither answered nor closed")


def _connect(port: int, context: SSL.Context, timeout: float) -> SSL.Connection:
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    raw.setblocking(False)
    connection = SSL.Connection(context, raw)
    connection.set_connect_state()
    return connection


class Client:
    """
    A pyOpenSSL client over a non-blocking socket, every operation bounded.
    """

    def __init__(self, connection: SSL.Connection, timeout: float):
        self.connection = connection
        self.timeout = timeout

    def send(self, data: bytes) -> None:
        """Send all of C{data}."""
        sent = 0
        while sent < len(data):
            send = functools.partial(self.connection.send, data[sent:])
            sent += _until_done(self.connection, send, self.timeout)

    def recv(self, size: int) -> bytes:
        """Up to C{size} bytes; C{b""} once the server closed."""
        try:
            return _until_done(
                self.connection, lambda: self.connection.recv(size), self.timeout
            )
        except SSL.ZeroReturnError:
            return b""

    def handshake(self) -> None:
        """Run a handshake (the first, or a renegotiation)."""
        _until_done(self.connection, self.connection.do_handshake, self.timeout)

    def close(self) -> None:
        """Close the socket (no close_notify)."""
        self.connection.close()


def tls_client(
    port: int,
    *,
    servername: bytes | None = None,
    certificate: tuple[Path, Path] | None = None,
    max_tls12: bool = False,
    timeout: float = 10.0,
) -> Client:
    """
    A pyOpenSSL client connected to 127.0.0.1:C{port} with the handshake
    done: it trusts anything and sends C{servername} as SNI byte for byte.
    """
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if max_tls12:
        context.set_max_proto_version(SSL.TLS1_2_VERSION)
    if certificate is not None:
        context.use_certificate_chain_file(str(certificate[0]))
        context.use_privatekey_file(str(certificate[1]))
    connection = _connect(port, context, timeout)
    if servername is not None:
        connection.set_tlsext_host_name(servername)
    client = Client(connection, timeout)
    client.handshake()
    return client


def renegotiating_client(port: int, timeout: float = 10.0) -> bytes:
    """
    Connect with TLS 1.2, echo one message, then ask to renegotiate; return
    what the server answered to the echo.
    """
    client = tls_client(port, max_tls12=True, timeout=timeout)
    try:
        client.send(b"before\n")
        echoed = client.recv(100)
        assert client.connection.renegotiate()
        with contextlib.suppress(SSL.Error, OSError):
            client.handshake()
            # The server's refusal arrives as an alert on the next read.
            while client.recv(100):
                pass
        return echoed
    finally:
        client.close()


def non_reading_client(port: int, amount: int, timeout: float = 10.0) -> int:
    """
    Send up to C{amount} bytes over TLS without ever reading, until the server
    stops taking them, then close with unread data (a reset); return how many
    bytes were sent.

    The receive buffer is made small so that the kernel cannot read on the
    client's behalf: what the server writes piles up on its side.
    """
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(timeout)
    raw.connect(("127.0.0.1", port))
    raw.setblocking(False)
    connection = SSL.Connection(SSL.Context(SSL.TLS_CLIENT_METHOD), raw)
    connection.set_connect_state()
    client = Client(connection, timeout)
    client.handshake()
    chunk = b"x" * 16384
    sent = 0
    # The server stops reading once its buffers are full: two seconds of no
    # progress means it has.
    client.timeout = 2.0
    with contextlib.suppress(TimeoutError):
        while sent < amount:
            client.send(chunk)
            sent += len(chunk)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()
    return sent
