"""
A certificate chain in words, for C{tlsecho client --show-certs}: like
C{openssl s_client -showcerts}, but readable.

For each certificate the server sent: its subject, issuer, subject alternative
names, validity (and days left), key type and size, and SPKI pin (the SHA-256 in
base64, as C{--pin-spki} takes it); then the CA the chain was verified to, or
that it was not verified.  Every piece of certificate text is escaped and
length-capped (L{printable}): whoever asked for a certificate chose its names.
Reading a certificate never raises: what cannot be read says so.

This module imports nothing from Twisted or OpenSSL.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from ._identity import CertificateNames, spki_sha256
from ._text import printable

__all__ = ["chain_lines", "key_description"]

#: The NIST names of the curves TLS uses.
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def key_description(certificate: x509.Certificate) -> str:
    """
    The type and size of C{certificate}'s public key: C{RSA 2048},
    C{EC P-256}, C{Ed25519}.
    """
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {_CURVES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__


def _name(name: Callable[[], x509.Name]) -> str:
    try:
        return printable(name().rfc4514_string()) or "(empty)"
    except Exception:
        return "(unreadable)"


def _read(read: Callable[[], str]) -> str:
    try:
        return read()
    except Exception:
        return "(unreadable)"


def _validity(certificate: x509.Certificate, now: datetime.datetime) -> str:
    after = certificate.not_valid_after_utc
    before = certificate.not_valid_before_utc
    if now > after:
        left = f"expired {(now - after).days} days ago"
    elif now < before:
        left = "not valid yet"
    else:
        left = f"{(after - now).days} days left"
    return f"{before:%Y-%m-%d %H:%M:%S} to {after:%Y-%m-%d %H:%M:%S} UTC ({left})"


def _certificate_lines(certificate: x509.Certificate, now: datetime.datetime) -> list[str]:
    names = CertificateNames.of(certificate)
    alt = names.alt_names() + [f"({part} unreadable)" for part in names.unreadable]
    pin = _read(lambda: base64.b64encode(spki_sha256(certificate)).decode())
    return [
        f"    subject:  {_name(lambda: certificate.subject)}",
        f"    issuer:   {_name(lambda: certificate.issuer)}",
        f"    SANs:     {printable(', '.join(alt), 1000) if alt else '(none)'}",
        f"    valid:    {_read(lambda: _validity(certificate, now))}",
        f"    key:      {_read(lambda: key_description(certificate))}",
        f"    SPKI pin: {pin}",
    ]


def chain_lines(
    sent: Sequence[x509.Certificate],
    verified: Sequence[x509.Certificate] | None,
    now: datetime.datetime | None = None,
) -> list[str]:
    """
    The lines that describe the chain a server sent.

    @param sent: The certificates as the server sent them, leaf first.
    @param verified: The chain OpenSSL verified (leaf to trusted root), or
        L{None} when it was not verified.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    count = len(sent)
    lines = [f"the server sent {count} certificate{'s' if count != 1 else ''}:"]
    for position, certificate in enumerate(sent, start=1):
        role = "server" if position == 1 else "intermediate or CA"
        lines.append(f"  certificate {position} ({role}):")
        lines.extend(_certificate_lines(certificate, now))
    if verified:
        root = verified[-1]
        where = "sent by the server" if root in sent else "from the trust store"
        lines.append(f"  chained to: {_name(lambda: root.subject)} ({where})")
    else:
        lines.append("  chained to: not verified (--verify none)")
    return lines
