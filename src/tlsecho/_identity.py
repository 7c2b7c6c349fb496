"""
Certificate identities: who a certificate names, its public-key pin, and whether
it matches an allow list (server-side client authorization) or a pin set
(client-side server pinning).

An SPKI pin is the SHA-256 digest of the certificate's DER SubjectPublicKeyInfo,
as in HTTP public key pinning (RFC 7469), written in base64 or hex.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ._errors import ConfigurationError

__all__ = ["AllowList", "CertificateNames", "describe_identity", "parse_pin", "spki_sha256"]


def spki_sha256(certificate: x509.Certificate) -> bytes:
    """
    The SHA-256 digest of C{certificate}'s SubjectPublicKeyInfo.
    """
    der = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def parse_pin(text: str, option: str) -> bytes:
    """
    Decode an SPKI SHA-256 pin given in hex (64 digits, colons allowed) or base64.

    @raise ConfigurationError: naming C{option}, if it is neither.
    """
    cleaned = text.strip().removeprefix("sha256/").removeprefix("sha256:")
    hexdigits = cleaned.replace(":", "")
    if len(hexdigits) == 64:
        try:
            return bytes.fromhex(hexdigits)
        except ValueError:
            pass
    try:
        digest = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise ConfigurationError(
            option,
            f"{text!r} is not a SHA-256 SPKI pin (64 hex digits or 44 base64 characters)",
        )
    return digest


@dataclass(frozen=True)
class CertificateNames:
    """
    Who a certificate names: subject common names and subject alternative names.
    """

    common_names: tuple[str, ...]
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    uris: tuple[str, ...]

    @classmethod
    def of(cls, certificate: x509.Certificate) -> CertificateNames:
        """
        The names in C{certificate}.
        """
        common_names = tuple(
            str(a.value)
            for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        )
        try:
            san = certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value
        except x509.ExtensionNotFound:
            return cls(common_names, (), (), ())
        return cls(
            common_names,
            tuple(san.get_values_for_type(x509.DNSName)),
            tuple(str(a) for a in san.get_values_for_type(x509.IPAddress)),
            tuple(san.get_values_for_type(x509.UniformResourceIdentifier)),
        )

    def hosts(self) -> list[str]:
        """
        The DNS names and IP addresses, as a client matches them.
        """
        return [*self.dns_names, *self.ip_addresses]

    def alt_names(self) -> list[str]:
        """
        The subject alternative names with their kind: C{DNS:..}, C{IP:..}, C{URI:..}.
        """
        return (
            [f"DNS:{n}" for n in self.dns_names]
            + [f"IP:{a}" for a in self.ip_addresses]
            + [f"URI:{u}" for u in self.uris]
        )

    def labelled(self) -> list[str]:
        """
        Every name with its kind: C{CN=..}, then the alternative names.
        """
        return [f"CN={n}" for n in self.common_names] + self.alt_names()


def describe_identity(certificate: x509.Certificate, with_pin: bool = True) -> str:
    """
    A certificate's identity for logs: its names and (optionally) SPKI pin.
    """
    parts = CertificateNames.of(certificate).labelled()
    if with_pin:
        parts.append("SPKI sha256/" + base64.b64encode(spki_sha256(certificate)).decode())
    return ", ".join(parts) or certificate.subject.rfc4514_string()


@dataclass(frozen=True)
class AllowList:
    """
    Which client certificates are authorized: any that matches one entry.

    An empty list authorizes every certificate that verified.
    """

    common_names: frozenset[str] = frozenset()
    dns_names: frozenset[str] = frozenset()
    uris: frozenset[str] = frozenset()
    spki_pins: frozenset[bytes] = frozenset()

    @classmethod
    def parse(
        cls,
        cn: Iterable[str] = (),
        dns: Iterable[str] = (),
        uri: Iterable[str] = (),
        spki: Iterable[str] = (),
    ) -> AllowList:
        """
        Build an allow list from option values.

        @raise ConfigurationError: for a malformed C{--allow-spki} pin.
        """
        return cls(
            frozenset(cn),
            frozenset(n.lower().rstrip(".") for n in dns),
            frozenset(uri),
            frozenset(parse_pin(p, "--allow-spki") for p in spki),
        )

    def __bool__(self) -> bool:
        return bool(self.common_names or self.dns_names or self.uris or self.spki_pins)

    def rules(self) -> list[str]:
        """
        Every entry as text (C{cn:...}, C{dns:...}, C{uri:...}, C{spki:HEX}),
        sorted: the same list for the same rules.
        """
        return sorted(
            [f"cn:{name}" for name in self.common_names]
            + [f"dns:{name}" for name in self.dns_names]
            + [f"uri:{uri}" for uri in self.uris]
            + [f"spki:{pin.hex()}" for pin in self.spki_pins]
        )

    def allows(self, certificate: x509.Certificate) -> bool:
        """
        Whether C{certificate} matches any entry (or the list is empty).
        """
        if not self:
            return True
        names = CertificateNames.of(certificate)
        return bool(
            self.common_names.intersection(names.common_names)
            or self.dns_names.intersection(n.lower().rstrip(".") for n in names.dns_names)
            or self.uris.intersection(names.uris)
            or spki_sha256(certificate) in self.spki_pins
        )
