"""
Server Name Indication on the server: which certificate a client gets for the
name it asks for, and the refusal of names we do not serve (C{--sni-strict}).

The server's connection creator (L{tlsecho._tls._server_creator}) makes one context per
C{--sni} certificate and hands OpenSSL L{select_context} as its SNI callback.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from OpenSSL import SSL
from twisted.logger import Logger

from .._settings._identity import CertificateNames, describe_identity
from .._settings._text import printable
from .._settings._tls_settings import SNICertificate
from ._refusals import record_refusal

__all__ = [
    "UnrecognizedName",
    "select_context",
    "serves",
    "warn_if_default_serves_no_name",
]

_log = Logger()


class UnrecognizedName(Exception):
    """
    Strict SNI: the client asked for a name we have no certificate for.

    Raised from the SNI callback, it makes OpenSSL send unrecognized_name.
    """


def select_context(
    connection: SSL.Connection,
    by_name: Sequence[tuple[SNICertificate, SSL.Context]],
    default: x509.Certificate,
    strict: bool,
) -> None:
    """
    Switch C{connection} to the context of the certificate for the name its
    client requested; keep the default for no name (an IP address) or, unless
    C{strict}, an unknown one.

    @param by_name: Each C{--sni} certificate with its context, in order.
    @param default: The default certificate (C{--cert}): under C{strict} it
        serves the names it is valid for.
    @raise UnrecognizedName: under C{strict}, for a name no certificate
        serves (OpenSSL then sends unrecognized_name).
    """
    raw = connection.get_servername()
    if raw is None:
        return  # no SNI (an IP address): the default certificate
    name = raw.decode("ascii", "replace")
    for entry, context in by_name:
        if entry.matches(name):
            connection.set_context(context)
            return
    if strict and not serves(default, name):
        record_refusal(connection, f"unrecognized name '{printable(raw)}' (--sni-strict)")
        raise UnrecognizedName(name)


def serves(certificate: x509.Certificate, name: str) -> bool:
    """
    Whether C{certificate} is valid for the host C{name}.
    """
    from service_identity.cryptography import verify_certificate_hostname
    from service_identity.exceptions import VerificationError

    try:
        verify_certificate_hostname(certificate, name)
    except VerificationError:
        return False
    except Exception:
        # A certificate without usable names (no SAN: CertificateError), or a
        # name service-identity cannot use: serves nothing, fail closed.  This
        # runs for every handshake; the certificate was described once at
        # start (warn_if_default_serves_no_name).
        return False
    return True


def warn_if_default_serves_no_name(certificate: x509.Certificate) -> None:
    """
    Under --sni-strict, say once (at start or reload) that the default
    certificate is valid for no SNI name, rather than fail on every handshake.
    """
    names = CertificateNames.of(certificate)
    if names.unreadable:
        why = f"its {' and '.join(names.unreadable)} cannot be read"
    elif not names.dns_names and not names.ip_addresses:
        why = "it has no subjectAltName (no DNS name or IP address)"
    else:
        return
    _log.warn(
        "--sni-strict: the default certificate (--cert, {subject}) is valid for no "
        "name, as {why}: every client sending an SNI name that no --sni "
        "certificate serves is refused",
        subject=describe_identity(certificate, with_pin=False),
        why=why,
        event="config.warning",
    )
