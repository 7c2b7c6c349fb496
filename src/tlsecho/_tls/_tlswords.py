"""
TLS failures in words: the alerts a peer sends, OpenSSL's reason strings and
certificate verify errors, each turned into a short phrase for one log line.

Pure text: this module imports nothing from Twisted, OpenSSL or
C{cryptography}.  L{tlsecho._tls._diagnosis} and L{tlsecho._tls._refusals} find the
reasons and codes on a connection and ask here for the words; verify errors
are named as OpenSSL names them (C{X509_V_ERR_CERT_HAS_EXPIRED} is
C{"CERT_HAS_EXPIRED"}).
"""

from __future__ import annotations

__all__ = ["reason_words", "verify_error_words"]

#: Verify errors (X509_V_ERR_*) that people meet, in words.
_VERIFY_ERRORS: dict[str, str] = {
    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY": (
        "unknown CA (unable to get local issuer certificate)"
    ),
    "UNABLE_TO_GET_ISSUER_CERT": "unknown CA (unable to get issuer certificate)",
    "DEPTH_ZERO_SELF_SIGNED_CERT": "self-signed certificate that is not trusted",
    "SELF_SIGNED_CERT_IN_CHAIN": "unknown CA (self-signed certificate in chain)",
    "CERT_HAS_EXPIRED": "certificate has expired",
    "CERT_NOT_YET_VALID": "certificate is not yet valid",
    "CERT_REVOKED": "certificate revoked",
    "INVALID_CA": "invalid CA certificate",
    "INVALID_PURPOSE": "certificate not allowed for this purpose (extended key usage)",
    "CERT_SIGNATURE_FAILURE": "bad certificate signature",
    "EXCLUDED_VIOLATION": (
        "name constraint violated (a name is in a subtree its CA excludes)"
    ),
    "PERMITTED_VIOLATION": (
        "name constraint violated (a name is outside the subtrees its CA permits)"
    ),
    "HOSTNAME_MISMATCH": "hostname mismatch",
    "IP_ADDRESS_MISMATCH": "IP address mismatch",
}

#: Verify errors about the CRL of a certificate's issuer, in words that name
#: the CRL (OpenSSL reports them as the certificate's failure, and sends
#: alerts such as certificate_expired or unknown_ca for them).
_CRL_ERRORS: dict[str, str] = {
    "UNABLE_TO_GET_CRL": "no CRL for {issuer} (--crl)",
    "UNABLE_TO_DECRYPT_CRL_SIGNATURE": "the CRL for {issuer} has an unreadable signature",
    "CRL_SIGNATURE_FAILURE": "the CRL for {issuer} has a bad signature",
    "CRL_NOT_YET_VALID": "the CRL for {issuer} is not valid yet",
    "CRL_HAS_EXPIRED": "the CRL for {issuer} has expired",
    "ERROR_IN_CRL_LAST_UPDATE_FIELD": "the CRL for {issuer} has a malformed last update",
    "ERROR_IN_CRL_NEXT_UPDATE_FIELD": "the CRL for {issuer} has a malformed next update",
    "UNABLE_TO_GET_CRL_ISSUER": "the issuer of the CRL for {issuer} is unknown",
    "KEYUSAGE_NO_CRL_SIGN": (
        "the CA {issuer} may not sign CRLs (key usage), yet its CRL is needed"
    ),
    "UNHANDLED_CRITICAL_CRL_EXTENSION": (
        "the CRL for {issuer} has a critical extension OpenSSL cannot handle"
    ),
    "DIFFERENT_CRL_SCOPE": "the CRL for {issuer} has a different scope",
    "CRL_PATH_VALIDATION_ERROR": "the CRL for {issuer} does not chain to a trusted CA",
}

#: What a client that demanded an OCSP staple says when it got none it accepts.
_NO_STAPLE = (
    "the client refused our certificate: it requires an OCSP staple and we sent "
    "none it accepts (give --ocsp-response; bad certificate status response)"
)

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
    "bad certificate status response": _NO_STAPLE,
}

#: OpenSSL reason strings for failures detected locally, in words.
_SSL_REASONS: dict[str, str] = {
    "peer did not return a certificate": "no client certificate",
    "unsupported protocol": "protocol version: no TLS version in common",
    "no protocols available": "protocol version: no TLS version enabled",
    "no shared cipher": "no cipher in common",
    # TLS 1.3: no key share the server may use, and no group to retry with.
    "no suitable key share": "no key exchange group in common",
    "no suitable signature algorithm": "no cipher or signature algorithm in common",
    "wrong version number": "the peer does not speak TLS (wrong version number)",
    "http request": "the peer sent plain HTTP to a TLS port",
    "packet length too long": "the peer does not speak TLS (record too long)",
    "record layer failure": "the peer sent a malformed TLS record",
    "unexpected eof while reading": "connection closed without close_notify",
    "unknown protocol": "the peer does not speak TLS (unknown protocol)",
    "tlsv1 unrecognized name": "the server does not serve that name (unrecognized name)",
    # The alert a client sends when it demands an OCSP staple and gets none
    # (or a bad one); OpenSSL names it without "alert".
    "tlsv1 bad certificate status response": _NO_STAPLE,
    "no application protocol in common (ALPN)": "no application protocol in common (ALPN)",
}

_ALERT_PREFIXES = (
    "sslv3 alert ",
    "tlsv1 alert ",
    "tlsv13 alert ",
    "tls alert ",
    "ssl/tls alert ",
)


def reason_words(reason: str) -> str | None:
    """
    Words for one OpenSSL reason string, or L{None} if it is not a known one.

    An alert from the peer is known by its prefix: one with no words of its
    own is named as the alert it is.
    """
    if reason in _SSL_REASONS:
        return _SSL_REASONS[reason]
    for prefix in _ALERT_PREFIXES:
        if reason.startswith(prefix):
            alert = reason.removeprefix(prefix)
            return _ALERTS.get(alert, f"the peer sent the alert {alert!r}")
    return None


def verify_error_words(
    name: str | None, code: int, issuer: str = "the certificate's issuer"
) -> str:
    """
    The words for a certificate verify error.

    @param name: OpenSSL's name for the error without its C{X509_V_ERR_}
        prefix (C{"CERT_HAS_EXPIRED"}), or L{None} if the code has no known
        name.  A name with no words of its own is spelt out in lower case.
    @param code: The error's number, given when there is no name.
    @param issuer: The issuer of the certificate being checked: a CRL error
        names the CRL by it.
    """
    if name is None:
        return f"verify error {code}"
    if name in _CRL_ERRORS:
        return _CRL_ERRORS[name].format(issuer=issuer)
    if name in _VERIFY_ERRORS:
        return _VERIFY_ERRORS[name]
    return name.lower().replace("_", " ")
