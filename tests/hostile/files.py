"""
Secret files left open to other local users, or holding the wrong thing: a
key passphrase file anyone may read; a development CA whose key the group or
everyone may read (so they can mint C{localhost} certificates the client
trusts), or whose state directory others may write (so they can swap in their
own CA); a key log that already exists readable by others, belongs to another
user, or is loosened while the server runs; a private key or certificate given
as the session-ticket key file.  tlsecho promises to refuse each one before
anything listens or connects (the server, C{tlsecho check} and the client
alike), with one line naming the option, the file and the C{chmod} that fixes
it, exit status 2 and no traceback; never to write TLS secrets into a file
others can read; never to advise overwriting a file that holds a key; and
never to print key material.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tlsecho._settings._devcert import ensure_development_certificate

__all__ = [
    "KEYLOG_MARKER",
    "NOBODY",
    "development_directory",
    "encrypted_key",
    "exposed_keylog",
    "impostor_behind",
    "loosen",
    "minted_with_development_ca_key",
    "pem_as_ticket_key",
    "swap_development_ca",
]

#: What an attacker's pre-made key log holds before tlsecho could append.
KEYLOG_MARKER = b"# planted by another user\n"

#: The user id of C{nobody}: the other user who owns a planted file.
NOBODY = 65534


def loosen(path: Path, mode: int) -> Path:
    """Set C{path}'s permission bits to C{mode}, as a careless admin would."""
    os.chmod(path, mode)
    return path


def encrypted_key(
    plain_key: Path, directory: Path, passphrase: bytes, passphrase_mode: int
) -> tuple[Path, Path]:
    """
    The key of C{plain_key} encrypted with C{passphrase} (mode 0600), and the
    passphrase in a file of mode C{passphrase_mode}.
    """
    key = serialization.load_pem_private_key(plain_key.read_bytes(), None)
    encrypted = directory / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    encrypted.chmod(0o600)
    passphrase_file = directory / "passphrase.txt"
    passphrase_file.write_bytes(passphrase + b"\n")
    return encrypted, loosen(passphrase_file, passphrase_mode)


def exposed_keylog(directory: Path, mode: int, owner: int | None = None) -> Path:
    """
    A key log file that already exists (planted, or left over) with C{mode},
    owned by C{owner} (a user id) if given.
    """
    path = directory / "keys.log"
    path.write_bytes(KEYLOG_MARKER)
    if owner is not None:
        os.chown(path, owner, -1)
    return loosen(path, mode)


def pem_as_ticket_key(pem: Path, directory: Path) -> Path:
    """A copy of a PEM file (a key, a certificate) as a ticket key file, mode 0600."""
    path = directory / "ticket.key"
    shutil.copyfile(pem, path)
    return loosen(path, 0o600)


def development_directory(state_home: Path) -> Path:
    """Make the development CA and certificate as the server would; their directory."""
    directory = state_home / "tlsecho"
    ensure_development_certificate(directory)
    return directory


def swap_development_ca(
    state_home: Path, attacker: trustme.CA, directory_mode: int
) -> Path:
    """
    Make the development CA, loosen its directory to C{directory_mode}, then do
    what anyone who may write there can: replace C{dev-ca.pem} with the
    attacker's CA (a new file renamed over the old one).  Return the directory.
    """
    directory = loosen(development_directory(state_home), directory_mode)
    planted = directory / ".planted"
    attacker.cert_pem.write_to_path(str(planted))
    os.replace(planted, directory / "dev-ca.pem")
    return directory


def minted_with_development_ca_key(
    state_home: Path, key_mode: int, directory: Path
) -> tuple[Path, Path, Path]:
    """
    Make the development CA and loosen its key to C{key_mode}; then, as anyone
    who can read that key could, issue a C{localhost} certificate with it.
    Return the CA key file and the minted certificate and key (0600), to serve.
    """
    state = development_directory(state_home)
    key_file = loosen(state / "dev-ca.key", key_mode)
    stolen = serialization.load_pem_private_key(key_file.read_bytes(), None)
    assert isinstance(stolen, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate((state / "dev-ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(stolen, hashes.SHA256())
    )
    chain, key_path = directory / "minted.pem", directory / "minted.key"
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key_file, chain, loosen(key_path, 0o600)


def impostor_behind(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    """A C{localhost} certificate and key (0600) issued by C{ca}, to serve."""
    leaf = ca.issue_cert("localhost", "127.0.0.1", "::1")
    chain, key = directory / "impostor.pem", directory / "impostor.key"
    chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return chain, loosen(key, 0o600)
