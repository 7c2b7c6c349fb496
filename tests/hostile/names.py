"""
Hostile names: a CA the client trusts (or one it trusts below a name
constraint) issues a server certificate whose names cannot be read or used --
a dNSName of invalid UTF-8, no subjectAltName at all, wildcards no matcher
accepts, an IP address of the wrong length, an empty name, a name with a NUL
or padded with spaces, a name with a trailing dot that slips past an excluded
constraint, an IPv4-mapped IPv6 address that slips past an excluded IPv4
range -- or a key whose keyUsage forbids the signature TLS needs.  The attacker
hopes the client waves such a certificate through for a host name it does not
name.  tlsecho promises that its client accepts a server certificate only when
a host name check positively succeeded (service-identity and OpenSSL's own
check, independently), with one line of words otherwise, and that its server
refuses a client certificate whose names it cannot read under C{--allow-*}.

The certificates are made here with C{cryptography}; subjectAltName values are
written as raw DER so that they can hold what C{cryptography} would refuse to
encode.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

__all__ = [
    "ENCIPHER_ONLY_USAGE",
    "UNUSABLE_NAMES",
    "Authority",
    "Leaf",
    "UnusableName",
    "dns",
    "ip",
    "loopback_network",
    "rsa_key",
    "subject_alt_names",
]

_NOW = datetime.datetime.now(datetime.UTC)
_BEFORE = _NOW - datetime.timedelta(days=1)
_AFTER = _NOW + datetime.timedelta(days=30)


# DER, by hand ---------------------------------------------------------------------


def _der(tag: int, content: bytes) -> bytes:
    """One DER TLV: C{tag}, the definite length of C{content}, C{content}."""
    length = len(content)
    if length < 0x80:
        encoded = bytes([length])
    else:
        octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
        encoded = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + encoded + content


def dns(raw: bytes) -> bytes:
    """A dNSName GeneralName ([2] IA5String) holding C{raw}, whatever it is."""
    return _der(0x82, raw)


def ip(raw: bytes) -> bytes:
    """An iPAddress GeneralName ([7] OCTET STRING) holding C{raw}, of any length."""
    return _der(0x87, raw)


def subject_alt_names(*general_names: bytes) -> bytes:
    """The DER value of a subjectAltName extension: a SEQUENCE of the names."""
    return _der(0x30, b"".join(general_names))


# Certificates ---------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key() -> rsa.RSAPrivateKey:
    """A new 2048-bit RSA key, for a leaf that is not ECDSA."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Leaf:
    """A certificate with its key and the chain above it (not the root)."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...]

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write NAME.pem (leaf, then chain) and NAME.key (0600); return both."""
        certificate = directory / f"{name}.pem"
        key = directory / f"{name}.key"
        certificate.write_bytes(b"".join(_pem(c) for c in (self.certificate, *self.chain)))
        key.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key.chmod(0o600)
        return certificate, key


@dataclass(frozen=True)
class Authority:
    """A CA: a root, or an intermediate (possibly name-constrained) under one."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def root(cls, name: str = "tlsecho hostile test root") -> Authority:
        """A new self-signed root CA."""
        key = _key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        certificate = (
            _ca_builder(subject, subject, key.public_key(), key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    def write_root(self, path: Path) -> Path:
        """Write this CA's certificate to C{path} (for C{--ca}); return it."""
        path.write_bytes(_pem(self.certificate))
        return path

    def intermediate(
        self,
        name: str = "tlsecho hostile test intermediate",
        permitted: Sequence[x509.GeneralName] | None = None,
        excluded: Sequence[x509.GeneralName] | None = None,
    ) -> Authority:
        """An intermediate CA under this one, with name constraints if given."""
        key = _key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = _ca_builder(
            subject, self.certificate.subject, key.public_key(), self.key.public_key()
        ).add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        if permitted is not None or excluded is not None:
            builder = builder.add_extension(
                x509.NameConstraints(
                    permitted_subtrees=list(permitted) if permitted is not None else None,
                    excluded_subtrees=list(excluded) if excluded is not None else None,
                ),
                critical=True,
            )
        certificate = builder.sign(self.key, hashes.SHA256())
        return Authority(certificate, key, (certificate, *self.chain))

    def issue(
        self,
        san: bytes | None,
        common_name: str | None = "tlsecho hostile leaf",
        key_usage: x509.KeyUsage | None = None,
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    ) -> Leaf:
        """
        A leaf certificate whose subjectAltName extension holds C{san} (raw DER
        from L{subject_alt_names}) or, for L{None}, no subjectAltName at all;
        with an ECDSA key unless C{key} is given.
        """
        key = key or _key()
        attributes = (
            [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_BEFORE)
            .not_valid_after(_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                key_usage
                or x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if san is not None:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, san),
                critical=not attributes,
            )
        return Leaf(builder.sign(self.key, hashes.SHA256()), key, self.chain)


def _ca_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer_key: ec.EllipticCurvePublicKey,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_BEFORE)
        .not_valid_after(_AFTER)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False
        )
    )


#: keyUsage of a key that may only encipher keys (RSA key transport), not sign.
ENCIPHER_ONLY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


# Unusable names -------------------------------------------------------------------


@dataclass(frozen=True)
class UnusableName:
    """
    A subjectAltName (raw DER, or L{None} for none) that no host name check can
    positively use, and a host name the attacker wants it accepted for.
    """

    san: bytes | None
    reference: str
    common_name: str | None = "localhost"


#: Certificates whose names cannot be read or used, each with the name the
#: attacker wants them accepted for.
UNUSABLE_NAMES: dict[str, UnusableName] = {
    # A good name next to a dNSName that is not even UTF-8: the whole extension
    # cannot be read.
    "invalid-utf8": UnusableName(
        subject_alt_names(dns(b"other.example"), dns(b"caf\xc3\xa9\xff.example")),
        "payments.example",
    ),
    "invalid-utf8-for-ip": UnusableName(
        subject_alt_names(dns(b"other.example"), dns(b"caf\xc3\xa9\xff.example")),
        "127.0.0.1",
    ),
    # No subjectAltName: the subject CN is not a name to check (RFC 6125).
    "no-san": UnusableName(None, "localhost"),
    "no-san-other-host": UnusableName(None, "anything.example"),
    "no-san-ip": UnusableName(None, "127.0.0.1", common_name="127.0.0.1"),
    # Wildcards in places neither matcher accepts.
    "double-wildcard": UnusableName(subject_alt_names(dns(b"*.*.example")), "a.b.example"),
    "partial-wildcard": UnusableName(subject_alt_names(dns(b"f*o.example")), "foo.example"),
    "bare-wildcard": UnusableName(subject_alt_names(dns(b"*")), "localhost"),
    # An iPAddress of five octets: neither IPv4 nor IPv6.
    "ip-of-five-octets": UnusableName(
        subject_alt_names(ip(b"\x7f\x00\x00\x01\x00")), "127.0.0.1"
    ),
    "empty-dns-name": UnusableName(subject_alt_names(dns(b"")), "localhost"),
    "nul-in-dns-name": UnusableName(
        subject_alt_names(dns(b"localhost\x00.evil.example")), "localhost"
    ),
    # Padded with a space: service-identity strips it and would match, OpenSSL's
    # own check does not -- the second gate.
    "space-padded": UnusableName(subject_alt_names(dns(b" localhost")), "localhost"),
}


def loopback_network() -> x509.IPAddress:
    """The IPv4 loopback range 127.0.0.0/8, as a name constraint subtree."""
    return x509.IPAddress(ipaddress.ip_network("127.0.0.0/8"))
