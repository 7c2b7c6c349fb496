"""
Tests for tlsecho._settings._pem, the PEM loaders beneath L{tlsecho.TLSSettings}: the
cases the settings tests do not reach, and the parameters only callers of the loaders use.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.x509.oid import NameOID

from tlsecho import ConfigurationError
from tlsecho._settings import _pem

from conftest import TLSFiles, write_cert


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    path.chmod(0o600)  # private key material: owner only
    return path


def _encrypt(key: Path, passphrase: bytes, directory: Path, pkcs8: bool = True) -> Path:
    """Write the key in ``key`` encrypted with ``passphrase``; return the new file."""
    loaded = serialization.load_pem_private_key(key.read_bytes(), None)
    encrypted = directory / "encrypted.key"
    encrypted.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8
            if pkcs8
            else serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    encrypted.chmod(0o600)  # private key material: owner only
    return encrypted


def test_describe_names_subject(tls_files: TLSFiles) -> None:
    """describe names a certificate by its RFC 4514 subject."""
    (certificate,) = _pem.load_ca_certificates(tls_files.ca, "--ca")
    assert _pem.describe(certificate) == certificate.subject.rfc4514_string()
    assert _pem.describe(certificate).startswith("OU=Testing CA #")


def test_describe_empty_subject() -> None:
    """describe says so when a certificate's subject is empty."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    assert _pem.describe(certificate) == "(empty subject)"


def test_malformed_certificate(tmp_path: Path) -> None:
    """A PEM certificate block whose body is not a certificate is refused as malformed."""
    path = _write(
        tmp_path,
        "bad.pem",
        b"-----BEGIN CERTIFICATE-----\n"
        b"bm90IGEgY2VydGlmaWNhdGU=\n"
        b"-----END CERTIFICATE-----\n",
    )
    with pytest.raises(ConfigurationError) as info:
        _pem.load_certificate_chain(path, "--cert")
    assert str(info.value) == f"certificate {path}: holds a malformed PEM certificate"


def test_chain_ignores_text_around_certificates(
    tls_files: TLSFiles, tmp_path: Path
) -> None:
    """Text before and between PEM blocks (as openssl x509 -text writes) is ignored."""
    path = _write(
        tmp_path,
        "annotated.pem",
        b"subject=whatever\n" + tls_files.server_cert.read_bytes() + b"trailing words\n",
    )
    chain = _pem.load_certificate_chain(path, "--cert")
    assert len(chain) == 1


def test_chain_checked_at_given_time(ca: trustme.CA, tmp_path: Path) -> None:
    """load_certificate_chain checks validity at the time it is given."""
    now = datetime.datetime.now(datetime.UTC)
    chain, _ = write_cert(
        ca.issue_cert(
            "localhost",
            not_before=now - datetime.timedelta(days=1),
            not_after=now + datetime.timedelta(days=1),
        ),
        tmp_path,
        "s",
    )
    assert len(_pem.load_certificate_chain(chain, "--cert", now)) == 1
    with pytest.raises(ConfigurationError, match="has expired"):
        _pem.load_certificate_chain(chain, "--cert", now + datetime.timedelta(days=2))
    with pytest.raises(ConfigurationError, match="is not valid yet"):
        _pem.load_certificate_chain(chain, "--cert", now - datetime.timedelta(days=2))


def test_intermediate_validity_is_checked(ca: trustme.CA, tmp_path: Path) -> None:
    """Validity is checked for every certificate of the chain, intermediates too."""
    utc = datetime.UTC
    leaf = ca.create_child_ca().issue_cert(
        "localhost",
        not_before=datetime.datetime(1990, 1, 1, tzinfo=utc),
        not_after=datetime.datetime(2999, 1, 1, tzinfo=utc),
    )
    chain, _ = write_cert(leaf, tmp_path, "s")
    served, intermediate = x509.load_pem_x509_certificates(chain.read_bytes())
    # In 1995 the server certificate is valid but its issuer (valid from 2000) is not.
    when = datetime.datetime(1995, 1, 1, tzinfo=utc)
    _pem.check_validity([served], chain, "--cert", when)
    with pytest.raises(ConfigurationError) as info:
        _pem.load_certificate_chain(chain, "--cert", when)
    assert info.value.reason == (
        f"certificate {_pem.describe(intermediate)} is not valid yet "
        f"(valid from {intermediate.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC)"
    )


def test_check_validity_boundaries(ca: trustme.CA, tmp_path: Path) -> None:
    """A certificate is valid from its not-before to its not-after time, inclusive."""
    chain, _ = write_cert(ca.issue_cert("localhost"), tmp_path, "s")
    (certificate,) = x509.load_pem_x509_certificates(chain.read_bytes())
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    _pem.check_validity([certificate], chain, "--cert", start)
    _pem.check_validity([certificate], chain, "--cert", end)
    second = datetime.timedelta(seconds=1)
    with pytest.raises(ConfigurationError, match="is not valid yet"):
        _pem.check_validity([certificate], chain, "--cert", start - second)
    with pytest.raises(ConfigurationError, match="has expired"):
        _pem.check_validity([certificate], chain, "--cert", end + second)


def test_three_link_chain_out_of_order_names_position(
    ca: trustme.CA, tmp_path: Path
) -> None:
    """An out-of-order link deeper in the chain is reported with its position."""
    intermediate = ca.create_child_ca()
    leaf = intermediate.create_child_ca().issue_cert("localhost")
    served, lower, upper = (blob.bytes() for blob in leaf.cert_chain_pems)
    path = _write(tmp_path, "chain.pem", served + upper + lower)
    with pytest.raises(ConfigurationError) as info:
        _pem.load_certificate_chain(path, "--cert")
    assert info.value.reason.startswith(
        "certificate chain out of order: certificate 2 "
        f"({_pem.describe(x509.load_pem_x509_certificate(upper))}) "
        "did not issue certificate 1"
    )
    in_order = _write(tmp_path, "ordered.pem", served + lower + upper)
    assert len(_pem.load_certificate_chain(in_order, "--cert")) == 3


def test_ca_bundle_loads_every_certificate(tls_files: TLSFiles, tmp_path: Path) -> None:
    """load_ca_certificates returns all certificates of a bundle, in order."""
    bundle = _write(
        tmp_path, "b.pem", tls_files.ca.read_bytes() + tls_files.client_ca.read_bytes()
    )
    loaded = _pem.load_ca_certificates(bundle, "--ca")
    assert [c.subject for c in loaded] == [
        x509.load_pem_x509_certificate(tls_files.ca.read_bytes()).subject,
        x509.load_pem_x509_certificate(tls_files.client_ca.read_bytes()).subject,
    ]


def test_ca_bundle_not_pem(tmp_path: Path) -> None:
    """A CA file that is not PEM is refused as holding no PEM certificates."""
    path = _write(tmp_path, "ca.der", b"\x30\x82\x01\x0a")
    with pytest.raises(ConfigurationError) as info:
        _pem.load_ca_certificates(path, "--ca")
    assert str(info.value) == f"ca {path}: CA file holds no PEM certificates"


def test_read_passphrase_strips_line_end_only(tmp_path: Path) -> None:
    """read_passphrase drops the trailing line end, CRLF too, and keeps other spaces."""
    assert _pem.read_passphrase(_write(tmp_path, "a", b"s3cret\r\n"), "-p") == b"s3cret"
    assert _pem.read_passphrase(_write(tmp_path, "b", b" s3 cret \n"), "-p") == (
        b" s3 cret "
    )
    assert _pem.read_passphrase(_write(tmp_path, "c", b"s3cret"), "-p") == b"s3cret"


def test_read_passphrase_empty(tmp_path: Path) -> None:
    """An empty passphrase file is refused, naming the option and the file."""
    path = _write(tmp_path, "empty", b"")
    with pytest.raises(ConfigurationError) as info:
        _pem.read_passphrase(path, "--key-passphrase-file")
    assert str(info.value) == f"key_passphrase_file {path}: passphrase file is empty"


@pytest.mark.parametrize("key_type", [trustme.KeyType.RSA, trustme.KeyType.ECDSA])
def test_load_private_key_types(
    ca: trustme.CA, tmp_path: Path, key_type: trustme.KeyType
) -> None:
    """RSA and ECDSA keys load and match their certificates."""
    chain, key_path = write_cert(
        ca.issue_cert("localhost", key_type=key_type), tmp_path, "s"
    )
    key = _pem.load_private_key(key_path, "--key")
    (certificate,) = x509.load_pem_x509_certificates(chain.read_bytes())
    _pem.check_key_matches(certificate, key, key_path, "--key")
    assert _pem.public_key_der(key) == _pem.public_key_der(certificate)


def test_load_traditional_encrypted_key(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A key encrypted in OpenSSL's traditional format loads with its passphrase."""
    encrypted = _encrypt(tls_files.server_key, b"s3cret", tmp_path, pkcs8=False)
    assert b"ENCRYPTED" in encrypted.read_bytes()
    key = _pem.load_private_key(encrypted, "--key", b"s3cret")
    assert _pem.public_key_der(key) == _pem.public_key_der(
        _pem.load_private_key(tls_files.server_key, "--key")
    )
    with pytest.raises(ConfigurationError, match="the private key is encrypted"):
        _pem.load_private_key(encrypted, "--key")


def test_encrypted_key_names_given_passphrase_option(
    tls_files: TLSFiles, tmp_path: Path
) -> None:
    """The passphrase option named in errors is the one the caller gives."""
    encrypted = _encrypt(tls_files.server_key, b"s3cret", tmp_path)
    with pytest.raises(ConfigurationError) as info:
        _pem.load_private_key(encrypted, "key", passphrase_option="--key-passphrase-file")
    assert str(info.value) == (
        f"key {encrypted}: the private key is encrypted: give its passphrase with "
        "key_passphrase_file"
    )
    with pytest.raises(ConfigurationError) as info:
        _pem.load_private_key(
            encrypted, "key", b"wrong", passphrase_option="key_passphrase_file"
        )
    assert (
        str(info.value) == f"key {encrypted}: wrong passphrase (from key_passphrase_file)"
    )


def test_malformed_private_key(tmp_path: Path) -> None:
    """A PEM private key block whose body is not a key is refused as malformed."""
    path = _write(
        tmp_path,
        "bad.key",
        b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    with pytest.raises(ConfigurationError) as info:
        _pem.load_private_key(path, "--key")
    assert str(info.value) == f"private_key {path}: holds a malformed PEM private key"


def test_key_type_unusable_for_tls(tmp_path: Path) -> None:
    """A key-agreement-only key (X25519) is refused as unusable for TLS."""
    key = x25519.X25519PrivateKey.generate()
    path = _write(
        tmp_path,
        "x25519.key",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    with pytest.raises(ConfigurationError) as info:
        _pem.load_private_key(path, "--key")
    assert str(info.value) == (
        f"private_key {path}: a {type(key).__name__} cannot be used for TLS"
    )


def test_errors_never_contain_key_material(tls_files: TLSFiles, tmp_path: Path) -> None:
    """Errors about a key name its file but never quote what it holds."""
    encrypted = _encrypt(tls_files.server_key, b"s3cret", tmp_path)
    pem = tls_files.server_key.read_bytes().decode()
    body = "".join(pem.splitlines()[1:-1])
    messages = []
    for call in (
        lambda: _pem.load_private_key(encrypted, "--key", b"wrong"),
        lambda: _pem.load_private_key(encrypted, "--key"),
        lambda: _pem.load_private_key(tls_files.server_key, "--key", b"s3cret"),
        lambda: _pem.check_key_matches(
            _pem.load_certificate_chain(tls_files.client_cert, "--cert")[0],
            _pem.load_private_key(tls_files.server_key, "--key"),
            tls_files.server_key,
            "--key",
        ),
    ):
        with pytest.raises(ConfigurationError) as info:
            call()
        messages.append(str(info.value))
    for message in messages:
        assert "s3cret" not in message
        assert body[:16] not in message
        assert body[-16:] not in message


def test_check_key_matches_names_certificate(tls_files: TLSFiles) -> None:
    """A mismatched key is reported against the certificate's subject and key file."""
    (certificate,) = _pem.load_certificate_chain(tls_files.server_cert, "--cert")
    key = _pem.load_private_key(tls_files.client_key, "--key")
    with pytest.raises(ConfigurationError) as info:
        _pem.check_key_matches(certificate, key, tls_files.client_key, "--key")
    assert info.value.path == tls_files.client_key
    assert info.value.reason == (
        f"private key does not match the certificate {_pem.describe(certificate)}"
    )


def test_public_key_der_differs_between_keys(tls_files: TLSFiles) -> None:
    """public_key_der tells two different keys apart and agrees with the certificate."""
    server = _pem.load_private_key(tls_files.server_key, "--key")
    client = _pem.load_private_key(tls_files.client_key, "--key")
    (certificate,) = _pem.load_certificate_chain(tls_files.server_cert, "--cert")
    assert _pem.public_key_der(server) != _pem.public_key_der(client)
    assert _pem.public_key_der(server) == _pem.public_key_der(certificate)
    assert _pem.public_key_der(server).startswith(b"\x30")


def test_chain_may_end_with_root(ca: trustme.CA, tmp_path: Path) -> None:
    """A chain file that ends with the self-signed root loads, the root included."""
    leaf = ca.create_child_ca().issue_cert("localhost")
    path = _write(
        tmp_path,
        "full.pem",
        b"".join(blob.bytes() for blob in leaf.cert_chain_pems) + ca.cert_pem.bytes(),
    )
    assert len(_pem.load_certificate_chain(path, "--cert")) == 3


@pytest.mark.parametrize(
    ("root_type", "intermediate_type", "leaf_type"),
    [
        (trustme.KeyType.RSA, trustme.KeyType.RSA, trustme.KeyType.RSA),
        (trustme.KeyType.RSA, trustme.KeyType.ECDSA, trustme.KeyType.RSA),
        (trustme.KeyType.ECDSA, trustme.KeyType.RSA, trustme.KeyType.ECDSA),
    ],
)
def test_chain_order_checked_across_key_types(
    tmp_path: Path,
    root_type: trustme.KeyType,
    intermediate_type: trustme.KeyType,
    leaf_type: trustme.KeyType,
) -> None:
    """The chain order check works for RSA and ECDSA issuers alike."""
    intermediate = trustme.CA(key_type=root_type).create_child_ca(
        key_type=intermediate_type
    )
    leaf = intermediate.issue_cert("localhost", key_type=leaf_type)
    served, issuer = (blob.bytes() for blob in leaf.cert_chain_pems)
    assert (
        len(_pem.load_certificate_chain(_write(tmp_path, "a", served + issuer), "-c")) == 2
    )
    with pytest.raises(ConfigurationError, match="certificate chain out of order"):
        _pem.load_certificate_chain(_write(tmp_path, "b", issuer + served), "-c")
