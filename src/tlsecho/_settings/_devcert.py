"""
The development default: a local CA and a C{localhost} certificate, made once.

With no C{--cert}, the server uses a certificate for C{localhost}, C{127.0.0.1}
and C{::1} issued by a development CA that lives in a per-user state directory
(C{$XDG_STATE_HOME/tlsecho}, by default C{~/.local/state/tlsecho}).  Both are
created with C{cryptography} on first use and reused after; the server
certificate is re-issued when it nears expiry.  C{tlsecho client} trusts the
CA for loopback hosts, so the two work together with no flags.

Whoever may write the directory or the CA certificate can plant their own CA,
and whoever may read a key can mint certificates the client trusts for
loopback: both the server and the client refuse such a directory, with the
C{chmod} that fixes it (L{check_development_files}).  The client only ever
reads the CA certificate, never a key.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ._files import check_not_writable, check_private_file

__all__ = [
    "DevelopmentCertificate",
    "check_development_files",
    "development_ca_path",
    "ensure_development_certificate",
    "state_directory",
]

_CA_DAYS = 3650
_SERVER_DAYS = 90
_RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class DevelopmentCertificate:
    """
    Paths of the development CA certificate and of the server's certificate and key.
    """

    ca: Path
    certificate: Path
    private_key: Path


def state_directory() -> Path:
    """
    The per-user directory tlsecho keeps its development CA in.
    """
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tlsecho"


def development_ca_path(directory: Path | None = None) -> Path:
    """
    Where the development CA certificate is (whether or not it exists yet).
    """
    return (directory or state_directory()) / "dev-ca.pem"


#: How errors about the development files name them (there is no option).
_CA_OPTION = "development CA"
_SERVER_OPTION = "development certificate"


def check_development_files(directory: Path, server: bool = True) -> None:
    """
    Refuse a development state directory others could tamper with: the
    directory, or a certificate in it, writable by its group or other users
    (they could plant their own CA), or a private key in it that they may read
    or write (they could mint certificates, or swap the key).  Files that do
    not exist yet pass: they are made private.

    @param server: Whether the server's certificate and key are checked too;
        the client uses only the CA certificate, so it checks the directory
        and the CA's files (the key by its mode, without reading it).
    @raise ConfigurationError: one line naming the file and the C{chmod} that
        fixes it.
    """
    check_not_writable(directory, _CA_OPTION, "state directory", "700")
    files = [("dev-ca.pem", "dev-ca.key", _CA_OPTION, "CA ")]
    if server:
        files.append(("localhost.pem", "localhost.key", _SERVER_OPTION, ""))
    for certificate, key, option, prefix in files:
        if (directory / certificate).exists():
            check_not_writable(
                directory / certificate, option, f"{prefix}certificate file", "644"
            )
        if (directory / key).exists():
            check_private_file(directory / key, option, f"{prefix}private key", group=False)


def _write(path: Path, data: bytes, private: bool) -> None:
    """
    Write C{data} to C{path} atomically; private files are readable by the owner only.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _usable(path: Path) -> x509.Certificate | None:
    """
    The certificate in C{path} if it exists and stays valid for a while yet.
    """
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    if certificate.not_valid_after_utc - _RENEW_BEFORE < _now():
        return None
    return certificate


def _make_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsecho development"),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"tlsecho development CA ({os.uname().nodename})"
            ),
        ]
    )
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    _write(directory / "dev-ca.key", _key_pem(key), private=True)
    _write(
        development_ca_path(directory),
        certificate.public_bytes(serialization.Encoding.PEM),
        private=False,
    )
    return certificate, key


def _load_ca(
    directory: Path,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    certificate = _usable(development_ca_path(directory))
    if certificate is None:
        return None
    try:
        key = serialization.load_pem_private_key(
            (directory / "dev-ca.key").read_bytes(), None
        )
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if key.public_key() != certificate.public_key():
        return None  # a key from another CA: make a fresh pair
    return certificate, key


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    """
    Whether C{ca} signed C{certificate} (not just a CA of the same name).
    """
    try:
        certificate.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _issue_server(
    directory: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_SERVER_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory / "localhost.key", _key_pem(key), private=True)
    _write(
        directory / "localhost.pem",
        certificate.public_bytes(serialization.Encoding.PEM),
        private=False,
    )


def ensure_development_certificate(directory: Path | None = None) -> DevelopmentCertificate:
    """
    Create the development CA and C{localhost} certificate if they are missing,
    expired or near expiry, and return their paths.

    @param directory: Where to keep them; L{state_directory} by default.
    @raise ConfigurationError: if others could tamper with the directory or
        read its keys (L{check_development_files}).
    """
    directory = directory or state_directory()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    check_development_files(directory)
    ca = _load_ca(directory)
    fresh_ca = ca is None
    if ca is None:
        ca = _make_ca(directory)
    server = _usable(directory / "localhost.pem")
    if (
        fresh_ca
        or server is None
        or not _issued_by(server, ca[0])
        or not (directory / "localhost.key").exists()
    ):
        _issue_server(directory, *ca)
    return DevelopmentCertificate(
        ca=development_ca_path(directory),
        certificate=directory / "localhost.pem",
        private_key=directory / "localhost.key",
    )
