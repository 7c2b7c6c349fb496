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
from ._text import printable

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

    Reading them never raises: what cannot be read (a SAN that does not parse,
    say) is left out and named in C{unreadable}, and whoever decides on these
    names must refuse a certificate with anything unreadable.

    @ivar unreadable: The parts that could not be read (C{"subject"},
        C{"SAN"}), empty for a certificate read in full.
    """

    common_names: tuple[str, ...]
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    uris: tuple[str, ...]
    unreadable: tuple[str, ...] = ()

    @classmethod
    def of(cls, certificate: x509.Certificate) -> CertificateNames:
        """
        The names in C{certificate}; never raises.
        """
        unreadable: list[str] = []
        try:
            common_names = tuple(
                str(a.value)
                for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            )
        except Exception:
            common_names = ()
            unreadable.append("subject")
        try:
            san = certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value
            dns_names = tuple(str(n) for n in san.get_values_for_type(x509.DNSName))
            ip_addresses = tuple(str(a) for a in san.get_values_for_type(x509.IPAddress))
            uris = tuple(
                str(u) for u in san.get_values_for_type(x509.UniformResourceIdentifier)
            )
        except x509.ExtensionNotFound:
            dns_names = ip_addresses = uris = ()
        except Exception:
            # cryptography parses every extension at once: one bad name (a
            # dNSName that is not ASCII, say) makes them all unreadable.
            dns_names = ip_addresses = uris = ()
            unreadable.append("SAN")
        return cls(common_names, dns_names, ip_addresses, uris, tuple(unreadable))

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
        Every name with its kind: C{CN=..}, then the alternative names, then
        C{(SAN unreadable)} for each part that could not be read.
        """
        return (
            [f"CN={n}" for n in self.common_names]
            + self.alt_names()
            + [f"({part} unreadable)" for part in self.unreadable]
        )


def describe_identity(certificate: x509.Certificate, with_pin: bool = True) -> str:
    """
    A certificate's identity for logs: its names and (optionally) SPKI pin.

    Never raises; each name is escaped and length-capped (L{printable}), as
    certificate names are chosen by whoever asked for the certificate.
    """
    parts = [printable(part) for part in CertificateNames.of(certificate).labelled()]
    if with_pin:
        try:
            parts.append(
                "SPKI sha256/" + base64.b64encode(spki_sha256(certificate)).decode()
            )
        except Exception:
            parts.append("(public key unreadable)")
    if parts:
        return ", ".join(parts)
    try:
        return printable(certificate.subject.rfc4514_string()) or "(no names)"
    except Exception:
        return "(no names)"


def _dns_key(name: str) -> str:
    """
    A DNS name as --allow-dns compares it: lower case, at most one trailing
    dot removed (C{alice.example.} is C{alice.example}; C{alice.example..} is
    not).
    """
    return name.lower().removesuffix(".")


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
            frozenset(_dns_key(n) for n in dns),
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
        return self.refusal(certificate) is None

    def refusal(self, certificate: x509.Certificate) -> str | None:
        """
        Why C{certificate} matches no entry, or L{None} if it matches one (or
        the list is empty).  Never raises.

        Fail-closed: a certificate with names that cannot be read matches
        nothing, and one with several subject CNs never matches C{--allow-cn}
        (which of them would be "the" name is a guess an attacker can steer:
        C{CN=mallory, CN=alice}).  C{--allow-dns} looks only at dNSName SANs,
        never at the subject CN.
        """
        if not self:
            return None
        names = CertificateNames.of(certificate)
        if names.unreadable:
            return (
                f"its {' and '.join(names.unreadable)} cannot be read, so no "
                "--allow-* rule can match it"
            )
        try:
            pin = spki_sha256(certificate)
        except Exception:
            return "its public key cannot be read, so no --allow-* rule can match it"
        ambiguous = len(names.common_names) > 1
        if (
            (not ambiguous and self.common_names.intersection(names.common_names))
            or self.dns_names.intersection(_dns_key(n) for n in names.dns_names)
            or self.uris.intersection(names.uris)
            or pin in self.spki_pins
        ):
            return None
        if ambiguous and self.common_names:
            return (
                f"it has {len(names.common_names)} common names, which --allow-cn "
                "never matches; no other --allow-* rule matches"
            )
        return "no --allow-* rule matches"
