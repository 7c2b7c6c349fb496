"""
A certificate chain and key from a PKCS#12 bundle (C{.p12}, C{.pfx}), or from
PEM files: L{load_identity}, the one loader of every served or client identity.

A C{--cert} file is PKCS#12 when its content is (DER that parses as a PKCS#12
PFX; the name does not matter); it then holds the key, so it takes no C{--key}
and is checked like a key file (L{check_private_file}).  The bundle's key,
certificate and additional certificates become the chain, leaf first, each
extra certificate placed after the one it issued.  Everything the PEM loader
checks (validity, order, the key matching the certificate) is checked here
too, with the same messages (L{tlsecho._settings._pem}).
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import pkcs12

from . import _pem
from ._errors import ConfigurationError
from ._files import check_private_file, read_file

__all__ = ["is_pkcs12", "load_identity"]

#: DER of the OIDs a PFX's authSafe is wrapped in: pkcs7-data, pkcs7-signedData.
_AUTH_SAFE_TYPES = (
    bytes.fromhex("06092a864886f70d010701"),
    bytes.fromhex("06092a864886f70d010702"),
)


def _header(data: bytes, at: int) -> tuple[int, int, int] | None:
    """
    The tag, content offset and content length of the DER element at C{at},
    or L{None} if there is none.
    """
    if at + 2 > len(data):
        return None
    tag, first = data[at], data[at + 1]
    if first < 0x80:
        return tag, at + 2, first
    count = first & 0x7F
    if not 1 <= count <= 4 or at + 2 + count > len(data):
        return None
    return tag, at + 2 + count, int.from_bytes(data[at + 2 : at + 2 + count], "big")


def is_pkcs12(data: bytes) -> bool:
    """
    Whether C{data} is DER shaped as a PKCS#12 PFX: one SEQUENCE spanning
    the data, holding version 3 and a data or signed-data ContentInfo.
    """
    outer = _header(data, 0)
    if outer is None or outer[0] != 0x30 or outer[1] + outer[2] != len(data):
        return False
    start = outer[1]
    if data[start : start + 3] != b"\x02\x01\x03":
        return False
    content = _header(data, start + 3)
    if content is None or content[0] != 0x30:
        return False
    return data[content[1] : content[1] + 11] in _AUTH_SAFE_TYPES


def _in_order(
    leaf: x509.Certificate, extra: list[x509.Certificate], path: Path, option: str
) -> tuple[x509.Certificate, ...]:
    """
    C{leaf}, then each of C{extra} after the certificate it issued.

    @raise ConfigurationError: if one of C{extra} issued none of the others.
    """
    chain, left = [leaf], list(extra)
    while left:
        for candidate in left:
            try:
                chain[-1].verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature):
                continue
            chain.append(candidate)
            left.remove(candidate)
            break
        else:
            raise ConfigurationError(
                option,
                f"PKCS#12 bundle holds a certificate ({_pem.describe(left[0])}) "
                f"that is not in the chain of {_pem.describe(leaf)}",
                path,
            )
    return tuple(chain)


def _load_bundle(
    path: Path, option: str, data: bytes, passphrase: bytes | None, passphrase_option: str
) -> tuple[tuple[x509.Certificate, ...], _pem.TLSPrivateKey]:
    check_private_file(path, option)
    try:
        bundle = pkcs12.load_pkcs12(data, passphrase)
    except ValueError:
        if passphrase is None:
            reason = (
                "the PKCS#12 bundle is encrypted (or malformed): give its "
                f"passphrase with {passphrase_option}"
            )
        else:
            reason = f"wrong passphrase (from {passphrase_option}) or malformed PKCS#12"
        raise ConfigurationError(option, reason, path) from None
    if bundle.key is None:
        raise ConfigurationError(option, "PKCS#12 bundle holds no private key", path)
    if bundle.cert is None:
        raise ConfigurationError(option, "PKCS#12 bundle holds no certificate", path)
    key = bundle.key
    if not isinstance(key, _pem.TLSPrivateKey):
        raise ConfigurationError(
            option, f"a {type(key).__name__} cannot be used for TLS", path
        )
    leaf = bundle.cert.certificate
    _pem.check_key_matches(leaf, key, path, option)
    chain = _in_order(leaf, [c.certificate for c in bundle.additional_certs], path, option)
    _pem.check_validity(chain, path, option)
    return chain, key


def load_identity(
    certificate: Path,
    private_key: Path | None,
    passphrase: bytes | None,
    certificate_option: str = "--cert",
    key_option: str = "--key",
    passphrase_option: str = "--key-passphrase-file",  # noqa: S107 (an option name)
    key_hint: str = "give its key file with --key",
) -> tuple[tuple[x509.Certificate, ...], _pem.TLSPrivateKey]:
    """
    Load a certificate chain and its private key and check that they belong
    together: from a PKCS#12 bundle (decrypted with C{passphrase}), or from
    PEM (L{_pem.load_identity}).

    @raise ConfigurationError: naming the option, the file and the reason.
    """
    data = read_file(certificate, certificate_option)
    if not is_pkcs12(data):
        return _pem.load_identity(
            certificate, private_key, passphrase, certificate_option, key_option, key_hint
        )
    if private_key is not None:
        raise ConfigurationError(
            key_option,
            f"{certificate} is a PKCS#12 bundle, which holds the key; drop {key_option}",
            private_key,
        )
    return _load_bundle(
        certificate, certificate_option, data, passphrase, passphrase_option
    )
