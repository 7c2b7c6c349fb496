"""
Tests for L{tlsecho.TLSSettings}: every bad setting fails at construction with one
line naming the option, the file and the reason; good settings load (into a
L{tlsecho.Material}), are frozen, and are changed by copying.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tlsecho import ConfigurationError, Material, TLSSettings, TLSVersion, VerifyMode
from tlsecho._settings._errors import Surface
from tlsecho._settings._tls_settings import parse_tls_version

from conftest import TLSFiles, write_cert

#: The user id tests drop to, as root, to check permissions (``nobody``).
NOBODY = 65534


def _subject(path: Path) -> str:
    """The RFC 4514 subject of the first certificate in a PEM file."""
    return x509.load_pem_x509_certificates(path.read_bytes())[0].subject.rfc4514_string()


def _encrypted_key(key: Path, passphrase: bytes, directory: Path) -> Path:
    """Write the key in ``key`` encrypted with ``passphrase``; return the new file."""
    loaded = serialization.load_pem_private_key(key.read_bytes(), None)
    encrypted = directory / "encrypted.key"
    encrypted.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    encrypted.chmod(0o600)  # private key material: owner only
    return encrypted


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    path.chmod(0o600)  # private key material: owner only
    return path


@contextlib.contextmanager
def _unprivileged() -> Iterator[None]:
    """
    Run the block without root's power to read any file.

    Root ignores file modes, so as root the effective user id is dropped to
    ``nobody`` for the block; otherwise nothing changes.
    """
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


def _error(**settings: object) -> ConfigurationError:
    """The ConfigurationError that TLSSettings(**settings) raises."""
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(**settings)  # type: ignore[arg-type]
    return info.value


# Bad input: one test per case of DESIGN.md "Bad input".


def test_missing_certificate_file(tmp_path: Path) -> None:
    """A certificate file that does not exist is refused, naming the option and the file."""
    missing = tmp_path / "nope.pem"
    error = _error(certificate=missing)
    assert str(error) == f"certificate {missing}: no such file"
    assert (error.option, error.path, error.reason) == (
        "certificate",
        missing,
        "no such file",
    )


def test_missing_key_file(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A private_key file that does not exist is refused, naming the field and the file."""
    missing = tmp_path / "nope.key"
    error = _error(certificate=tls_files.server_cert, private_key=missing)
    assert str(error) == f"private_key {missing}: no such file"


def test_missing_ca_file(tmp_path: Path) -> None:
    """A ca file that does not exist is refused, naming ca and the file."""
    missing = tmp_path / "nope-ca.pem"
    assert str(_error(ca=(missing,))) == f"ca {missing}: no such file"


def test_missing_passphrase_file(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A key_passphrase_file that does not exist is refused, naming it."""
    missing = tmp_path / "nope.txt"
    error = _error(
        certificate=tls_files.server_cert,
        private_key=tls_files.server_key,
        key_passphrase_file=missing,
    )
    assert str(error) == f"key_passphrase_file {missing}: no such file"


def test_unreadable_certificate_file(tls_files: TLSFiles) -> None:
    """
    A --cert file without read permission is refused with "permission denied".

    Root reads any file whatever its mode, so when the tests run as root the
    settings are built with the effective user id dropped to ``nobody``, in a
    directory ``nobody`` may enter: only the file's mode then stops the read.
    """
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)
        unreadable = Path(directory) / "server.pem"
        unreadable.write_bytes(tls_files.server_cert.read_bytes())
        unreadable.chmod(0o000)
        with _unprivileged(), pytest.raises(ConfigurationError) as info:
            TLSSettings(certificate=unreadable, private_key=tls_files.server_key)
    assert str(info.value) == f"certificate {unreadable}: permission denied"


def test_certificate_path_is_a_directory(tmp_path: Path) -> None:
    """A certificate path that is a directory is refused as unreadable, even for root."""
    assert str(_error(certificate=tmp_path)) == (
        f"certificate {tmp_path}: is a directory, not a file"
    )


def test_certificate_not_pem(tmp_path: Path) -> None:
    """A certificate file that is not PEM at all is refused as not PEM."""
    garbage = _write(tmp_path, "garbage.pem", b"\x30\x82\x01\x0a binary DER, not PEM")
    assert str(_error(certificate=garbage)) == (
        f"certificate {garbage}: not a PEM file (expected -----BEGIN CERTIFICATE-----)"
    )


def test_certificate_file_holding_a_key(tls_files: TLSFiles) -> None:
    """A certificate file that holds only a key is refused with a hint that it is a key."""
    assert str(_error(certificate=tls_files.server_key)) == (
        f"certificate {tls_files.server_key}: holds no PEM certificate (is it a key?)"
    )


def test_key_not_pem(tls_files: TLSFiles) -> None:
    """A private_key file that holds a certificate, not a key, is refused naming it."""
    error = _error(certificate=tls_files.server_cert, private_key=tls_files.server_cert)
    assert str(error) == (
        f"private_key {tls_files.server_cert}: holds no PEM private key "
        "(expected -----BEGIN PRIVATE KEY-----)"
    )


def test_certificate_without_key_and_no_key_option(tls_files: TLSFiles) -> None:
    """Without private_key the certificate file must hold the key, or it is named."""
    error = _error(certificate=tls_files.server_cert)
    assert str(error) == (
        f"certificate {tls_files.server_cert}: holds no PEM private key "
        "(expected -----BEGIN PRIVATE KEY-----); give its key file with private_key"
    )


def test_key_does_not_match_certificate(tls_files: TLSFiles) -> None:
    """A key that is not the certificate's is refused, naming private_key and its file."""
    error = _error(certificate=tls_files.server_cert, private_key=tls_files.client_key)
    assert str(error) == (
        f"private_key {tls_files.client_key}: private key does not match the certificate "
        f"{_subject(tls_files.server_cert)}"
    )


def test_encrypted_key_without_passphrase(tls_files: TLSFiles, tmp_path: Path) -> None:
    """An encrypted key without key_passphrase_file is refused, saying how to fix it."""
    encrypted = _encrypted_key(tls_files.server_key, b"s3cret", tmp_path)
    error = _error(certificate=tls_files.server_cert, private_key=encrypted)
    assert str(error) == (
        f"private_key {encrypted}: the private key is encrypted: give its passphrase with "
        "key_passphrase_file"
    )


def test_encrypted_key_with_wrong_passphrase(tls_files: TLSFiles, tmp_path: Path) -> None:
    """An encrypted key with a wrong passphrase is refused, naming the key file."""
    encrypted = _encrypted_key(tls_files.server_key, b"s3cret", tmp_path)
    wrong = _write(tmp_path, "passphrase.txt", b"not it\n")
    error = _error(
        certificate=tls_files.server_cert,
        private_key=encrypted,
        key_passphrase_file=wrong,
    )
    assert str(error) == (
        f"private_key {encrypted}: wrong passphrase (from key_passphrase_file)"
    )


def test_encrypted_key_with_right_passphrase(tls_files: TLSFiles, tmp_path: Path) -> None:
    """An encrypted key loads with its passphrase, the file's line end not included."""
    encrypted = _encrypted_key(tls_files.server_key, b"s3cret", tmp_path)
    passphrase = _write(tmp_path, "passphrase.txt", b"s3cret\n")
    settings = TLSSettings(
        certificate=tls_files.server_cert,
        private_key=encrypted,
        key_passphrase_file=passphrase,
    )
    assert Material.load(settings).key is not None
    assert settings.key_passphrase_file == passphrase


def test_passphrase_for_unencrypted_key(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A passphrase for a key that is not encrypted is refused, naming both."""
    passphrase = _write(tmp_path, "passphrase.txt", b"s3cret\n")
    error = _error(
        certificate=tls_files.server_cert,
        private_key=tls_files.server_key,
        key_passphrase_file=passphrase,
    )
    assert error.option == "key_passphrase_file"
    assert str(error) == (
        f"key_passphrase_file: the private key in {tls_files.server_key} is not "
        "encrypted; drop key_passphrase_file"
    )


def test_empty_passphrase_file(tls_files: TLSFiles, tmp_path: Path) -> None:
    """An empty passphrase file is refused, naming it."""
    encrypted = _encrypted_key(tls_files.server_key, b"s3cret", tmp_path)
    empty = _write(tmp_path, "passphrase.txt", b"\n")
    error = _error(
        certificate=tls_files.server_cert,
        private_key=encrypted,
        key_passphrase_file=empty,
    )
    assert str(error) == f"key_passphrase_file {empty}: passphrase file is empty"


def test_passphrase_file_without_certificate(tmp_path: Path) -> None:
    """A passphrase file without certificate and private_key is refused."""
    passphrase = _write(tmp_path, "passphrase.txt", b"s3cret\n")
    assert str(_error(key_passphrase_file=passphrase)) == (
        "key_passphrase_file: needs certificate and private_key"
    )


def test_chain_out_of_order(ca: trustme.CA, tmp_path: Path) -> None:
    """A chain with the intermediate before the server certificate is refused."""
    leaf = ca.create_child_ca().issue_cert("localhost")
    served, intermediate = (blob.bytes() for blob in leaf.cert_chain_pems)
    reversed_chain = _write(tmp_path, "chain.pem", intermediate + served)
    key = _write(tmp_path, "server.key", leaf.private_key_pem.bytes())
    served_subject = x509.load_pem_x509_certificate(served).subject.rfc4514_string()
    issuer_subject = x509.load_pem_x509_certificate(intermediate).subject.rfc4514_string()
    error = _error(certificate=reversed_chain, private_key=key)
    assert str(error) == (
        f"certificate {reversed_chain}: certificate chain out of order: certificate 2 "
        f"({served_subject}) did not issue certificate 1 ({issuer_subject}); "
        "list the server certificate first, then each issuer in turn"
    )


def test_chain_with_an_unrelated_certificate(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A chain whose second certificate did not issue the first is refused."""
    chain = _write(
        tmp_path,
        "chain.pem",
        tls_files.server_cert.read_bytes() + tls_files.client_ca.read_bytes(),
    )
    error = _error(certificate=chain, private_key=tls_files.server_key)
    assert error.option == "certificate"
    assert error.path == chain
    assert error.reason.startswith(
        f"certificate chain out of order: certificate 2 "
        f"({_subject(tls_files.client_ca)}) did not issue certificate 1"
    )


def test_chain_in_order_loads(ca: trustme.CA, tmp_path: Path) -> None:
    """A server certificate followed by its intermediate loads as a two-link chain."""
    chain, key = write_cert(ca.create_child_ca().issue_cert("localhost"), tmp_path, "s")
    material = Material.load(TLSSettings(certificate=chain, private_key=key))
    assert [c.subject.rfc4514_string() for c in material.chain] == [
        c.subject.rfc4514_string()
        for c in x509.load_pem_x509_certificates(chain.read_bytes())
    ]
    assert len(material.chain) == 2


def test_expired_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    """An expired certificate is refused, saying when it expired."""
    now = datetime.datetime.now(datetime.UTC)
    expired = now - datetime.timedelta(days=1)
    chain, key = write_cert(
        ca.issue_cert("localhost", not_after=expired), tmp_path, "expired"
    )
    error = _error(certificate=chain, private_key=key)
    assert str(error) == (
        f"certificate {chain}: certificate {_subject(chain)} has expired "
        f"(on {expired:%Y-%m-%d %H:%M:%S} UTC)"
    )


def test_not_yet_valid_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    """A certificate that is not valid yet is refused, saying from when it is valid."""
    now = datetime.datetime.now(datetime.UTC)
    start = now + datetime.timedelta(days=1)
    chain, key = write_cert(
        ca.issue_cert(
            "localhost", not_before=start, not_after=now + datetime.timedelta(days=30)
        ),
        tmp_path,
        "future",
    )
    error = _error(certificate=chain, private_key=key)
    assert str(error) == (
        f"certificate {chain}: certificate {_subject(chain)} is not valid yet "
        f"(valid from {start:%Y-%m-%d %H:%M:%S} UTC)"
    )


def test_ca_file_without_certificates(tls_files: TLSFiles, tmp_path: Path) -> None:
    """A ca file holding no certificate (here, a key) is refused, naming it."""
    assert str(_error(ca=(tls_files.client_key,))) == (
        f"ca {tls_files.client_key}: CA file holds no PEM certificates"
    )
    empty = _write(tmp_path, "empty.pem", b"")
    assert str(_error(ca=(empty,))) == f"ca {empty}: CA file holds no PEM certificates"


def test_bad_second_ca_file_is_named(tls_files: TLSFiles, tmp_path: Path) -> None:
    """With several --ca files, the bad one is the one named."""
    empty = _write(tmp_path, "empty.pem", b"")
    error = _error(ca=(tls_files.ca, empty))
    assert error.path == empty


def test_unknown_cipher_string() -> None:
    """A cipher string from which OpenSSL selects nothing is refused, naming ciphers."""
    assert str(_error(ciphers="NO-SUCH-CIPHER")) == (
        "ciphers: OpenSSL knows no cipher in 'NO-SUCH-CIPHER' "
        "(see 'openssl ciphers -v' for the names)"
    )


def test_unknown_verify_mode() -> None:
    """VerifyMode.parse refuses an unknown mode, naming the option and the choices."""
    with pytest.raises(ConfigurationError) as info:
        VerifyMode.parse("sometimes")
    assert str(info.value) == (
        "verify: unknown verify mode 'sometimes' (expected none, optional or required)"
    )


def test_unknown_verify_mode_names_given_option() -> None:
    """VerifyMode.parse names the option it is given, such as a TOML key."""
    with pytest.raises(ConfigurationError) as info:
        VerifyMode.parse("yes", "verify")
    assert info.value.option == "verify"


def test_verify_mode_parse_accepts_any_case() -> None:
    """VerifyMode.parse accepts each mode in any case and with surrounding space."""
    assert VerifyMode.parse("none") is VerifyMode.NONE
    assert VerifyMode.parse(" Optional ") is VerifyMode.OPTIONAL
    assert VerifyMode.parse("REQUIRED") is VerifyMode.REQUIRED


@pytest.mark.parametrize("text", ["1.4", "3", "", "TLSv1.4", "SSLv3"])
def test_unknown_tls_version(text: str) -> None:
    """A TLS version other than 1.0 to 1.3 is refused, naming the option."""
    with pytest.raises(ConfigurationError) as info:
        TLSSettings.from_strings(max_tls=text)
    assert str(info.value) == (
        f"max_tls: unknown TLS version {text!r} "
        "(expected 1.2 or 1.3; 1.0 or 1.1 with profile old)"
    )


@pytest.mark.parametrize("option", ["min_tls", "max_tls"])
@pytest.mark.parametrize("text", ["1.1", "1.0"])
def test_legacy_tls_version_needs_profile_old(option: str, text: str) -> None:
    """TLS 1.0 or 1.1 outside profile old is refused, pointing to profile old."""
    for profile in (None, "intermediate", "modern"):
        with pytest.raises(ConfigurationError) as info:
            TLSSettings.from_strings(profile=profile, **{option: text})
        assert str(info.value) == (
            f"{option}: TLS {text} is below what profile {profile or 'intermediate'} "
            "allows (1.2); use profile old to test legacy peers"
        )


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("1.2", TLSVersion.TLSv1_2),
        ("1.3", TLSVersion.TLSv1_3),
        ("TLSv1.3", TLSVersion.TLSv1_3),
        (" 1.2 ", TLSVersion.TLSv1_2),
    ],
)
def test_tls_version_spellings(text: str, version: TLSVersion) -> None:
    """TLS versions are accepted as 1.2/1.3, also spelt TLSv1.3."""
    assert parse_tls_version(text, "--min-tls") is version


def test_min_tls_above_max_tls() -> None:
    """A minimum TLS version above the maximum is refused, naming both options."""
    error = _error(min_tls=TLSVersion.TLSv1_3, max_tls=TLSVersion.TLSv1_2)
    assert str(error) == "min_tls: 1.3 is above max_tls 1.2"


def test_min_tls_equal_to_max_tls() -> None:
    """The same minimum and maximum TLS version is accepted."""
    settings = TLSSettings(min_tls=TLSVersion.TLSv1_3, max_tls=TLSVersion.TLSv1_3)
    assert (settings.min_tls, settings.max_tls) == (TLSVersion.TLSv1_3,) * 2


def test_key_without_certificate(tls_files: TLSFiles) -> None:
    """A private_key without a certificate is refused, naming private_key and its file."""
    error = _error(private_key=tls_files.server_key)
    assert str(error) == (
        f"private_key {tls_files.server_key}: needs certificate: "
        "a key alone cannot be served"
    )


def test_configuration_error_is_a_value_error(tmp_path: Path) -> None:
    """ConfigurationError subclasses ValueError, as the style guide asks."""
    with pytest.raises(ValueError, match="no such file"):
        TLSSettings(certificate=tmp_path / "nope.pem")


# Good input.


def test_loads_server_identity(tls_files: TLSFiles) -> None:
    """Valid --cert and --key load into the chain and the key, which match."""
    material = Material.load(
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    )
    assert [c.subject.rfc4514_string() for c in material.chain] == [
        _subject(tls_files.server_cert)
    ]
    assert material.key is not None
    assert material.key.public_key() == material.chain[0].public_key()


def test_defaults() -> None:
    """Settings with nothing given have no identity, trust nothing and allow 1.2-1.3."""
    settings = TLSSettings()
    material = Material.load(settings)
    assert material.chain == ()
    assert material.key is None
    assert material.trusted == ()
    assert settings.verify is None
    assert (settings.min_tls, settings.max_tls) == (None, None)
    assert (settings.policy.min_tls, settings.policy.max_tls) == (
        TLSVersion.TLSv1_2,
        TLSVersion.TLSv1_3,
    )


def test_key_defaults_to_certificate_file(ca: trustme.CA, tmp_path: Path) -> None:
    """Without --key, the key is read from the --cert file when it holds both."""
    leaf = ca.issue_cert("localhost")
    both = _write(tmp_path, "both.pem", leaf.private_key_and_cert_chain_pem.bytes())
    settings = TLSSettings(certificate=both)
    assert settings.private_key is None
    material = Material.load(settings)
    assert material.key is not None
    assert material.key.public_key() == material.chain[0].public_key()


def test_ca_files_load_all_certificates(tls_files: TLSFiles, tmp_path: Path) -> None:
    """Every certificate of every --ca file is trusted, in order."""
    bundle = _write(
        tmp_path,
        "bundle.pem",
        tls_files.ca.read_bytes() + tls_files.client_ca.read_bytes(),
    )
    material = Material.load(TLSSettings(ca=(bundle, tls_files.ca)))
    assert [c.subject.rfc4514_string() for c in material.trusted] == [
        _subject(tls_files.ca),
        _subject(tls_files.client_ca),
        _subject(tls_files.ca),
    ]


def test_string_paths_become_paths(tls_files: TLSFiles, tmp_path: Path) -> None:
    """Paths given as strings are stored as Path, and ca as a tuple of Path."""
    encrypted = _encrypted_key(tls_files.server_key, b"s3cret", tmp_path)
    passphrase = _write(tmp_path, "passphrase.txt", b"s3cret")
    settings = TLSSettings(
        certificate=str(tls_files.server_cert),  # type: ignore[arg-type]
        private_key=str(encrypted),  # type: ignore[arg-type]
        key_passphrase_file=str(passphrase),  # type: ignore[arg-type]
        ca=[str(tls_files.ca)],  # type: ignore[arg-type]
    )
    assert settings.certificate == tls_files.server_cert
    assert isinstance(settings.certificate, Path)
    assert settings.private_key == encrypted
    assert isinstance(settings.private_key, Path)
    assert settings.key_passphrase_file == passphrase
    assert isinstance(settings.key_passphrase_file, Path)
    assert settings.ca == (tls_files.ca,)
    assert isinstance(settings.ca, tuple)
    assert isinstance(settings.ca[0], Path)


def test_settings_are_frozen(tls_files: TLSFiles) -> None:
    """Assigning to a field of settings raises FrozenInstanceError."""
    settings = TLSSettings(ca=(tls_files.ca,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.ciphers = "NULL"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.ca = ()  # type: ignore[misc]
    assert settings.ciphers != "NULL"


def test_settings_compare_by_value(tls_files: TLSFiles) -> None:
    """Two settings with the same options are equal and hash alike."""
    one = TLSSettings(ca=(tls_files.ca,), verify=VerifyMode.REQUIRED)
    two = TLSSettings(ca=(str(tls_files.ca),), verify=VerifyMode.REQUIRED)  # type: ignore[arg-type]
    assert one == two
    assert hash(one) == hash(two)
    assert one != one.replace(verify=VerifyMode.NONE)


def test_replace_changes_a_field(tls_files: TLSFiles) -> None:
    """replace() returns a copy with the change and leaves the original alone."""
    settings = TLSSettings(ca=(tls_files.ca,))
    changed = settings.replace(max_tls=TLSVersion.TLSv1_2, verify=VerifyMode.NONE)
    assert (changed.max_tls, changed.verify) == (TLSVersion.TLSv1_2, VerifyMode.NONE)
    assert (settings.policy.max_tls, settings.verify) == (TLSVersion.TLSv1_3, None)
    assert changed.ca == settings.ca
    assert Material.load(changed).trusted == Material.load(settings).trusted


def test_replace_validates(tls_files: TLSFiles) -> None:
    """replace() checks the result like the constructor does."""
    settings = TLSSettings(min_tls=TLSVersion.TLSv1_3)
    with pytest.raises(ConfigurationError, match=r"^min_tls: 1.3 is above"):
        settings.replace(max_tls=TLSVersion.TLSv1_2)


def test_loading_again_rereads_files(tls_files: TLSFiles, ca: trustme.CA) -> None:
    """Loading the material again re-reads the files: a renewed certificate is picked up."""
    settings = TLSSettings(
        certificate=tls_files.server_cert, private_key=tls_files.server_key
    )
    loaded = Material.load(settings)
    old_serial = loaded.chain[0].serial_number
    renewed = ca.issue_cert("localhost", common_name="renewed")
    write_cert(renewed, tls_files.server_cert.parent, tls_files.server_cert.stem)

    reread = Material.load(settings)

    assert reread.chain[0].serial_number != old_serial
    assert reread.chain[0].subject.rfc4514_string() == _subject(tls_files.server_cert)
    assert "CN=renewed" in reread.chain[0].subject.rfc4514_string()
    assert reread.key is not None
    assert reread.key.public_key() == reread.chain[0].public_key()
    assert loaded.chain[0].serial_number == old_serial
    assert Material.load(settings.replace()).chain[0].serial_number != old_serial


def test_loading_again_rereads_ca_files(tls_files: TLSFiles) -> None:
    """Loading the material again re-reads --ca files: a changed bundle is picked up."""
    settings = TLSSettings(ca=(tls_files.ca,))
    tls_files.ca.write_bytes(tls_files.client_ca.read_bytes())
    assert [c.subject for c in Material.load(settings).trusted] == [
        x509.load_pem_x509_certificate(tls_files.client_ca.read_bytes()).subject
    ]


def test_replace_fails_when_files_became_invalid(tls_files: TLSFiles) -> None:
    """replace() raises if a file changed on disk into something invalid."""
    settings = TLSSettings(
        certificate=tls_files.server_cert, private_key=tls_files.server_key
    )
    tls_files.server_key.write_bytes(tls_files.client_key.read_bytes())
    with pytest.raises(ConfigurationError, match="private key does not match"):
        settings.replace()
    with pytest.raises(ConfigurationError, match="private key does not match"):
        Material.load(settings)


def test_from_strings_maps_to_typed_values(tls_files: TLSFiles) -> None:
    """from_strings() turns option strings into paths, enums and TLS versions."""
    settings = TLSSettings.from_strings(
        certificate=str(tls_files.server_cert),
        private_key=str(tls_files.server_key),
        ca=[str(tls_files.client_ca), str(tls_files.ca)],
        verify="required",
        ciphers="ECDHE-ECDSA-AES256-GCM-SHA384",
        min_tls="1.3",
        max_tls="1.3",
    )
    assert settings == TLSSettings(
        certificate=tls_files.server_cert,
        private_key=tls_files.server_key,
        ca=(tls_files.client_ca, tls_files.ca),
        verify=VerifyMode.REQUIRED,
        ciphers="ECDHE-ECDSA-AES256-GCM-SHA384",
        min_tls=TLSVersion.TLSv1_3,
        max_tls=TLSVersion.TLSv1_3,
    )
    assert settings.verify is VerifyMode.REQUIRED
    assert settings.min_tls is TLSVersion.TLSv1_3
    assert isinstance(settings.certificate, Path)


def test_from_strings_defaults() -> None:
    """from_strings() with nothing given equals the default settings."""
    assert TLSSettings.from_strings() == TLSSettings()


def test_from_strings_names_min_tls() -> None:
    """from_strings() names min_tls for a bad minimum version."""
    with pytest.raises(ConfigurationError, match=r"^min_tls: unknown TLS version '1.4'"):
        TLSSettings.from_strings(min_tls="1.4")
    with pytest.raises(ConfigurationError, match=r"^min_tls: TLS 1.1 is below what"):
        TLSSettings.from_strings(min_tls="1.1")


def test_from_strings_refuses_unknown_verify_mode() -> None:
    """from_strings() refuses an unknown verify mode, naming verify."""
    with pytest.raises(ConfigurationError, match=r"^verify: unknown verify mode 'on'"):
        TLSSettings.from_strings(verify="on")


def test_from_strings_min_above_max() -> None:
    """from_strings() refuses a minimum version above the maximum."""
    with pytest.raises(ConfigurationError, match=r"^min_tls: 1.3 is above max_tls 1.2$"):
        TLSSettings.from_strings(min_tls="1.3", max_tls="1.2")


def test_error_names_the_field_and_each_surface_its_own_spelling(tmp_path: Path) -> None:
    """
    A library caller reads the TLSSettings field; the command line and a TOML
    file read their own names for the same option, in the subject and the reason.
    """
    missing = tmp_path / "nope.pem"
    error = _error(certificate=missing)
    assert (error.option, error.flag) == ("certificate", "--cert")
    assert str(error) == f"certificate {missing}: no such file"
    assert error.for_surface(Surface.COMMAND_LINE) == f"--cert {missing}: no such file"
    assert error.for_surface(Surface.TOML) == f"cert {missing}: no such file"
    error = ConfigurationError("--key-passphrase-file", "needs --cert and --key")
    assert str(error) == "key_passphrase_file: needs certificate and private_key"
    assert error.for_surface(Surface.COMMAND_LINE) == (
        "--key-passphrase-file: needs --cert and --key"
    )
    assert error.for_surface(Surface.TOML) == "key-passphrase-file: needs cert and key"
    # Names outside the option table are left as they are.
    error = ConfigurationError("--config", "unknown key 'port'", missing)
    assert str(error) == error.for_surface(Surface.COMMAND_LINE)
