"""
Conformance of the real ``twistd tlsecho`` server, as a TLS implementation other than
OpenSSL sees it: tlslite-ng (pure Python) as the client, and records crafted byte by
byte on a plain socket.  Each case asserts the exact alert the server sends (RFC 8446
for TLS 1.3, RFC 5246 for TLS 1.2), and after every misbehaving peer a well-behaved
client still gets its echo: a bad peer costs only its own connection.

Not covered here, and why:

  - An oversized or malformed record I{after} the handshake: the record would have to be
    protected with the session's traffic keys, which bytes crafted on a socket cannot
    do, and tlslite-ng has no hook to corrupt a record it protects.  Only records
    before the handshake (plaintext) are crafted here.
  - 0-RTT early data: tlslite-ng cannot send early data as a client;
    test_conformance_openssl.py sends it with ``openssl s_client``.

tlslite-ng 0.8.2 needs one work-around: as a TLS 1.3 client it chooses whether to
compress its Certificate (RFC 8879) from the compress_certificate extension of its
I{own} ClientHello instead of the server's CertificateRequest, so it sends a
CompressedCertificate the server never offered to accept, which OpenSSL rightly
refuses with unexpected_message.  Every client here turns certificate compression
off for sending (``certificate_compression_send = []``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tlslite.api import HandshakeSettings, TLSConnection, X509CertChain, parsePEMKey
from tlslite.constants import AlertDescription, AlertLevel, CipherSuite
from tlslite.errors import TLSRemoteAlert
from tlslite.extensions import TLSExtension
from tlslite.messages import ClientHello

from _processes import ServerProcess, identity, start_server
from conftest import TLSFiles, write_cert

pytestmark = pytest.mark.subprocess

#: Seconds any socket operation may take before the test fails.
TIMEOUT = 10.0
#: ServerHello.random of a HelloRetryRequest (RFC 8446 section 4.1.3).
HELLO_RETRY_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()
#: The last 8 bytes of ServerHello.random when a TLS 1.3 server negotiates TLS 1.2
#: (RFC 8446 section 4.1.3).
DOWNGRADE_TLS12 = b"DOWNGRD\x01"

# Record content types (RFC 8446 section 5.1, RFC 5246 section 6.2.1).
CHANGE_CIPHER_SPEC = 20
ALERT = 21
HANDSHAKE = 22
APPLICATION_DATA = 23
# Handshake message types (RFC 8446 section 4).
CLIENT_HELLO = 1
SERVER_HELLO = 2


# Servers and certificates -------------------------------------------------------------


@pytest.fixture
def rsa_server_files(tmp_path: Path) -> tuple[Path, Path]:
    """An RSA server certificate and key, so that RSA key exchange would be possible."""
    authority = trustme.CA(key_type=trustme.KeyType.RSA)
    return write_cert(
        authority.issue_cert("localhost", "127.0.0.1", key_type=trustme.KeyType.RSA),
        tmp_path,
        "rsa-server",
    )


@pytest.fixture
def server(servers: list[ServerProcess], tls_files: TLSFiles) -> ServerProcess:
    """The server with its defaults (profile intermediate) and an ECDSA certificate."""
    return start_server(
        servers, "--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)
    )


@pytest.fixture
def rsa_server(
    servers: list[ServerProcess], rsa_server_files: tuple[Path, Path]
) -> ServerProcess:
    """The server with its defaults and an RSA certificate."""
    cert, key = rsa_server_files
    return start_server(servers, "--cert", str(cert), "--key", str(key))


@pytest.fixture(params=["ecdsa", "rsa"])
def any_server(request: pytest.FixtureRequest) -> ServerProcess:
    """The default server, once with an ECDSA and once with an RSA certificate."""
    name = "server" if request.param == "ecdsa" else "rsa_server"
    return request.getfixturevalue(name)


@pytest.fixture
def mutual_server(servers: list[ServerProcess], tls_files: TLSFiles) -> ServerProcess:
    """A server that requires client certificates from C{tls_files.client_ca}."""
    return start_server(
        servers,
        *identity(tls_files),
        "--verify",
        "required",
        "--ca",
        str(tls_files.client_ca),
    )


# tlslite-ng clients -------------------------------------------------------------------


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate chain and key as tlslite-ng takes them."""

    chain: X509CertChain
    key: object

    @classmethod
    def load(cls, cert: Path, key: Path) -> ClientCertificate:
        chain = X509CertChain()
        chain.parsePemList(cert.read_text())
        return cls(chain, parsePEMKey(key.read_text(), private=True))


class _RecordingSocket:
    """
    A socket that keeps every byte it sends and receives, so tests can read the
    records as they were on the wire.

    A write that fails because the server already closed is swallowed: a server that
    refuses the client's second flight sends its alert and closes while the client is
    still writing, and the alert is then read from the receive buffer, which is what
    the test is about.
    """

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self.received = bytearray()
        self.sent = bytearray()

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        self.received += data
        return data

    def send(self, data: bytes) -> int:
        self.sent += data
        try:
            return self._sock.send(data)
        except OSError as e:
            if e.errno not in (errno.EPIPE, errno.ECONNRESET):
                raise
            return len(data)

    def sendall(self, data: bytes) -> None:
        self.sent += data
        try:
            self._sock.sendall(data)
        except OSError as e:
            if e.errno not in (errno.EPIPE, errno.ECONNRESET):
                raise

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


class _UnknownExtensionsConnection(TLSConnection):
    """
    A tlslite-ng connection whose ClientHello also carries extensions the server
    cannot know: a GREASE value (RFC 8701) and an unassigned code point.

    They are added before tlslite-ng writes the message, so the handshake transcript
    includes them as it must.
    """

    UNKNOWN = (0x0A0A, 0xBEEF)
    DATA = b"tlsecho test"

    def _sendMsg(self, msg: object, *args: object, **kwargs: object) -> Iterator[object]:
        if isinstance(msg, ClientHello):
            for code in self.UNKNOWN:
                msg.extensions.append(
                    TLSExtension(extType=code).create(bytearray(self.DATA))
                )
        return super()._sendMsg(msg, *args, **kwargs)

    @classmethod
    def on_the_wire(cls) -> list[bytes]:
        """The extensions as they appear in the ClientHello (section 4.2)."""
        return [_extension(code, cls.DATA) for code in cls.UNKNOWN]


def _settings(**overrides: object) -> HandshakeSettings:
    """tlslite-ng client settings: its defaults, changed by C{overrides}."""
    settings = HandshakeSettings()
    # See the module docstring: tlslite-ng 0.8.2 would send a CompressedCertificate.
    settings.certificate_compression_send = []
    for name, value in overrides.items():
        assert hasattr(settings, name), name
        setattr(settings, name, value)
    return settings


@dataclass
class Client:
    """A tlslite-ng connection to the server and the raw bytes it received."""

    connection: TLSConnection
    wire: _RecordingSocket

    def server_hello_random(self) -> bytes:
        """ServerHello.random of the first record the server sent."""
        return _server_hello_random(bytes(self.wire.received))

    def close(self) -> None:
        self.wire.close()


def _handshake(
    server: ServerProcess,
    settings: HandshakeSettings | None = None,
    certificate: ClientCertificate | None = None,
    connection_class: type[TLSConnection] = TLSConnection,
) -> Client:
    """
    Connect to the server and complete a tlslite-ng handshake.

    @raise TLSRemoteAlert: when the server refuses the handshake.
    """
    wire = _RecordingSocket(socket.create_connection(("127.0.0.1", server.port), TIMEOUT))
    connection = connection_class(wire)
    try:
        connection.handshakeClientCert(
            certificate.chain if certificate else None,
            certificate.key if certificate else None,
            settings=settings or _settings(),
            serverName="localhost",
        )
    except BaseException:
        wire.close()
        raise
    return Client(connection, wire)


def _echo_through(client: Client, payload: bytes) -> bytes:
    """Send C{payload} on an established connection; return what came back."""
    client.connection.write(payload)
    received = bytearray()
    while len(received) < len(payload):
        chunk = client.connection.read(max=len(payload) - len(received))
        if not chunk:
            break
        received += chunk
    return bytes(received)


def _echo(
    server: ServerProcess,
    certificate: ClientCertificate | None = None,
    connection_class: type[TLSConnection] = TLSConnection,
    **overrides: object,
) -> tuple[Client, bytes]:
    """Handshake with C{overrides} as settings, echo a payload, close; return both."""
    payload = b"conformance " + os.urandom(8).hex().encode()
    client = _handshake(server, _settings(**overrides), certificate, connection_class)
    try:
        echoed = _echo_through(client, payload)
    finally:
        client.close()
    assert echoed == payload
    return client, echoed


def _refusal(
    server: ServerProcess,
    settings: HandshakeSettings | None = None,
    certificate: ClientCertificate | None = None,
) -> int:
    """
    Handshake, then read; return the description of the alert the server sent.

    A TLS 1.3 server refuses a client certificate only after the client's handshake
    has finished on the client's side, so the alert may arrive on the first read.
    """
    try:
        client = _handshake(server, settings, certificate)
    except TLSRemoteAlert as alert:
        return int(alert.description)
    version = client.connection.version
    try:
        data = client.connection.read(max=1)
    except TLSRemoteAlert as alert:
        return int(alert.description)
    except TimeoutError:
        data = b"nothing"
    finally:
        client.close()
    raise AssertionError(f"the server accepted the {version} handshake, then sent {data!r}")


def assert_serving(
    server: ServerProcess, certificate: ClientCertificate | None = None
) -> None:
    """A well-behaved TLS 1.3 client still gets its echo: the server survived."""
    _echo(server, certificate)


# Raw records --------------------------------------------------------------------------


def _u8(data: bytes) -> bytes:
    """An opaque vector with a one-byte length (RFC 8446 section 3.4)."""
    return struct.pack("!B", len(data)) + data


def _u16(data: bytes) -> bytes:
    """An opaque vector with a two-byte length (RFC 8446 section 3.4)."""
    return struct.pack("!H", len(data)) + data


def _u24(data: bytes) -> bytes:
    """A three-byte length then C{data}: the handshake message length (section 4)."""
    return struct.pack("!I", len(data))[1:] + data


def _extension(code: int, data: bytes) -> bytes:
    """One Extension: type, then opaque extension_data<0..2^16-1> (section 4.2)."""
    return struct.pack("!H", code) + _u16(data)


def _client_hello_body(tls13: bool = True, compression_methods: bytes = b"\x00") -> bytes:
    """
    The body of a ClientHello (RFC 8446 section 4.1.2, RFC 5246 section 7.4.1.2).

    It offers ECDHE with AES-GCM for TLS 1.2 and, with C{tls13}, TLS_AES_128_GCM_SHA256
    with an X25519 key share; the extensions are server_name (RFC 6066),
    supported_groups and ec_point_formats (RFC 8422), signature_algorithms (RFC 8446
    section 4.2.3) and, for TLS 1.3, supported_versions and key_share.
    """
    suites = [0xC02B, 0xC02F]  # ECDHE-ECDSA / ECDHE-RSA with AES-128-GCM
    extensions = [
        _extension(0, _u16(b"\x00" + _u16(b"localhost"))),
        _extension(10, _u16(struct.pack("!3H", 0x001D, 0x0017, 0x0018))),
        _extension(11, _u8(b"\x00")),
        _extension(13, _u16(struct.pack("!5H", 0x0403, 0x0804, 0x0401, 0x0503, 0x0805))),
    ]
    if tls13:
        suites.insert(0, 0x1301)
        share = (
            X25519PrivateKey.generate()
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        extensions += [
            _extension(43, _u8(struct.pack("!2H", 0x0304, 0x0303))),
            _extension(51, _u16(struct.pack("!H", 0x001D) + _u16(share))),
        ]
    return (
        struct.pack("!H", 0x0303)  # legacy_version
        + os.urandom(32)  # random
        + _u8(os.urandom(32))  # legacy_session_id
        + _u16(b"".join(struct.pack("!H", suite) for suite in suites))
        + _u8(compression_methods)
        + _u16(b"".join(extensions))
    )


def _handshake_message(message_type: int, body: bytes) -> bytes:
    """A Handshake message: type, uint24 length, body (RFC 8446 section 4)."""
    return struct.pack("!B", message_type) + _u24(body)


def _record(content_type: int, fragment: bytes, version: int = 0x0301) -> bytes:
    """
    A TLSPlaintext record (RFC 8446 section 5.1): type, legacy_record_version, uint16
    length, fragment.  0x0301 is what a first ClientHello record may carry.
    """
    return struct.pack("!BHH", content_type, version, len(fragment)) + fragment


@dataclass(frozen=True)
class Reply:
    """What the server sent back to a raw peer, and whether it then closed."""

    data: bytes
    closed: bool

    def alert(self) -> tuple[int, int]:
        """(level, description) of the single alert record the reply must be."""
        assert len(self.data) >= 7, f"no alert record in {self.data.hex()!r}"
        content_type, version, length = struct.unpack("!BHH", self.data[:5])
        assert content_type == ALERT, f"not an alert record: {self.data[:16].hex()}"
        assert version >> 8 == 3, f"record version {version:#06x}"
        assert length == 2, f"alert record of length {length}"
        return self.data[5], self.data[6]


def _send_raw(
    server: ServerProcess, data: bytes, stop_after_server_hello: bool = False
) -> Reply:
    """
    Send C{data} on a new connection and read until the server closes it (or, with
    C{stop_after_server_hello}, until its first handshake record is complete).
    """
    with socket.create_connection(("127.0.0.1", server.port), TIMEOUT) as sock:
        try:
            sock.sendall(data)
        except OSError as e:  # the server may close before reading everything
            if e.errno not in (errno.EPIPE, errno.ECONNRESET):
                raise
        received = bytearray()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return Reply(bytes(received), closed=True)
            if not chunk:
                return Reply(bytes(received), closed=True)
            received += chunk
            if stop_after_server_hello and _first_record_complete(received):
                return Reply(bytes(received), closed=False)
        return Reply(bytes(received), closed=False)


def _first_record_complete(data: bytes | bytearray) -> bool:
    return len(data) >= 5 and len(data) >= 5 + struct.unpack("!H", data[3:5])[0]


def _server_hello_random(data: bytes) -> bytes:
    """
    ServerHello.random from the start of what the server sent: a handshake record
    whose first message is a ServerHello (type 2, uint24 length, legacy_version, then
    the 32 random bytes: RFC 8446 section 4.1.3).
    """
    assert data[0] == HANDSHAKE, f"first record is not a handshake: {data[:16].hex()}"
    assert data[5] == SERVER_HELLO, f"first message is not a ServerHello: {data[5]}"
    return data[11:43]


def _server_hello_compression(data: bytes) -> int:
    """The compression_method a TLS 1.2 ServerHello selected (RFC 5246 7.4.1.3)."""
    _server_hello_random(data)
    session_id_length = data[43]
    # Then the session id, cipher_suite (2 bytes), compression_method (1 byte).
    return data[44 + session_id_length + 2]


# Versions, cipher suites and groups ---------------------------------------------------


def test_tls12_ecdhe_aes_gcm_handshake_echoes(any_server: ServerProcess) -> None:
    """
    A TLS 1.2 client offering ECDHE with AES-GCM completes a full handshake and gets its
    echo.
    """
    client, _ = _echo(any_server, maxVersion=(3, 3), cipherNames=["aes128gcm", "aes256gcm"])
    assert client.connection.version == (3, 3)
    assert not client.connection.resumed
    suite = client.connection.session.cipherSuite
    assert suite in CipherSuite.ecdhAllSuites, CipherSuite.ietfNames[suite]
    assert suite in CipherSuite.aes128GcmSuites + CipherSuite.aes256GcmSuites


def test_tls13_handshake_echoes(any_server: ServerProcess) -> None:
    """A TLS 1.3 client completes a handshake and gets its echo."""
    client, _ = _echo(any_server)
    assert client.connection.version == (3, 4)
    assert client.server_hello_random() != HELLO_RETRY_RANDOM


def test_tls13_hello_retry_request(server: ServerProcess) -> None:
    """
    A TLS 1.3 client that sends no key share is answered with a HelloRetryRequest and
    then gets its echo.
    """
    client, _ = _echo(server, keyShares=[])
    assert client.connection.version == (3, 4)
    assert client.server_hello_random() == HELLO_RETRY_RANDOM


@pytest.mark.parametrize("version", [(3, 1), (3, 2)], ids=["TLS1.0", "TLS1.1"])
def test_old_version_refused_with_protocol_version(
    server: ServerProcess, version: tuple[int, int]
) -> None:
    """A client offering only TLS 1.0 or only TLS 1.1 gets a protocol_version alert."""
    settings = _settings(minVersion=version, maxVersion=version)
    assert _refusal(server, settings) == AlertDescription.protocol_version
    assert_serving(server)


@pytest.mark.parametrize("key_exchange", ["rsa", "dhe_rsa"])
def test_tls12_without_ecdhe_refused_with_handshake_failure(
    rsa_server: ServerProcess, key_exchange: str
) -> None:
    """
    A TLS 1.2 client offering only RSA or finite-field DHE key exchange gets
    handshake_failure.

    The certificate is RSA, so only the cipher policy stands in the way.  RFC 5246
    section 7.4.1.3 asks for handshake_failure when no cipher suite is acceptable;
    insufficient_security (section 7.2.2) "may" replace it when the server wants
    stronger ciphers, and OpenSSL, like most servers, sends handshake_failure.
    """
    settings = _settings(maxVersion=(3, 3), keyExchangeNames=[key_exchange])
    assert _refusal(rsa_server, settings) == AlertDescription.handshake_failure
    assert_serving(rsa_server)


def test_tls12_cbc_refused_with_handshake_failure(any_server: ServerProcess) -> None:
    """
    A TLS 1.2 client offering ECDHE with only CBC ciphers gets handshake_failure.

    As for key exchange, handshake_failure rather than the optional
    insufficient_security (RFC 5246 section 7.2.2) is what OpenSSL sends.
    """
    settings = _settings(maxVersion=(3, 3), cipherNames=["aes128", "aes256", "3des"])
    assert _refusal(any_server, settings) == AlertDescription.handshake_failure
    assert_serving(any_server)


def test_tls13_unsupported_cipher_suite_refused(server: ServerProcess) -> None:
    """
    A TLS 1.3 client offering only TLS_AES_128_CCM_SHA256 gets handshake_failure (RFC
    8446 section 4.1.1).
    """
    settings = _settings(minVersion=(3, 4), cipherNames=["aes128ccm"])
    assert _refusal(server, settings) == AlertDescription.handshake_failure
    assert_serving(server)


def test_tls13_no_common_group_refused(server: ServerProcess) -> None:
    """
    A TLS 1.3 client supporting only X448 gets handshake_failure (RFC 8446 section
    4.1.1).
    """
    settings = _settings(minVersion=(3, 4), keyShares=["x448"], eccCurves=["x448"])
    assert _refusal(server, settings) == AlertDescription.handshake_failure
    assert_serving(server)


# Client certificates ------------------------------------------------------------------


def _trusted_client(tls_files: TLSFiles) -> ClientCertificate:
    """The client certificate signed by the CA that the mutual server trusts."""
    return ClientCertificate.load(tls_files.client_cert, tls_files.client_key)


@pytest.mark.parametrize("version", [(3, 3), (3, 4)], ids=["TLS1.2", "TLS1.3"])
def test_client_certificate_accepted(
    mutual_server: ServerProcess, tls_files: TLSFiles, version: tuple[int, int]
) -> None:
    """With --verify required, a client certificate from the trusted CA gets its echo."""
    client, _ = _echo(mutual_server, _trusted_client(tls_files), maxVersion=version)
    assert client.connection.version == version


def test_tls13_missing_client_certificate_certificate_required(
    mutual_server: ServerProcess, tls_files: TLSFiles
) -> None:
    """
    With --verify required, a TLS 1.3 client without a certificate gets
    certificate_required (RFC 8446 section 4.4.2.4).
    """
    assert _refusal(mutual_server) == AlertDescription.certificate_required
    assert_serving(mutual_server, _trusted_client(tls_files))


def test_tls12_missing_client_certificate_handshake_failure(
    mutual_server: ServerProcess, tls_files: TLSFiles
) -> None:
    """
    With --verify required, a TLS 1.2 client without a certificate gets handshake_failure.

    TLS 1.2 has no certificate_required; RFC 5246 section 7.4.6 lets a server that
    requires authentication "respond with a fatal handshake_failure alert".
    """
    settings = _settings(maxVersion=(3, 3))
    assert _refusal(mutual_server, settings) == AlertDescription.handshake_failure
    assert_serving(mutual_server, _trusted_client(tls_files))


@pytest.mark.parametrize("version", [(3, 3), (3, 4)], ids=["TLS1.2", "TLS1.3"])
def test_client_certificate_from_unknown_ca(
    mutual_server: ServerProcess,
    tls_files: TLSFiles,
    tmp_path: Path,
    version: tuple[int, int],
) -> None:
    """
    With --verify required, a client certificate from a CA the server does not trust
    gets unknown_ca.
    """
    stranger = trustme.CA().issue_cert("client.example")
    certificate = ClientCertificate.load(*write_cert(stranger, tmp_path, "stranger"))
    settings = _settings(maxVersion=version)
    assert _refusal(mutual_server, settings, certificate) == AlertDescription.unknown_ca
    assert_serving(mutual_server, _trusted_client(tls_files))


# Downgrade protection -----------------------------------------------------------------


def test_tls12_client_sees_downgrade_sentinel(server: ServerProcess) -> None:
    """
    A client offering at most TLS 1.2 to the default (intermediate) server finds
    DOWNGRD\\x01 at the end of ServerHello.random (RFC 8446 section 4.1.3).

    tlslite-ng checks the sentinel itself only when it offered TLS 1.3, so the test
    offers TLS 1.2 at most and reads the random from the bytes on the wire.
    """
    client, _ = _echo(server, maxVersion=(3, 3))
    assert client.connection.version == (3, 3)
    assert client.server_hello_random()[-8:] == DOWNGRADE_TLS12


def test_tls13_client_sees_no_downgrade_sentinel(server: ServerProcess) -> None:
    """
    A client offering TLS 1.3 gets TLS 1.3 and a ServerHello.random without a sentinel.
    """
    client, _ = _echo(server)
    assert client.connection.version == (3, 4)
    assert client.server_hello_random()[-8:-1] != DOWNGRADE_TLS12[:-1]


def test_tls12_only_server_sends_no_downgrade_sentinel(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """
    A server limited to TLS 1.2 by --max-tls sends no sentinel, so a TLS 1.3 capable
    client (which would abort on one) connects at TLS 1.2.
    """
    server = start_server(
        servers,
        *identity(tls_files),
        "--max-tls",
        "1.2",
    )
    client, _ = _echo(server)
    assert client.connection.version == (3, 3)
    assert client.server_hello_random()[-8:-1] != DOWNGRADE_TLS12[:-1]


def test_fallback_scsv_refused_with_inappropriate_fallback(server: ServerProcess) -> None:
    """
    A TLS 1.2 ClientHello with TLS_FALLBACK_SCSV gets inappropriate_fallback (RFC 7507
    section 3).
    """
    settings = _settings(maxVersion=(3, 3), sendFallbackSCSV=True)
    assert _refusal(server, settings) == AlertDescription.inappropriate_fallback
    assert_serving(server)


# Unknown extensions -------------------------------------------------------------------


@pytest.mark.parametrize("version", [(3, 3), (3, 4)], ids=["TLS1.2", "TLS1.3"])
def test_unknown_extensions_ignored(
    server: ServerProcess, version: tuple[int, int]
) -> None:
    """
    A ClientHello with extensions the server does not know completes the handshake and
    gets its echo (RFC 8446 section 4.2, RFC 5246 section 7.4.1.4: ignore them).

    tlslite-ng would abort if the server echoed them back unsolicited.
    """
    client, _ = _echo(
        server, connection_class=_UnknownExtensionsConnection, maxVersion=version
    )
    assert client.connection.version == version
    # The ClientHello, in the first record sent, did carry them.
    first_record = bytes(
        client.wire.sent[: 5 + struct.unpack("!H", client.wire.sent[3:5])[0]]
    )
    assert first_record[5] == CLIENT_HELLO
    for extension in _UnknownExtensionsConnection.on_the_wire():
        assert extension in first_record


# Raw records before the handshake -----------------------------------------------------


#: Bytes that are not TLS at all: the server cannot even parse a record header.
NOT_TLS = {
    "http-request": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "zeros": bytes(64),
    # An SSL 2.0 CLIENT-HELLO (RFC 6176 section 3: never answer with SSL 2.0):
    # msg_length with the high bit set, msg_type 1, version 0x0002, cipher-spec,
    # session-id and challenge lengths, one SSL 2.0 cipher spec, a 16-byte challenge.
    "sslv2-client-hello": struct.pack("!HBHHHH", 0x8000 | 28, 1, 0x0002, 3, 0, 16)
    + bytes.fromhex("010080")
    + bytes(range(16)),
}


@pytest.mark.parametrize("data", NOT_TLS.values(), ids=NOT_TLS.keys())
def test_not_tls_closed_without_reply(server: ServerProcess, data: bytes) -> None:
    """
    A peer whose first bytes are not a TLS record is disconnected at once, with no reply.

    OpenSSL sends no alert when the record header is not TLS at all (its version
    is not 3.x): the peer does not speak TLS, so no alert would be understood.
    """
    started = time.monotonic()
    reply = _send_raw(server, data)
    assert reply == Reply(b"", closed=True)
    assert time.monotonic() - started < 5
    assert_serving(server)


#: First records of a type other than handshake (RFC 8446 section 5: an unexpected
#: record type, and a change_cipher_spec before the first ClientHello counts as one).
UNEXPECTED_FIRST_RECORDS = {
    "application-data": _record(APPLICATION_DATA, b"too early"),
    "change-cipher-spec": _record(CHANGE_CIPHER_SPEC, b"\x01"),
    "unknown-content-type": _record(99, b"what is this"),
}


@pytest.mark.parametrize(
    "data", UNEXPECTED_FIRST_RECORDS.values(), ids=UNEXPECTED_FIRST_RECORDS.keys()
)
def test_unexpected_first_record_unexpected_message(
    server: ServerProcess, data: bytes
) -> None:
    """
    A first record that is not a handshake gets a fatal unexpected_message alert (RFC
    8446 section 5).
    """
    reply = _send_raw(server, data)
    assert reply.alert() == (AlertLevel.fatal, AlertDescription.unexpected_message)
    assert reply.closed
    assert_serving(server)


@pytest.mark.parametrize(
    "length",
    [2**14 + 1, 2**14 + 257, 2**14 + 2049],
    ids=["plaintext-limit+1", "tls13-ciphertext-limit+1", "tls12-ciphertext-limit+1"],
)
def test_oversized_record_record_overflow(server: ServerProcess, length: int) -> None:
    """
    A handshake record longer than 2^14 bytes gets a fatal record_overflow alert.

    RFC 8446 section 5.1: a plaintext record is at most 2^14 bytes (as in RFC 5246
    section 6.2.1), and one that exceeds it MUST get record_overflow; the other
    lengths also exceed the limits of protected records (2^14 + 256 in TLS 1.3,
    section 5.2; 2^14 + 2048 in TLS 1.2, RFC 5246 section 6.2.3).
    """
    reply = _send_raw(server, _record(HANDSHAKE, bytes(length)))
    assert reply.alert() == (AlertLevel.fatal, AlertDescription.record_overflow)
    assert reply.closed
    assert_serving(server)


def _with_field_length(body: bytes, offset: int, size: int, delta: int) -> bytes:
    """C{body} with the C{size}-byte length field at C{offset} increased by C{delta}."""
    fmt = "!B" if size == 1 else "!H"
    (value,) = struct.unpack_from(fmt, body, offset)
    patched = bytearray(body)
    struct.pack_into(fmt, patched, offset, value + delta)
    return bytes(patched)


def _malformed_client_hellos() -> dict[str, bytes]:
    """
    ClientHello bodies whose inner length fields run past the end of the message,
    each inside a handshake header and record whose own lengths are right (so the
    server has the whole message and must decode it).
    """
    body = _client_hello_body()
    session_id = 2 + 32  # legacy_session_id length: after legacy_version and random
    suites = session_id + 1 + 32  # cipher_suites length
    compressions = suites + 2 + struct.unpack_from("!H", body, suites)[0]
    extensions = compressions + 1 + body[compressions]
    return {
        "session-id-length": _with_field_length(body, session_id, 1, 100),
        "cipher-suites-length": _with_field_length(body, suites, 2, 0x1000),
        "compression-methods-length": _with_field_length(body, compressions, 1, 50),
        "extensions-length": _with_field_length(body, extensions, 2, 10),
        "truncated-after-random": body[: 2 + 32],
    }


MALFORMED_CLIENT_HELLOS = _malformed_client_hellos()


@pytest.mark.parametrize(
    "body", MALFORMED_CLIENT_HELLOS.values(), ids=MALFORMED_CLIENT_HELLOS.keys()
)
def test_malformed_client_hello_decode_error(server: ServerProcess, body: bytes) -> None:
    """
    A ClientHello whose length fields do not match its contents gets a fatal
    decode_error alert (RFC 8446 section 6.2).
    """
    reply = _send_raw(server, _record(HANDSHAKE, _handshake_message(CLIENT_HELLO, body)))
    assert reply.alert() == (AlertLevel.fatal, AlertDescription.decode_error)
    assert reply.closed
    assert_serving(server)


def test_raw_client_hello_answered(server: ServerProcess) -> None:
    """The well-formed raw ClientHello the malformed ones derive from gets a ServerHello."""
    hello = _record(HANDSHAKE, _handshake_message(CLIENT_HELLO, _client_hello_body()))
    reply = _send_raw(server, hello, stop_after_server_hello=True)
    assert _server_hello_random(reply.data) != HELLO_RETRY_RANDOM


def test_tls13_client_hello_with_compression_illegal_parameter(
    server: ServerProcess,
) -> None:
    """
    A TLS 1.3 ClientHello offering DEFLATE besides null compression gets a fatal
    illegal_parameter alert (RFC 8446 section 4.1.2: it must offer exactly null).
    """
    body = _client_hello_body(compression_methods=b"\x01\x00")
    reply = _send_raw(server, _record(HANDSHAKE, _handshake_message(CLIENT_HELLO, body)))
    assert reply.alert() == (AlertLevel.fatal, AlertDescription.illegal_parameter)
    assert reply.closed
    assert_serving(server)


def test_tls12_compression_offer_not_taken(server: ServerProcess) -> None:
    """
    A TLS 1.2 ClientHello offering DEFLATE (RFC 3749) and null gets a ServerHello that
    selects null.
    """
    body = _client_hello_body(tls13=False, compression_methods=b"\x01\x00")
    reply = _send_raw(
        server,
        _record(HANDSHAKE, _handshake_message(CLIENT_HELLO, body)),
        stop_after_server_hello=True,
    )
    assert _server_hello_random(reply.data)[-8:] == DOWNGRADE_TLS12
    assert _server_hello_compression(reply.data) == 0
