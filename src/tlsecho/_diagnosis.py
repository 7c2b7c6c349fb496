"""
Turn what went wrong on a TLS connection into one line of words.

OpenSSL reports failures as terse reason codes, and the detail of a failed
certificate check is only visible inside the verify callback.  The connection
creators record that detail here per connection (L{record_verify_error}), and
L{describe_failure} combines it with the failure to say, for example,
C{"certificate verify failed: unknown CA (unable to get local issuer certificate)"}.
L{connection_summary} reports the negotiated version and cipher for logs.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Callable
from typing import Any

from cryptography import x509
from OpenSSL import SSL, crypto
from service_identity import VerificationError
from twisted.internet import error
from twisted.python.failure import Failure

from ._errors import PeerRejected
from ._identity import CertificateNames, describe_identity
from ._text import printable

#: Verify error codes (X509_V_ERR_*) that people meet, in words.
_VERIFY_ERRORS: dict[int, str] = {
    SSL.X509VerificationCodes.ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: (
        "unknown CA (unable to get local issuer certificate)"
    ),
    SSL.X509VerificationCodes.ERR_UNABLE_TO_GET_ISSUER_CERT: (
        "unknown CA (unable to get issuer certificate)"
    ),
    SSL.X509VerificationCodes.ERR_DEPTH_ZERO_SELF_SIGNED_CERT: (
        "self-signed certificate that is not trusted"
    ),
    SSL.X509VerificationCodes.ERR_SELF_SIGNED_CERT_IN_CHAIN: (
        "unknown CA (self-signed certificate in chain)"
    ),
    SSL.X509VerificationCodes.ERR_CERT_HAS_EXPIRED: "certificate has expired",
    SSL.X509VerificationCodes.ERR_CERT_NOT_YET_VALID: "certificate is not yet valid",
    SSL.X509VerificationCodes.ERR_CERT_REVOKED: "certificate revoked",
    SSL.X509VerificationCodes.ERR_INVALID_CA: "invalid CA certificate",
    SSL.X509VerificationCodes.ERR_INVALID_PURPOSE: (
        "certificate not allowed for this purpose (extended key usage)"
    ),
    SSL.X509VerificationCodes.ERR_CERT_SIGNATURE_FAILURE: "bad certificate signature",
    SSL.X509VerificationCodes.ERR_EXCLUDED_VIOLATION: (
        "name constraint violated (a name is in a subtree its CA excludes)"
    ),
    SSL.X509VerificationCodes.ERR_PERMITTED_VIOLATION: (
        "name constraint violated (a name is outside the subtrees its CA permits)"
    ),
    SSL.X509VerificationCodes.ERR_HOSTNAME_MISMATCH: "hostname mismatch",
    SSL.X509VerificationCodes.ERR_IP_ADDRESS_MISMATCH: "IP address mismatch",
}

_Codes = SSL.X509VerificationCodes

#: Verify error codes about the CRL of a certificate's issuer, in words that
#: name the CRL (OpenSSL reports them as the certificate's failure, and sends
#: alerts such as certificate_expired or unknown_ca for them).
_CRL_ERRORS: dict[int, str] = {
    _Codes.ERR_UNABLE_TO_GET_CRL: "no CRL for {issuer} (--crl)",
    _Codes.ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE: (
        "the CRL for {issuer} has an unreadable signature"
    ),
    _Codes.ERR_CRL_SIGNATURE_FAILURE: "the CRL for {issuer} has a bad signature",
    _Codes.ERR_CRL_NOT_YET_VALID: "the CRL for {issuer} is not valid yet",
    _Codes.ERR_CRL_HAS_EXPIRED: "the CRL for {issuer} has expired",
    _Codes.ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD: (
        "the CRL for {issuer} has a malformed last update"
    ),
    _Codes.ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD: (
        "the CRL for {issuer} has a malformed next update"
    ),
    _Codes.ERR_UNABLE_TO_GET_CRL_ISSUER: "the issuer of the CRL for {issuer} is unknown",
    _Codes.ERR_KEYUSAGE_NO_CRL_SIGN: (
        "the CA {issuer} may not sign CRLs (key usage), yet its CRL is needed"
    ),
    _Codes.ERR_UNHANDLED_CRITICAL_CRL_EXTENSION: (
        "the CRL for {issuer} has a critical extension OpenSSL cannot handle"
    ),
    _Codes.ERR_DIFFERENT_CRL_SCOPE: "the CRL for {issuer} has a different scope",
    _Codes.ERR_CRL_PATH_VALIDATION_ERROR: (
        "the CRL for {issuer} does not chain to a trusted CA"
    ),
}

#: Alerts received from the peer (RFC 8446 section 6.2), in words.  OpenSSL
#: names them "sslv3 alert X", "tlsv1 alert X", "tlsv13 alert X" or "tls alert X"
#: depending on its version and the alert.
_ALERTS: dict[str, str] = {
    "certificate required": "server requires a client certificate",
    "handshake failure": (
        "the peer refused the handshake (handshake failure: no common cipher "
        "or version, or a required client certificate missing)"
    ),
    "unknown ca": "the peer does not trust our certificate (unknown CA)",
    "bad certificate": "the peer rejected our certificate (bad certificate)",
    "certificate expired": "the peer says our certificate has expired",
    "certificate revoked": "the peer says our certificate is revoked",
    "certificate unknown": "the peer rejected our certificate (certificate unknown)",
    "unsupported certificate": "the peer rejected our certificate type",
    "access denied": "the peer denied access (access denied)",
    "protocol version": "protocol version: the peer refused our TLS versions",
    "insufficient security": "no cipher in common (insufficient security)",
    "no application protocol": "no application protocol in common (ALPN)",
    "unrecognized name": "the server does not serve that name (unrecognized name)",
    "decode error": "the peer could not decode our message (decode error)",
    "illegal parameter": "the peer rejected a handshake parameter (illegal parameter)",
    "decrypt error": "the peer could not verify our handshake (decrypt error)",
    "internal error": "the peer had an internal error",
}

#: OpenSSL reason strings for failures detected locally, in words.
_SSL_REASONS: dict[str, str] = {
    "peer did not return a certificate": "no client certificate",
    "unsupported protocol": "protocol version: no TLS version in common",
    "no protocols available": "protocol version: no TLS version enabled",
    "no shared cipher": "no cipher in common",
    "no suitable signature algorithm": "no cipher or signature algorithm in common",
    "wrong version number": "the peer does not speak TLS (wrong version number)",
    "http request": "the peer sent plain HTTP to a TLS port",
    "packet length too long": "the peer does not speak TLS (record too long)",
    "record layer failure": "the peer sent a malformed TLS record",
    "unexpected eof while reading": "connection closed without close_notify",
    "unknown protocol": "the peer does not speak TLS (unknown protocol)",
    "tlsv1 unrecognized name": "the server does not serve that name (unrecognized name)",
    "no application protocol in common (ALPN)": "no application protocol in common (ALPN)",
}

_ALERT_PREFIXES = (
    "sslv3 alert ",
    "tlsv1 alert ",
    "tlsv13 alert ",
    "tls alert ",
    "ssl/tls alert ",
)


def _reason_text(reason: str) -> str | None:
    """
    Words for one OpenSSL reason string, or L{None} if it is not a known one.
    """
    if reason in _SSL_REASONS:
        return _SSL_REASONS[reason]
    for prefix in _ALERT_PREFIXES:
        if reason.startswith(prefix):
            alert = reason.removeprefix(prefix)
            return _ALERTS.get(alert, f"the peer sent the alert {alert!r}")
    return None


_refusals: weakref.WeakKeyDictionary[SSL.Connection, str] = weakref.WeakKeyDictionary()
_trust_stores: weakref.WeakKeyDictionary[SSL.Connection, Callable[[], crypto.X509Store]] = (
    weakref.WeakKeyDictionary()
)


def verify_error_text(code: int, certificate: object = None) -> str:
    """
    The words for an X509_V_ERR_* code.

    @param certificate: The certificate being checked (C{cryptography} or
        pyOpenSSL), if known: a CRL error then names the CRL's issuer.
    """
    if code in _CRL_ERRORS:
        return _CRL_ERRORS[code].format(issuer=_issuer_of(certificate))
    if code in _VERIFY_ERRORS:
        return _VERIFY_ERRORS[code]
    for name, value in vars(SSL.X509VerificationCodes).items():
        if value == code and name.startswith("ERR_"):
            return name.removeprefix("ERR_").lower().replace("_", " ")
    return f"verify error {code}"


def _issuer_of(certificate: object) -> str:
    """
    The issuer of C{certificate} as RFC 4514 text, whatever it holds; total.
    """
    try:
        if isinstance(certificate, crypto.X509):
            certificate = certificate.to_cryptography()
        if isinstance(certificate, x509.Certificate):
            return certificate.issuer.rfc4514_string() or "(empty issuer)"
    except Exception:
        return "(an unreadable issuer)"
    return "the certificate's issuer"


def record_verify_error(
    connection: SSL.Connection, code: int, depth: int, certificate: object = None
) -> None:
    """
    Remember the first certificate verification error seen on C{connection}.

    @param certificate: The certificate that failed, to name a CRL's issuer.
    """
    where = "" if depth == 0 else f" at chain depth {depth}"
    record_refusal(
        connection,
        "certificate verify failed: " + verify_error_text(code, certificate) + where,
    )


def record_refusal(connection: SSL.Connection, reason: str) -> None:
    """
    Remember why a callback of ours made OpenSSL fail C{connection}'s handshake
    (the first reason only): a verify error, an unauthorized client
    certificate, a bad OCSP staple.
    """
    _refusals.setdefault(connection, reason)


def register_trust(
    connection: SSL.Connection, make_store: Callable[[], crypto.X509Store]
) -> None:
    """
    Remember how C{connection} verifies its peer, so that a failed verification
    can be explained afterwards by verifying the peer's chain again.

    This is the fallback for a failed verification whose callback recorded no
    reason (L{record_verify_error}).
    """
    _trust_stores[connection] = make_store


def _reverify(connection: SSL.Connection) -> str | None:
    """
    Verify the peer's chain of C{connection} again and say why it fails.
    """
    make_store = _trust_stores.get(connection)
    chain = connection.get_peer_cert_chain(as_cryptography=True)
    if make_store is None or not chain:
        return None
    leaf, *intermediates = (crypto.X509.from_cryptography(c) for c in chain)
    try:
        crypto.X509StoreContext(make_store(), leaf, intermediates).verify_certificate()
    except crypto.X509StoreContextError as e:
        return verify_error_text(e.errors[0], e.certificate) + (
            f" at chain depth {e.errors[1]}" if e.errors[1] else ""
        )
    return None


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
        refusal = _refusals.get(connection) if connection is not None else None
        if refusal is not None:
            return refusal
        reasons = _ssl_reasons(value)
        if "certificate verify failed" in reasons:
            detail = _reverify(connection) if connection is not None else None
            return "certificate verify failed" + (f": {detail}" if detail else "")
        for text in reasons:
            words = _reason_text(text)
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


def connection_summary(transport: object) -> dict[str, Any]:
    """
    The negotiated TLS version, cipher and server name of a connection, for
    logs; the server name (chosen by the client) escaped and capped.  Never
    raises: what cannot be read is L{None}.
    """
    connection = _tls_connection(transport)
    summary: dict[str, Any] = {"tls_version": None, "cipher": None, "sni": None}
    if connection is None:
        return summary
    for key, read in (
        ("tls_version", connection.get_protocol_version_name),
        ("cipher", connection.get_cipher_name),
        ("sni", connection.get_servername),
    ):
        with contextlib.suppress(Exception):  # unknown stays None
            value = read()
            summary[key] = printable(value) if value else None
    return summary
