"""
Revocation data and sessions an attacker hopes tlsecho waves through: a delta
CRL that revokes a certificate the base CRL does not (OpenSSL ignores deltas
unless asked), CRLs that cannot work (expired, not yet valid, signed by a CA
that is not trusted), a server stapling an OCSP response that says "revoked",
"unknown" or is about another certificate, and sessions carried to where they
do not belong (a TLS 1.2 session resumed under another SNI name, or on an
instance with other admission rules that shares the ticket keys).  tlsecho
promises: revocation data is applied or refused at start, never loaded and
ignored; a CRL that cannot work is warned about at start and named as the
reason of each refusal; a client that requires a staple accepts only a good
one about the server's own certificate; and a session resumes only under the
name and the admission policy it was made with.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import socket
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from OpenSSL import SSL
from OpenSSL._util import lib

HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def authority_key(authority: trustme.CA) -> ec.EllipticCurvePrivateKey:
    """The private key of a trustme CA."""
    key = serialization.load_pem_private_key(authority.private_key_pem.bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def authority_certificate(authority: trustme.CA) -> x509.Certificate:
    """The certificate of a trustme CA."""
    return x509.load_pem_x509_certificate(authority.cert_pem.bytes())


def leaf_of(path: Path) -> x509.Certificate:
    """The first certificate of a PEM chain file."""
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def crl(
    authority: trustme.CA,
    revoked: Sequence[x509.Certificate] = (),
    *,
    last_update: datetime.timedelta = -HOUR,
    next_update: datetime.timedelta = 7 * DAY,
    number: int = 1,
    delta_of: int | None = None,
    signer: trustme.CA | None = None,
) -> bytes:
    """
    A PEM CRL naming ``authority`` as its issuer, revoking ``revoked``.

    @param delta_of: Make it a delta CRL on top of the base CRL with this number.
    @param signer: Sign it with another CA's key (a forged or misdirected CRL).
    """
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority_certificate(authority).subject)
        .last_update(now + last_update)
        .next_update(now + next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    if delta_of is not None:
        builder = builder.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
    for certificate in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(certificate.serial_number)
            .revocation_date(now - HOUR)
            .build()
        )
    key = authority_key(signer or authority)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def ocsp_response(
    about: x509.Certificate,
    issuer: trustme.CA,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
) -> bytes:
    """A current DER OCSP response about ``about``, signed by ``issuer``."""
    now = _now()
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=about,
        issuer=authority_certificate(issuer),
        algorithm=hashes.SHA1(),
        cert_status=status,
        this_update=now - HOUR,
        next_update=now + DAY,
        revocation_time=now - DAY if status is ocsp.OCSPCertStatus.REVOKED else None,
        revocation_reason=None,
    )
    builder = builder.responder_id(
        ocsp.OCSPResponderEncoding.HASH, authority_certificate(issuer)
    )
    response = builder.sign(authority_key(issuer), hashes.SHA256())
    return response.public_bytes(serialization.Encoding.DER)


def _bound(raw: socket.socket, seconds: int = 10) -> None:
    """
    Make ``raw`` blocking (pyOpenSSL turns a socket timeout into WantReadError)
    but bound every read and write to ``seconds`` in the kernel instead.
    """
    raw.settimeout(None)
    limit = struct.pack("ll", seconds, 0)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)


@contextlib.contextmanager
def stapling_server(cert: Path, key: Path, staple: bytes) -> Iterator[int]:
    """
    A TLS echo server on loopback that staples ``staple``, whatever it says,
    to every client that asks: a misconfigured or hostile server (tlsecho's own
    server checks its --ocsp-response at start).  Yields its port.
    """
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.use_certificate_chain_file(str(cert))
    context.use_privatekey_file(str(key))
    context.set_ocsp_server_callback(lambda connection, data: staple)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            _bound(raw)
            connection = SSL.Connection(context, raw)
            connection.set_accept_state()
            with contextlib.suppress(SSL.Error, OSError):
                connection.do_handshake()
                connection.sendall(connection.recv(65536))
                connection.shutdown()
            raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(10)
        listener.close()


@dataclass(frozen=True)
class Visit:
    """One TLS connection of a session-keeping client."""

    resumed: bool
    session: SSL.Session | None
    #: The subject of the server's certificate (the session's, when resumed).
    served: str | None
    #: The bytes echoed, or the error that ended the connection.
    echoed: bytes | str


@functools.cache
def _client_context(
    ca: Path, max_tls: int, cert: Path | None, key: Path | None
) -> SSL.Context:
    # pyOpenSSL offers a session only on the context that made it.
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_max_proto_version(max_tls)
    context.load_verify_locations(str(ca))
    context.set_verify(SSL.VERIFY_PEER)
    if cert is not None:
        context.use_certificate_chain_file(str(cert))
        context.use_privatekey_file(str(key or cert))
    return context


def visit(
    port: int,
    ca: Path,
    servername: bytes | None = b"localhost",
    session: SSL.Session | None = None,
    *,
    max_tls: int = SSL.TLS1_3_VERSION,
    cert: Path | None = None,
    key: Path | None = None,
) -> Visit:
    """
    Connect to ``127.0.0.1:port`` with pyOpenSSL, offering ``session`` (a
    session made elsewhere, under another name, or under other rules) and
    sending ``servername`` as SNI, echo one line and keep the session.
    """
    context = _client_context(ca, max_tls, cert, key)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        _bound(raw)
        connection = SSL.Connection(context, raw)
        connection.set_connect_state()
        if servername is not None:
            connection.set_tlsext_host_name(servername)
        if session is not None:
            connection.set_session(session)
        served = None
        try:
            connection.do_handshake()
            peer = connection.get_peer_certificate(as_cryptography=True)
            if peer is not None:
                served = peer.subject.rfc4514_string()
            connection.sendall(b"resume?\n")
            received = b""
            while len(received) < 8:
                chunk = connection.recv(100)
                if not chunk:
                    break
                received += chunk
            echoed: bytes | str = received
        except (SSL.Error, OSError) as e:
            echoed = f"{type(e).__name__}: {e}"
        # Close cleanly: OpenSSL marks the session of a connection freed
        # without close_notify as not resumable.
        connection.set_shutdown(SSL.SENT_SHUTDOWN)
        resumed = bool(lib.SSL_session_reused(connection._ssl))  # type: ignore[attr-defined]
        return Visit(resumed, connection.get_session(), served, echoed)
