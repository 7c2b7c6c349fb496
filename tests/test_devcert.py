"""
Tests for the development default (L{tlsecho._settings._devcert}): a local CA and
a C{localhost} certificate made once in the state directory, reused after,
renewed near expiry.

conftest gives every test its own C{XDG_STATE_HOME}, so nothing here touches the real
development CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tlsecho import (
    ConfigurationError,
    DevelopmentCertificate,
    Material,
    TLSSettings,
    ensure_development_certificate,
    server_creator,
)
from tlsecho._settings import _devcert
from tlsecho._settings._devcert import development_ca_path, state_directory

FILES = ("dev-ca.pem", "dev-ca.key", "localhost.pem", "localhost.key")


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _contents(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in FILES}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _later(monkeypatch: pytest.MonkeyPatch, days: int) -> None:
    """Make the module believe it is C{days} days from now."""
    moved = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)
    monkeypatch.setattr(_devcert, "_now", lambda: moved)


def test_creates_ca_and_server_certificate(tmp_path: Path) -> None:
    """The first call creates the CA and the server certificate and key files."""
    directory = tmp_path / "dev"
    paths = ensure_development_certificate(directory)
    assert paths == DevelopmentCertificate(
        ca=directory / "dev-ca.pem",
        certificate=directory / "localhost.pem",
        private_key=directory / "localhost.key",
    )
    for name in FILES:
        assert (directory / name).is_file()


def test_server_certificate_names_localhost_and_loopback(tmp_path: Path) -> None:
    """The server certificate is valid for localhost, 127.0.0.1 and ::1."""
    paths = ensure_development_certificate(tmp_path)
    san = (
        _certificate(paths.certificate)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }


def test_server_certificate_issued_by_the_ca(tmp_path: Path) -> None:
    """The server certificate is signed by the development CA, which is a CA."""
    paths = ensure_development_certificate(tmp_path)
    ca = _certificate(paths.ca)
    server = _certificate(paths.certificate)
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    constraints = server.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert not constraints.ca
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage


def test_keys_match_certificates(tmp_path: Path) -> None:
    """Each key file holds the private key of its certificate."""
    ensure_development_certificate(tmp_path)
    for stem in ("dev-ca", "localhost"):
        key = serialization.load_pem_private_key(
            (tmp_path / f"{stem}.key").read_bytes(), None
        )
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.public_key() == _certificate(tmp_path / f"{stem}.pem").public_key()


def test_key_files_readable_by_owner_only(tmp_path: Path) -> None:
    """Both private key files are created with mode 0600."""
    ensure_development_certificate(tmp_path)
    assert _mode(tmp_path / "dev-ca.key") == 0o600
    assert _mode(tmp_path / "localhost.key") == 0o600


def test_certificate_files_are_not_private(tmp_path: Path) -> None:
    """Certificates are public: mode 0644, so clients can read the CA."""
    ensure_development_certificate(tmp_path)
    assert _mode(tmp_path / "dev-ca.pem") == 0o644
    assert _mode(tmp_path / "localhost.pem") == 0o644


def test_new_directory_is_private(tmp_path: Path) -> None:
    """A state directory it creates is accessible to the owner only."""
    directory = tmp_path / "new" / "tlsecho"
    ensure_development_certificate(directory)
    assert _mode(directory) == 0o700


def test_no_temporary_files_left(tmp_path: Path) -> None:
    """Files are written atomically and no temporary file is left behind."""
    ensure_development_certificate(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)


def test_second_call_reuses_files(tmp_path: Path) -> None:
    """A second call leaves every file byte for byte as it was."""
    first = ensure_development_certificate(tmp_path)
    before = _contents(tmp_path)
    second = ensure_development_certificate(tmp_path)
    assert second == first
    assert _contents(tmp_path) == before


def test_server_certificate_near_expiry_reissued_ca_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server certificate within 30 days of expiry is re-issued by the same CA."""
    ensure_development_certificate(tmp_path)
    before = _contents(tmp_path)
    old = _certificate(tmp_path / "localhost.pem")
    _later(monkeypatch, 70)
    ensure_development_certificate(tmp_path)
    after = _contents(tmp_path)
    assert after["dev-ca.pem"] == before["dev-ca.pem"]
    assert after["dev-ca.key"] == before["dev-ca.key"]
    assert after["localhost.pem"] != before["localhost.pem"]
    assert after["localhost.key"] != before["localhost.key"]
    new = _certificate(tmp_path / "localhost.pem")
    assert new.not_valid_after_utc > old.not_valid_after_utc
    new.verify_directly_issued_by(_certificate(tmp_path / "dev-ca.pem"))


def test_server_certificate_not_yet_near_expiry_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server certificate with more than 30 days left is kept."""
    ensure_development_certificate(tmp_path)
    before = _contents(tmp_path)
    _later(monkeypatch, 50)
    ensure_development_certificate(tmp_path)
    assert _contents(tmp_path) == before


def test_ca_near_expiry_replaced_with_server_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CA near expiry is replaced, and the server certificate re-issued by the new CA."""
    ensure_development_certificate(tmp_path)
    before = _contents(tmp_path)
    _later(monkeypatch, 3640)
    ensure_development_certificate(tmp_path)
    after = _contents(tmp_path)
    assert after["dev-ca.pem"] != before["dev-ca.pem"]
    assert after["localhost.pem"] != before["localhost.pem"]
    _certificate(tmp_path / "localhost.pem").verify_directly_issued_by(
        _certificate(tmp_path / "dev-ca.pem")
    )


def test_lost_ca_key_makes_new_ca_and_server_certificate(tmp_path: Path) -> None:
    """Without the CA key a new CA is made, and the server certificate re-issued by it."""
    ensure_development_certificate(tmp_path)
    before = _contents(tmp_path)
    (tmp_path / "dev-ca.key").unlink()
    ensure_development_certificate(tmp_path)
    after = _contents(tmp_path)
    assert after["dev-ca.pem"] != before["dev-ca.pem"]
    _certificate(tmp_path / "localhost.pem").verify_directly_issued_by(
        _certificate(tmp_path / "dev-ca.pem")
    )


def test_lost_server_key_reissues_server_certificate(tmp_path: Path) -> None:
    """Without the server key, the server certificate is re-issued; the CA is kept."""
    ensure_development_certificate(tmp_path)
    before = _contents(tmp_path)
    (tmp_path / "localhost.key").unlink()
    ensure_development_certificate(tmp_path)
    after = _contents(tmp_path)
    assert after["dev-ca.pem"] == before["dev-ca.pem"]
    assert after["localhost.pem"] != before["localhost.pem"]


def test_corrupt_server_certificate_reissued(tmp_path: Path) -> None:
    """A server certificate file that cannot be read as PEM is re-issued."""
    ensure_development_certificate(tmp_path)
    (tmp_path / "localhost.pem").write_bytes(b"garbage")
    ensure_development_certificate(tmp_path)
    _certificate(tmp_path / "localhost.pem").verify_directly_issued_by(
        _certificate(tmp_path / "dev-ca.pem")
    )


def test_server_certificate_from_another_ca_reissued(tmp_path: Path) -> None:
    """A server certificate not issued by the current CA is re-issued by it."""
    ensure_development_certificate(tmp_path / "other")
    ensure_development_certificate(tmp_path / "mine")
    for name in ("localhost.pem", "localhost.key"):
        (tmp_path / "mine" / name).write_bytes((tmp_path / "other" / name).read_bytes())
    ensure_development_certificate(tmp_path / "mine")
    _certificate(tmp_path / "mine" / "localhost.pem").verify_directly_issued_by(
        _certificate(tmp_path / "mine" / "dev-ca.pem")
    )


def test_ca_key_not_matching_ca_certificate_is_not_used(tmp_path: Path) -> None:
    """A CA key that does not belong to the CA certificate never signs a certificate."""
    ensure_development_certificate(tmp_path / "other")
    ensure_development_certificate(tmp_path / "mine")
    mine = tmp_path / "mine"
    (mine / "dev-ca.key").write_bytes((tmp_path / "other" / "dev-ca.key").read_bytes())
    (mine / "localhost.pem").unlink()
    ensure_development_certificate(mine)
    _certificate(mine / "localhost.pem").verify_directly_issued_by(
        _certificate(mine / "dev-ca.pem")
    )


def test_files_serve_tls(tmp_path: Path) -> None:
    """The files load as server settings and make a server connection creator."""
    paths = ensure_development_certificate(tmp_path)
    settings = TLSSettings(certificate=paths.certificate, private_key=paths.private_key)
    server_creator(settings)
    assert Material.load(TLSSettings(ca=(paths.ca,))).trusted == (_certificate(paths.ca),)


def test_state_directory_honours_xdg_state_home(state_home: Path) -> None:
    """The state directory is $XDG_STATE_HOME/tlsecho."""
    assert state_directory() == state_home / "tlsecho"


@pytest.mark.parametrize("value", [None, ""])
def test_state_directory_defaults_to_local_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    """Without XDG_STATE_HOME (unset or empty) it is ~/.local/state/tlsecho."""
    if value is None:
        monkeypatch.delenv("XDG_STATE_HOME")
    else:
        monkeypatch.setenv("XDG_STATE_HOME", value)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert state_directory() == tmp_path / ".local" / "state" / "tlsecho"


def test_default_directory_is_state_directory(state_home: Path) -> None:
    """With no directory given, the files are made in the state directory."""
    paths = ensure_development_certificate()
    assert paths.ca == state_home / "tlsecho" / "dev-ca.pem"
    assert paths.certificate.is_file()
    assert development_ca_path() == paths.ca


def test_development_ca_path(tmp_path: Path) -> None:
    """development_ca_path names dev-ca.pem in the directory, existing or not."""
    assert development_ca_path(tmp_path) == tmp_path / "dev-ca.pem"
    assert not development_ca_path(tmp_path).exists()


# Files others could tamper with -----------------------------------------------------


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660])
def test_ca_key_open_to_others_is_refused_not_replaced(tmp_path: Path, mode: int) -> None:
    """A CA key its group or others may read is refused with chmod 600, not
    silently used or replaced."""
    ensure_development_certificate(tmp_path)
    key = tmp_path / "dev-ca.key"
    key.chmod(mode)
    before = _contents(tmp_path)
    with pytest.raises(ConfigurationError) as info:
        ensure_development_certificate(tmp_path)
    assert str(info.value) == (
        f"development CA {key}: CA private key file is readable by its group or other "
        f"users (mode {mode:04o}); fix it with: chmod 600 {key}"
    )
    assert _contents(tmp_path) == before
    key.chmod(0o600)
    ensure_development_certificate(tmp_path)


@pytest.mark.parametrize("mode", [0o770, 0o777, 0o720, 0o702, 0o1777])
def test_directory_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    """A state directory its group or others may write is refused with chmod 700,
    by the server's development default and by the client's check alike."""
    directory = tmp_path / "tlsecho"
    ensure_development_certificate(directory)
    directory.chmod(mode)
    expected = (
        f"development CA {directory}: state directory is writable by its group or "
        f"other users (mode {mode:04o}); fix it with: chmod 700 {directory}"
    )
    for check in (
        ensure_development_certificate,
        lambda d: _devcert.check_development_files(d, server=False),
    ):
        with pytest.raises(ConfigurationError) as info:
            check(directory)
        assert str(info.value) == expected


def test_directory_readable_by_others_is_accepted(tmp_path: Path) -> None:
    """A state directory others may read but not write (0755) is fine: the keys in
    it are 0600."""
    directory = tmp_path / "tlsecho"
    ensure_development_certificate(directory)
    directory.chmod(0o755)
    ensure_development_certificate(directory)
    _devcert.check_development_files(directory, server=False)


def test_client_check_ignores_the_server_key(tmp_path: Path) -> None:
    """The client's check looks at the CA's files only: a loose server key matters
    to the server, not to a client trusting the CA."""
    ensure_development_certificate(tmp_path)
    (tmp_path / "localhost.key").chmod(0o644)
    _devcert.check_development_files(tmp_path, server=False)
    with pytest.raises(ConfigurationError, match=r"chmod 600 .*localhost\.key$"):
        ensure_development_certificate(tmp_path)
