"""
Read and check PEM certificates, keys and CA bundles with C{cryptography}.

Every function takes the option the file came from, so that each problem becomes a
L{ConfigurationError} naming the option, the file and the reason.  Nothing here ever
puts key material into a message.
"""

from __future__ import annotations

import datetime
import itertools
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ._errors import ConfigurationError

#: Private key types OpenSSL can serve TLS with.
TLSPrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


def read_file(path: Path, option: str) -> bytes:
    """
    Read C{path} whole, or raise a L{ConfigurationError} saying why it cannot be.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(option, "no such file", path) from None
    except IsADirectoryError:
        raise ConfigurationError(option, "is a directory, not a file", path) from None
    except PermissionError:
        raise ConfigurationError(option, "permission denied", path) from None
    except OSError as e:
        raise ConfigurationError(option, f"cannot read: {e.strerror}", path) from None


def describe(certificate: x509.Certificate) -> str:
    """
    Name a certificate for a human: its subject as an RFC 4514 string.
    """
    return certificate.subject.rfc4514_string() or "(empty subject)"


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
        may read or write it (as for a key: L{check_private_file}).
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
) -> TLSPrivateKey:
    """
    Load a PEM private key, decrypting it with C{passphrase} if it is encrypted.

    @raise ConfigurationError: if the file is missing, holds no key, the key is
        encrypted and no (or a wrong) passphrase was given, a passphrase was
        given for a plain key, or the key type cannot be used for TLS.
    """
    data = read_file(path, option)
    if b"PRIVATE KEY-----" not in data:
        raise ConfigurationError(
            option, "holds no PEM private key (expected -----BEGIN PRIVATE KEY-----)", path
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


def check_private_file(
    path: Path,
    option: str,
    what: str = "private key",
    *,
    group: bool = True,
    status: os.stat_result | None = None,
) -> None:
    """
    Refuse a secret file that users other than its owner (and, with C{group},
    its group) may read or write.

    The one permission check for every secret file tlsecho reads or writes:
    private keys, key passphrases and session-ticket keys (group access
    allowed, for a group of services sharing them), and the development CA's
    keys and the key log (owner only: tlsecho made them, or fills them with
    secrets).  Only mode bits are used, never C{os.access}, so the check holds
    for root, who may read anything.  The message says which C{chmod} fixes it.

    @param what: What the file holds, as the message says it.
    @param group: Whether the file's group may read it.
    @param status: The file's status if already known (from C{os.fstat} on
        the open file); C{path} is C{stat}ed otherwise.
    @raise ConfigurationError: naming C{option}, the file, the mode and the fix.
    """
    if status is None:
        try:
            status = path.stat()
        except OSError as e:
            raise ConfigurationError(option, f"cannot read: {e.strerror}", path) from None
    mode = stat.S_IMODE(status.st_mode)
    if group:
        forbidden, who, fix = 0o006, "other users", "o-rwx"
    else:
        forbidden, who, fix = 0o066, "its group or other users", "600"
    refused = mode & forbidden
    if not refused:
        return
    how = "readable" if refused & 0o444 else "writable"
    raise ConfigurationError(
        option,
        f"{what} file is {how} by {who} (mode {mode:04o}); fix it with: chmod {fix} {path}",
        path,
    )


def check_not_writable(path: Path, option: str, what: str, fix: str) -> None:
    """
    Refuse a file or directory that its group or other users may write (and
    so replace what tlsecho trusts), in the words of L{check_private_file}.

    @param fix: The mode to suggest, such as C{"644"} or C{"700"}.
    @raise ConfigurationError: naming C{option}, the path, the mode and the fix.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as e:
        raise ConfigurationError(option, f"cannot read: {e.strerror}", path) from None
    if mode & 0o022:
        raise ConfigurationError(
            option,
            f"{what} is writable by its group or other users (mode {mode:04o}); "
            f"fix it with: chmod {fix} {path}",
            path,
        )


def check_keylog_file(
    path: Path, option: str, status: os.stat_result | None = None
) -> None:
    """
    Refuse a key log that exists and is not the user's own private file:
    others may read or write it, or another user owns it (and so can read
    it).  A key log that does not exist yet passes: it is made mode 0600.

    @param status: The status of the open file (from C{os.fstat}), checked
        instead of C{path}'s.
    @raise ConfigurationError: naming C{option}, the file and the fix.
    """
    if status is None:
        try:
            status = path.stat()
        except FileNotFoundError:
            return
        except OSError as e:
            raise ConfigurationError(option, f"cannot read: {e.strerror}", path) from None
    if stat.S_ISDIR(status.st_mode):
        raise ConfigurationError(option, "is a directory, not a file", path)
    if status.st_uid != os.geteuid():
        raise ConfigurationError(
            option,
            f"key log file belongs to another user (uid {status.st_uid}), who can "
            "read it; remove it or choose a file of your own",
            path,
        )
    check_private_file(path, option, "key log", group=False, status=status)


def load_identity(
    certificate: Path,
    private_key: Path | None,
    passphrase: bytes | None,
    certificate_option: str = "--cert",
    key_option: str = "--key",
) -> tuple[tuple[x509.Certificate, ...], TLSPrivateKey]:
    """
    Load a certificate chain and its private key (from the chain's file when
    C{private_key} is L{None}) and check that they belong together.
    """
    chain = load_certificate_chain(certificate, certificate_option)
    key_path = private_key or certificate
    option = key_option if private_key is not None else certificate_option
    key = load_private_key(key_path, option, passphrase)
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
