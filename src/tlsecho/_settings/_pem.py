"""
Read and check PEM certificates, keys and CA bundles with C{cryptography}.

Every function takes the option the file came from, so that each problem becomes a
L{ConfigurationError} naming the option, the file and the reason.  Nothing here ever
puts key material into a message.  Reading files and checking who may read them is
L{tlsecho._settings._files}' job.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ._errors import ConfigurationError
from ._files import check_private_file, read_file
from ._text import printable

#: Private key types OpenSSL can serve TLS with.
TLSPrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


def describe(certificate: x509.Certificate) -> str:
    """
    Name a certificate for a human: its subject as an RFC 4514 string,
    escaped for one line of a log or an error (it is the certificate's text).
    """
    return printable(certificate.subject.rfc4514_string()) or "(empty subject)"


def _load_certificates(path: Path, option: str) -> list[x509.Certificate]:
    data = read_file(path, option)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        if b"-----BEGIN" in data:
            reason = "holds no PEM certificate (is it a key?)"
        else:
            reason = "not a PEM file (expected -----BEGIN CERTIFICATE-----)"
        raise ConfigurationError(option, reason, path)
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigurationError(
            option, "holds a malformed PEM certificate", path
        ) from None


def load_certificate_chain(
    path: Path, option: str, now: datetime.datetime | None = None
) -> tuple[x509.Certificate, ...]:
    """
    Load a served certificate followed by its intermediates, and check them.

    @param now: The time to check validity at; the current time by default.
    @raise ConfigurationError: if the file is missing, not PEM, holds no
        certificate, is out of order (each certificate must be issued by the
        next), or holds a certificate that is expired or not yet valid.
    """
    chain = _load_certificates(path, option)
    check_validity(chain, path, option, now)
    for position, (child, parent) in enumerate(itertools.pairwise(chain), start=1):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise ConfigurationError(
                option,
                f"certificate chain out of order: certificate {position + 1} "
                f"({describe(parent)}) did not issue certificate {position} "
                f"({describe(child)}); list the server certificate first, "
                "then each issuer in turn",
                path,
            ) from None
    return tuple(chain)


def check_validity(
    certificates: Sequence[x509.Certificate],
    path: Path,
    option: str,
    now: datetime.datetime | None = None,
) -> None:
    """
    Raise a L{ConfigurationError} if any certificate is expired or not yet valid.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    for certificate in certificates:
        if now < certificate.not_valid_before_utc:
            raise ConfigurationError(
                option,
                f"certificate {describe(certificate)} is not valid yet "
                f"(valid from {certificate.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC)",
                path,
            )
        if now > certificate.not_valid_after_utc:
            raise ConfigurationError(
                option,
                f"certificate {describe(certificate)} has expired "
                f"(on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC)",
                path,
            )


def load_ca_certificates(path: Path, option: str) -> tuple[x509.Certificate, ...]:
    """
    Load a CA bundle: one or more PEM certificates to trust.

    @raise ConfigurationError: if the file is missing or holds no certificate.
    """
    data = read_file(path, option)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ConfigurationError(option, "CA file holds no PEM certificates", path)
    return tuple(_load_certificates(path, option))


def read_passphrase(path: Path, option: str) -> bytes:
    """
    Read a key passphrase from its file, without the trailing line end.

    @raise ConfigurationError: if the file cannot be read, is empty, or others
        may read or write it (as for a key:
        L{tlsecho._settings._files.check_private_file}).
    """
    passphrase = read_file(path, option).rstrip(b"\r\n")
    check_private_file(path, option, "passphrase")
    if not passphrase:
        raise ConfigurationError(option, "passphrase file is empty", path)
    return passphrase


def load_private_key(
    path: Path,
    option: str,
    passphrase: bytes | None = None,
    passphrase_option: str = "--key-passphrase-file",  # noqa: S107 (an option name)
    hint: str = "",
) -> TLSPrivateKey:
    """
    Load a PEM private key, decrypting it with C{passphrase} if it is encrypted.

    @param hint: Words added to "holds no PEM private key", saying where the
        key should have been given.
    @raise ConfigurationError: if the file is missing, holds no key, the key is
        encrypted and no (or a wrong) passphrase was given, a passphrase was
        given for a plain key, or the key type cannot be used for TLS.
    """
    data = read_file(path, option)
    if b"PRIVATE KEY-----" not in data:
        raise ConfigurationError(
            option,
            f"holds no PEM private key (expected -----BEGIN PRIVATE KEY-----){hint}",
            path,
        )
    check_private_file(path, option)
    try:
        key: PrivateKeyTypes = serialization.load_pem_private_key(data, passphrase)
    except TypeError as e:
        if passphrase is None:
            raise ConfigurationError(
                option,
                "the private key is encrypted: give its passphrase with "
                + passphrase_option,
                path,
            ) from None
        raise ConfigurationError(
            passphrase_option,
            f"the private key in {path} is not encrypted; drop {passphrase_option}",
        ) from e
    except ValueError:
        if passphrase is not None:
            raise ConfigurationError(
                option, f"wrong passphrase (from {passphrase_option})", path
            ) from None
        raise ConfigurationError(
            option, "holds a malformed PEM private key", path
        ) from None
    except UnsupportedAlgorithm:
        raise ConfigurationError(
            option, "private key type is not supported", path
        ) from None
    if not isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        raise ConfigurationError(
            option, f"a {type(key).__name__} cannot be used for TLS", path
        )
    return key


def load_identity(
    certificate: Path,
    private_key: Path | None,
    passphrase: bytes | None,
    certificate_option: str = "--cert",
    key_option: str = "--key",
    key_hint: str = "give its key file with --key",
) -> tuple[tuple[x509.Certificate, ...], TLSPrivateKey]:
    """
    Load a certificate chain and its private key (from the chain's file when
    C{private_key} is L{None}) and check that they belong together.
    """
    chain = load_certificate_chain(certificate, certificate_option)
    key_path = private_key or certificate
    option = key_option if private_key is not None else certificate_option
    # Without a key file, the key was looked for in the certificate's file.
    hint = f"; {key_hint}" if private_key is None else ""
    key = load_private_key(key_path, option, passphrase, hint=hint)
    check_key_matches(chain[0], key, key_path, option)
    return chain, key


def public_key_der(key: TLSPrivateKey | x509.Certificate) -> bytes:
    """
    The DER SubjectPublicKeyInfo of a private key or of a certificate's key.
    """
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_key_matches(
    certificate: x509.Certificate, key: TLSPrivateKey, key_path: Path, option: str
) -> None:
    """
    Raise a L{ConfigurationError} unless C{key} is the certificate's private key.
    """
    if public_key_der(certificate) != public_key_der(key):
        raise ConfigurationError(
            option,
            f"private key does not match the certificate {describe(certificate)}",
            key_path,
        )
