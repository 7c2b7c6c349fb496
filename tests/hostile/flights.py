"""
Handshake flights larger than one 32 KiB read: a peer whose certificate chain
(server) or certificate (client) makes its handshake flight bigger than the
32 KiB Twisted's TLS transport reads from OpenSSL at a time tries to stall the
handshake halfway, so that the other side waits for bytes that never leave,
or so that the server counts a handshake as done that its peer never finished
(the handshake timeout then never fires).  tlsecho promises that flights of
any size OpenSSL accepts (up to its 100 KiB certificate-list limit) are sent
whole, so the echo arrives, that a refused big flight is reported by the
client as a handshake failure (exit 4), and that a server only stops its
handshake timer once its whole final flight has gone to the peer.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["BigIdentity", "big_identity"]

#: A private-arc OID for the padding extension: non-critical, so every
#: verifier ignores it (RFC 5280 section 4.2).
_PADDING = x509.ObjectIdentifier("1.3.6.1.4.1.55555.10.1")


@dataclass(frozen=True)
class BigIdentity:
    """
    A certificate chain (leaf first, then intermediates) and its key, on disk.

    @ivar chain: PEM file: leaf, then every intermediate.
    @ivar key: PEM file of the leaf's private key (mode 0600).
    @ivar der_size: Bytes of DER in the chain: what the Certificate message carries.
    """

    chain: Path
    key: Path
    der_size: int


def _octet_string(content: bytes) -> bytes:
    """DER of an OCTET STRING holding C{content} (under 64 KiB)."""
    assert len(content) < 2**16
    return b"\x04\x82" + len(content).to_bytes(2, "big") + content


def _certificate(
    subject: str,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    padding: int,
    names: tuple[str, ...] = (),
    client: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.UnrecognizedExtension(_PADDING, _octet_string(b"P" * padding)),
            critical=False,
        )
    )
    if names:
        purpose = (
            ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        )
        general: list[x509.GeneralName] = []
        for name in names:
            try:
                general.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                general.append(x509.DNSName(name))
        builder = (
            builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([purpose]),
                critical=False,
            )
        )
    else:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        ).add_extension(
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
    return builder.sign(issuer_key, hashes.SHA256())


def big_identity(
    root: trustme.CA,
    directory: Path,
    name: str,
    size: int,
    names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1"),
    client: bool = False,
    intermediates: int = 1,
) -> BigIdentity:
    """
    Issue under C{root} a chain of C{size} bytes of DER (give or take the few
    bytes an ECDSA signature varies by): C{intermediates} padded intermediate
    CAs, then a padded leaf for C{names}, each carrying a share of the padding
    in a non-critical extension.

    @param client: Issue a client certificate (extended key usage clientAuth)
        instead of a server certificate.
    @return: The chain and key, written as C{name}.pem and C{name}.key in
        C{directory}.
    """
    root_key = cast(
        CertificateIssuerPrivateKeyTypes,
        serialization.load_pem_private_key(root.private_key_pem.bytes(), password=None),
    )
    root_name = x509.load_pem_x509_certificate(root.cert_pem.bytes()).subject
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(intermediates + 1)]

    def build(paddings: list[int]) -> list[x509.Certificate]:
        issuer, issuer_key = root_name, root_key
        chain: list[x509.Certificate] = []
        for index in range(intermediates):
            cert = _certificate(
                f"big intermediate {index}",
                keys[index].public_key(),
                issuer,
                issuer_key,
                paddings[index],
            )
            chain.insert(0, cert)
            issuer, issuer_key = cert.subject, keys[index]
        leaf = _certificate(
            names[0],
            keys[-1].public_key(),
            issuer,
            issuer_key,
            paddings[-1],
            names=names,
            client=client,
        )
        return [leaf, *chain]

    def der_size(chain: list[x509.Certificate]) -> int:
        return sum(len(c.public_bytes(serialization.Encoding.DER)) for c in chain)

    share = size // (intermediates + 1)
    paddings = [share] * (intermediates + 1)
    # What the certificates add around their padding is known only once made.
    paddings[-1] += size - der_size(build(paddings))
    chain = build(paddings)
    chain_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    chain_path.write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    )
    key_path.write_bytes(
        keys[-1].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return BigIdentity(chain=chain_path, key=key_path, der_size=der_size(chain))
