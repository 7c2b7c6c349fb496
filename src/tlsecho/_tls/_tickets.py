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
C{SSL_CTX_set_tlsext_ticket_keys}, then reads them back.  pyOpenSSL (26.4) has
no call for it: L{tlsecho._tls._openssl_internals} reaches it below the API.  Where
that is impossible (a stripped build, another layout) the option fails with a
one-line error naming the reason.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

from .._settings._errors import ConfigurationError
from .._settings._ticket_keys import OPTION
from ._openssl_internals import (
    Unavailable,
    set_session_context_on_client_hello,
    set_ticket_keys,
)

__all__ = [
    "bind_sessions_to_server_name",
    "client_hello_server_name",
    "install_ticket_keys",
    "session_id_context",
]


def install_ticket_keys(context: SSL.Context, keys: bytes) -> None:
    """
    Make C{context} encrypt and decrypt session tickets with C{keys}.

    @param keys: From L{tlsecho._settings._ticket_keys.load_ticket_keys}.
    @raise ConfigurationError: if OpenSSL does not take them.
    """
    if not set_ticket_keys(context, keys):
        raise ConfigurationError(OPTION, "OpenSSL did not take the session-ticket keys")


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


def bind_sessions_to_server_name(context: SSL.Context, policy: bytes) -> None:
    """
    Make a server context resume a session only under the SNI name it was
    made with (RFC 6066 section 3), in TLS 1.2 and 1.3 alike.

    OpenSSL resumes a TLS 1.2 session whatever name the client now sends, and
    then reports (and serves) the session's original name; in TLS 1.3 it
    resumes too, under the new name.  OpenSSL only resumes a session whose
    session ID context is the connection's own, and it looks the session up
    before the SNI callback runs.  So, as soon as a ClientHello is read (a
    message callback, which runs before the ClientHello is processed), each
    connection gets its own context: C{policy} (from L{session_id_context})
    and the name the client sent.  A session made under another name, or
    under another policy, is then not found: a full handshake follows, with
    the certificate for the name sent.

    Where the per-connection context cannot be set (see
    L{tlsecho._settings._ticket_keys.load_ticket_keys}), sessions are not resumed at all:
    fail closed.
    """

    def choose(message: bytes) -> bytes:
        try:
            return session_context_for_name(policy, client_hello_server_name(message))
        except Exception:
            # Unreadable: a context no session has, so nothing resumes.
            return os.urandom(32)

    try:
        set_session_context_on_client_hello(context, choose)
    except Unavailable:
        context.set_options(SSL.OP_NO_TICKET)
        context.set_session_cache_mode(SSL.SESS_CACHE_OFF)


_CLIENT_HELLO = 1


def session_context_for_name(policy: bytes, name: bytes | None) -> bytes:
    """
    The session ID context of a connection under C{policy} whose client sent
    the SNI name C{name} (L{None}: no SNI); 32 bytes.  Names differing only in
    ASCII case are the same name.
    """
    digest = hashlib.sha256(b"tlsecho session name 1\0" + policy)
    digest.update(b"\0name\0" + name.lower() if name is not None else b"\0no name")
    return digest.digest()


def client_hello_server_name(message: bytes) -> bytes | None:
    """
    The host name of the server_name extension (RFC 6066 section 3) of a
    ClientHello handshake message (with its 4-byte header), or L{None} if it
    has none.

    @raise ValueError: if the message is not a well-formed ClientHello.
    """

    def take(data: bytes, at: int, size: int) -> bytes:
        if size < 0 or at + size > len(data):
            raise ValueError("truncated ClientHello")
        return data[at : at + size]

    def number(data: bytes, at: int, size: int) -> int:
        return int.from_bytes(take(data, at, size), "big")

    if number(message, 0, 1) != _CLIENT_HELLO:
        raise ValueError("not a ClientHello")
    body = take(message, 4, number(message, 1, 3))
    at = 2 + 32  # legacy_version, random
    at += 1 + number(body, at, 1)  # legacy_session_id
    at += 2 + number(body, at, 2)  # cipher_suites
    at += 1 + number(body, at, 1)  # legacy_compression_methods
    if at == len(body):
        return None  # no extensions at all
    extensions = take(body, at + 2, number(body, at, 2))
    at = 0
    while at < len(extensions):
        kind, size = number(extensions, at, 2), number(extensions, at + 2, 2)
        data = take(extensions, at + 4, size)
        at += 4 + size
        if kind != 0:  # server_name
            continue
        names = take(data, 2, number(data, 0, 2))
        position = 0
        while position < len(names):
            name_type = number(names, position, 1)
            name = take(names, position + 3, number(names, position + 1, 2))
            position += 3 + len(name)
            if name_type == 0:  # host_name
                return name
        return None
    return None
