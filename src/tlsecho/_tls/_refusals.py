"""
Why a handshake was refused, remembered per connection while OpenSSL runs it.

The detail of a failed certificate check is only visible inside the verify
callback, and the words of a refusal by one of tlsecho's own callbacks (an
unauthorized client certificate, a bad OCSP staple, a name mismatch) only
there: the connection creators record them here (L{record_verify_error},
L{record_refusal}), and L{tlsecho._tls._diagnosis.describe_failure} reads them back
when the connection fails.  Entries go with their connection (weak keys).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from cryptography import x509
from OpenSSL import SSL, crypto

from ._tlswords import verify_error_words

__all__ = [
    "record_refusal",
    "record_verify_error",
    "recorded_refusal",
    "register_trust",
    "reverify",
    "verify_error_text",
]

#: OpenSSL's names of verify error codes (X509_V_ERR_*), without the prefix:
#: the words for them are in L{tlsecho._tls._tlswords}.
_VERIFY_CODE_NAMES: dict[int, str] = {
    value: name.removeprefix("ERR_")
    for name, value in vars(SSL.X509VerificationCodes).items()
    if name.startswith("ERR_")
}

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
    return verify_error_words(_VERIFY_CODE_NAMES.get(code), code, _issuer_of(certificate))


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


def recorded_refusal(connection: SSL.Connection) -> str | None:
    """
    The first reason recorded for refusing C{connection}'s handshake, if any
    (L{record_refusal}, L{record_verify_error}).
    """
    return _refusals.get(connection)


def reverify(connection: SSL.Connection) -> str | None:
    """
    Verify the peer's chain of C{connection} again and say why it fails:
    L{None} if it does not, or if the trust it was verified with was not
    registered (L{register_trust}).
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
