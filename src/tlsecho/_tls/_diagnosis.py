"""
Turn what went wrong on a TLS connection into one line of words.

OpenSSL reports failures as terse reason codes, and the detail of a failed
certificate check is only visible inside the verify callback.  The connection
creators record that detail per connection (L{tlsecho._tls._refusals}), and
L{describe_failure} combines it with the failure to say, for example,
C{"certificate verify failed: unknown CA (unable to get local issuer certificate)"}.
L{connection_summary} reports the negotiated version, cipher and group for logs.
The words themselves are in L{tlsecho._tls._tlswords}.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import error
from twisted.python.failure import Failure

from .._settings._errors import PeerRejected
from .._settings._identity import CertificateNames, describe_identity
from .._settings._profiles import group_label
from .._settings._text import printable
from ._refusals import recorded_refusal, reverify
from ._tlswords import reason_words


def _tls_connection(transport: object) -> SSL.Connection | None:
    getHandle = getattr(transport, "getHandle", None)
    if getHandle is None:
        return None
    try:
        handle = getHandle()
    except Exception:
        return None
    return handle if isinstance(handle, SSL.Connection) else None


def is_tls_transport(transport: object) -> bool:
    """
    Whether C{transport} is a TLS transport (one with an OpenSSL connection).
    """
    return _tls_connection(transport) is not None


def _ssl_reasons(value: SSL.Error) -> list[str]:
    reasons = []
    for entry in value.args[0] if value.args else []:
        if isinstance(entry, tuple) and len(entry) == 3:
            reasons.append(str(entry[2]))
    return reasons


def _mismatched_name(error: object) -> str:
    """
    The name or address a service_identity mismatch error was about, quoted.
    """
    identity = getattr(error, "mismatched_id", None)
    for attribute in ("hostname", "ip", "uri"):
        value = getattr(identity, attribute, None)
        if value is not None:
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
            return repr(str(text))
    return repr(str(error))


def _hostname_mismatch(value: VerificationError, transport: object) -> str:
    wanted = ", ".join(_mismatched_name(e) for e in value.errors)
    names = certificate_names(transport)
    listed = f" (it is for {', '.join(names)})" if names else ""
    return f"certificate verify failed: hostname mismatch: not valid for {wanted}{listed}"


def certificate_names(transport: object) -> list[str]:
    """
    The DNS names and IP addresses the peer's certificate is valid for.
    """
    connection = _tls_connection(transport)
    if connection is None:
        return []
    certificate = connection.get_peer_certificate(as_cryptography=True)
    if certificate is None:
        # After a failed verification only the chain is kept (leaf first on
        # the client side).
        chain = connection.get_peer_cert_chain(as_cryptography=True)
        if not chain:
            return []
        certificate = chain[0]

    return CertificateNames.of(certificate).hosts()


def is_tls_failure(reason: Failure) -> bool:
    """
    Whether C{reason} is a TLS-level failure (handshake, alert, certificate).
    """
    return reason.check(SSL.Error, VerificationError, PeerRejected) is not None


#: How long a reason may be in a log line (it may quote several peer names,
#: each already capped).
MAX_REASON = 1000


def describe_failure(
    reason: Failure, transport: object = None, established: bool = False
) -> str:
    """
    One line saying why a connection failed or ended.

    Never raises, and the line is escaped and capped (peer-chosen names may be
    part of it).

    @param reason: The failure given to C{connectionLost} or an errback.
    @param transport: The TLS transport, to find the recorded verify error and
        the peer's certificate names; optional.
    @param established: Whether the TLS handshake had completed before: a
        TLS 1.2 handshake failure after that is a refused renegotiation.
    """
    try:
        text = _describe_failure(reason, transport, established)
    except Exception:
        text = "connection failed: " + _type_name(reason.value)
    return printable(text, MAX_REASON)


def _type_name(value: object) -> str:
    return type(value).__name__


def _renegotiation_refused(value: SSL.Error, transport: object) -> bool:
    """
    Whether C{value}, on a TLS 1.2 connection whose handshake had completed,
    is a refused renegotiation.

    tlsecho never renegotiates and OpenSSL refuses a client's request (it
    answers with the no_renegotiation warning, which OpenSSL clients follow
    with a fatal handshake_failure alert).  After the handshake the only
    handshake TLS 1.2 has is a renegotiation, so a handshake failure then can
    only be one.
    """
    connection = _tls_connection(transport)
    if connection is None or connection.get_protocol_version_name() != "TLSv1.2":
        return False
    return any(
        "renegotiat" in text or text.endswith("alert handshake failure")
        for text in _ssl_reasons(value)
    )


def _describe_failure(reason: Failure, transport: object, established: bool) -> str:
    value = reason.value
    if (
        established
        and isinstance(value, SSL.Error)
        and _renegotiation_refused(value, transport)
    ):
        return "renegotiation refused (the peer asked to renegotiate TLS 1.2)"
    if isinstance(value, VerificationError):
        return _hostname_mismatch(value, transport)
    if isinstance(value, PeerRejected):
        return value.reason
    if isinstance(value, SSL.Error):
        connection = _tls_connection(transport)
        refusal = recorded_refusal(connection) if connection is not None else None
        if refusal is not None:
            return refusal
        reasons = _ssl_reasons(value)
        if "certificate verify failed" in reasons:
            detail = reverify(connection) if connection is not None else None
            return "certificate verify failed" + (f": {detail}" if detail else "")
        for text in reasons:
            words = reason_words(text)
            if words is not None:
                return words
        if reasons:
            return "TLS error: " + "; ".join(reasons)
        text = value.args[0] if value.args and isinstance(value.args[0], str) else ""
        return f"TLS error: {text}" if text else "TLS error (OpenSSL gave no reason)"
    if isinstance(value, error.ConnectionRefusedError):
        return "connection refused"
    if isinstance(value, error.DNSLookupError):
        return "host name not found"
    if isinstance(value, (error.TimeoutError, TimeoutError)):
        return "timed out"
    if isinstance(value, error.ConnectionDone):
        return "closed"
    if isinstance(value, error.ConnectionLost):
        return "connection lost"
    if isinstance(value, error.NoRouteError):
        return "no route to host"
    if isinstance(value, error.ConnectError) and value.osError is not None:
        if isinstance(value.osError, int):
            # An errno (a UNIX socket that is missing, say): say it in words.
            return os.strerror(value.osError).lower()
        return str(value.osError)
    return str(value) or type(value).__name__


def client_identity(transport: object) -> str | None:
    """
    Who the peer's certificate says it is (subject CN and SANs, escaped and
    capped), if it sent one.  Never raises.
    """
    connection = _tls_connection(transport)
    if connection is None:
        return None
    try:
        certificate = connection.get_peer_certificate(as_cryptography=True)
    except Exception:
        return "(unreadable certificate)"
    if certificate is None:
        return None
    return printable(describe_identity(certificate, with_pin=False))


def _group_name(connection: SSL.Connection) -> str | None:
    """
    The key exchange group negotiated on C{connection}, spelt as the profile
    spells it (C{prime256v1}, where OpenSSL may say C{secp256r1}); L{None}
    without one (no handshake yet, or TLS 1.2 RSA key exchange).
    """
    name = connection.get_group_name()
    label = group_label(name)
    return name if label in ("other", "none") else label


def connection_summary(transport: object) -> dict[str, Any]:
    """
    The negotiated TLS version, cipher, key exchange group and server name of
    a connection, for logs; the server name (chosen by the client) escaped and
    capped.  Never raises: what cannot be read is L{None}.
    """
    connection = _tls_connection(transport)
    summary: dict[str, Any] = {
        "tls_version": None,
        "cipher": None,
        "group": None,
        "sni": None,
    }
    if connection is None:
        return summary
    for key, read in (
        ("tls_version", connection.get_protocol_version_name),
        ("cipher", connection.get_cipher_name),
        ("group", lambda: _group_name(connection)),
        ("sni", connection.get_servername),
    ):
        with contextlib.suppress(Exception):  # unknown stays None
            value = read()
            summary[key] = printable(value) if value else None
    return summary
