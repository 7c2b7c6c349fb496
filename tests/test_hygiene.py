"""
Tests for key and certificate hygiene and debugging (issue 3, items 7 and 8; issue 10,
item 10): private key and passphrase files others may read or write are refused with
the fix in the message (group-readable is fine); an existing key log its group or
others may read or write is refused; expired and not-yet-valid certificates are
refused; a served certificate expiring within 30 days, or self-signed, is warned about
(``Material.warnings()``, and the twistd plugin logs it once at start);
``--keylog-file`` and the client's ``SSLKEYLOGFILE`` write the NSS key log with a
warning; and no private key material ever appears in a log line or an error message.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.python import usage

from tlsecho import (
    ConfigurationError,
    Material,
    ServerConfiguration,
    SNICertificate,
    TLSSettings,
    TLSVersion,
    client_creator,
    server_creator,
)
from tlsecho.tap import Options

from _loopback import loopback
from _processes import ServerProcess, identity, run_client, run_twistd, start_server
from conftest import TLSFiles, write_cert

#: An NSS key log line: label, 32-byte client random, secret (hex).
KEYLOG_LINE = re.compile(
    r"^(?P<label>[A-Z_0-9]+) (?P<random>[0-9a-f]{64}) [0-9a-f]{64,96}$"
)


# Helpers ------------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_body(path: Path) -> list[str]:
    """The base64 lines of a PEM private key: what must never be printed."""
    lines = path.read_text().splitlines()
    body = [line for line in lines if line and not line.startswith("-----")]
    assert body
    return body


def _assert_no_key_material(text: str, *keys: Path) -> None:
    """Fail if any line (or 16-character piece) of the keys' PEM bodies is in text."""
    for key in keys:
        for line in _key_body(key):
            for start in range(0, max(len(line) - 16, 1), 16):
                assert line[start : start + 16] not in text, f"key material of {key} leaked"
    assert "PRIVATE KEY" not in text


def _self_signed(directory: Path, name: str = "self") -> tuple[Path, Path]:
    """A self-signed (non-CA) certificate for localhost, and its key (0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed.example")])
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _expiring(ca: trustme.CA, directory: Path, days: float) -> tuple[Path, Path]:
    """A localhost certificate from ``ca`` that expires ``days`` from now."""
    leaf = ca.issue_cert(
        "localhost", "127.0.0.1", not_after=_now() + datetime.timedelta(days=days)
    )
    return write_cert(leaf, directory, f"expiring-{days}")


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SSLKEYLOGFILE from the environment running the tests."""
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)


# Private key file permissions ---------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o666, 0o607])
def test_key_readable_by_others_is_refused(tls_files: TLSFiles, mode: int) -> None:
    """A --key file other users may read is refused, naming the file and mode and
    saying how to fix it."""
    tls_files.server_key.chmod(mode)
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    key = tls_files.server_key
    assert str(info.value) == (
        f"private_key {key}: private key file is readable by other users "
        f"(mode {mode:04o}); "
        f"fix it with: chmod o-rwx {key}"
    )


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400, 0o440, 0o660])
def test_key_private_or_group_readable_is_accepted(tls_files: TLSFiles, mode: int) -> None:
    """A key file readable only by its owner and group is accepted and served."""
    tls_files.server_key.chmod(mode)
    settings = TLSSettings(
        certificate=tls_files.server_cert, private_key=tls_files.server_key
    )
    client = client_creator(TLSSettings(ca=(tls_files.ca,)), "localhost")
    results: list[object] = []
    loopback(server_creator(settings), client).client.result.addBoth(results.append)
    assert results == [b"hello"]


def test_combined_file_readable_by_others_is_refused(
    tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A certificate file that also holds the key is checked too, naming certificate."""
    combined = tmp_path / "combined.pem"
    combined.write_bytes(
        tls_files.server_cert.read_bytes() + tls_files.server_key.read_bytes()
    )
    combined.chmod(0o644)
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(certificate=combined)
    assert info.value.option == "certificate"
    assert f"fix it with: chmod o-rwx {combined}" in str(info.value)
    combined.chmod(0o640)
    assert Material.load(TLSSettings(certificate=combined)).key is not None


def test_sni_key_readable_by_others_is_refused(tls_files: TLSFiles, tmp_path: Path) -> None:
    """An sni key file other users may read is refused, naming the sni entry."""
    cert, key = write_cert(tls_files.server_ca.issue_cert("echo.example"), tmp_path, "sni")
    key.chmod(0o644)
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(
            certificate=tls_files.server_cert,
            private_key=tls_files.server_key,
            sni=(SNICertificate("echo.example", cert, key),),
        )
    assert str(info.value).startswith(f"sni echo.example= {key}: private key file is")
    assert f"chmod o-rwx {key}" in str(info.value)


def test_client_key_readable_by_others_is_refused(tls_files: TLSFiles) -> None:
    """tlsecho client --key with a world-readable key exits 2 with one line saying how
    to fix it."""
    tls_files.client_key.chmod(0o644)
    result = run_client(
        "127.0.0.1:1",
        "--cert",
        str(tls_files.client_cert),
        "--key",
        str(tls_files.client_key),
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.decode().splitlines()
    assert lines == [
        f"tlsecho client: --key {tls_files.client_key}: private key file is readable by "
        f"other users (mode 0644); fix it with: chmod o-rwx {tls_files.client_key}"
    ]


def test_twistd_refuses_world_readable_key(tls_files: TLSFiles) -> None:
    """twistd tlsecho with a world-readable key exits 2 with one line, before
    listening, and shows none of the key."""
    tls_files.server_key.chmod(0o644)
    result = run_twistd(
        *identity(tls_files),
        "--listen",
        "tcp:0:interface=127.0.0.1",
        timeout=20,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"fix it with: chmod o-rwx {tls_files.server_key}" in lines[0]
    assert "listening" not in result.stdout
    _assert_no_key_material(result.stdout + result.stderr, tls_files.server_key)


def _passphrase_file(tls_files: TLSFiles, directory: Path, mode: int) -> tuple[Path, Path]:
    """The server key encrypted with "s3cret", and its passphrase file with ``mode``."""
    key = serialization.load_pem_private_key(tls_files.server_key.read_bytes(), None)
    encrypted = directory / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    encrypted.chmod(0o600)
    passphrase = directory / "passphrase"
    passphrase.write_bytes(b"s3cret\n")
    passphrase.chmod(mode)
    return encrypted, passphrase


@pytest.mark.parametrize(
    ("mode", "how"), [(0o644, "readable"), (0o604, "readable"), (0o602, "writable")]
)
def test_passphrase_file_open_to_others_is_refused(
    tls_files: TLSFiles, tmp_path: Path, mode: int, how: str
) -> None:
    """A --key-passphrase-file other users may read or write is refused as a key
    file is, in the same words, with the chmod fix."""
    key, passphrase = _passphrase_file(tls_files, tmp_path, mode)
    message = _configuration_error(
        certificate=tls_files.server_cert, private_key=key, key_passphrase_file=passphrase
    )
    assert message == (
        f"key_passphrase_file {passphrase}: passphrase file is {how} by other users "
        f"(mode {mode:04o}); fix it with: chmod o-rwx {passphrase}"
    )
    assert "s3cret" not in message


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o440])
def test_passphrase_file_private_or_group_readable_is_accepted(
    tls_files: TLSFiles, tmp_path: Path, mode: int
) -> None:
    """A passphrase file only its owner and group may read decrypts the key."""
    key, passphrase = _passphrase_file(tls_files, tmp_path, mode)
    settings = TLSSettings(
        certificate=tls_files.server_cert, private_key=key, key_passphrase_file=passphrase
    )
    assert Material.load(settings).key is not None


def test_world_writable_key_is_refused(tls_files: TLSFiles) -> None:
    """A key file others may write (and so replace) is refused too."""
    tls_files.server_key.chmod(0o602)
    message = _configuration_error(
        certificate=tls_files.server_cert, private_key=tls_files.server_key
    )
    assert message.endswith(
        "private key file is writable by other users (mode 0602); "
        f"fix it with: chmod o-rwx {tls_files.server_key}"
    )


# Certificate validity -----------------------------------------------------------------


def test_expired_certificate_is_refused(ca: trustme.CA, tmp_path: Path) -> None:
    """An expired certificate is refused, saying when it expired."""
    cert, key = _expiring(ca, tmp_path, -1)
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(certificate=cert, private_key=key)
    assert info.value.option == "certificate"
    assert "has expired (on " in str(info.value)


def test_not_yet_valid_certificate_is_refused(ca: trustme.CA, tmp_path: Path) -> None:
    """A certificate that is not valid yet is refused, saying from when it is valid."""
    now = _now()
    leaf = ca.issue_cert(
        "localhost",
        not_before=now + datetime.timedelta(days=1),
        not_after=now + datetime.timedelta(days=60),
    )
    cert, key = write_cert(leaf, tmp_path, "future")
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(certificate=cert, private_key=key)
    assert info.value.option == "certificate"
    assert "is not valid yet (valid from " in str(info.value)


# Warnings -----------------------------------------------------------------------------


def test_no_warnings_for_a_healthy_certificate(tls_files: TLSFiles) -> None:
    """A CA-issued certificate valid for months, without a key log, gives no warning."""
    settings = TLSSettings(
        certificate=tls_files.server_cert, private_key=tls_files.server_key
    )
    assert Material.load(settings).warnings() == []


@pytest.mark.parametrize("days", [1, 10, 29])
def test_certificate_expiring_within_30_days_is_warned(
    ca: trustme.CA, tmp_path: Path, days: int
) -> None:
    """A served certificate expiring within 30 days gives one warning naming --cert,
    the certificate, the days left and the date."""
    cert, key = _expiring(ca, tmp_path, days)
    settings = TLSSettings(certificate=cert, private_key=key)
    leaf = x509.load_pem_x509_certificates(cert.read_bytes())[0]
    now = leaf.not_valid_after_utc - datetime.timedelta(days=days, hours=1)
    (warning,) = Material.load(settings).warnings(now=now)
    assert warning == (
        f"--cert: certificate {leaf.subject.rfc4514_string()} expires in {days} days "
        f"({leaf.not_valid_after_utc:%Y-%m-%d})"
    )


def test_certificate_expiring_later_is_not_warned(ca: trustme.CA, tmp_path: Path) -> None:
    """A certificate with 31 days left gives no warning."""
    cert, key = _expiring(ca, tmp_path, 31)
    assert Material.load(TLSSettings(certificate=cert, private_key=key)).warnings() == []


def test_self_signed_certificate_is_warned(tmp_path: Path) -> None:
    """A self-signed served certificate gives a warning saying so."""
    cert, key = _self_signed(tmp_path)
    assert Material.load(TLSSettings(certificate=cert, private_key=key)).warnings() == [
        "--cert: certificate CN=self-signed.example is self-signed: clients can only "
        "trust it by pinning it"
    ]


def test_sni_certificate_expiring_is_warned(
    tls_files: TLSFiles, ca: trustme.CA, tmp_path: Path
) -> None:
    """An --sni certificate expiring within 30 days is warned about, naming the entry."""
    cert, key = _expiring(ca, tmp_path, 5)
    settings = TLSSettings(
        certificate=tls_files.server_cert,
        private_key=tls_files.server_key,
        sni=(SNICertificate("soon.example", cert, key),),
    )
    (warning,) = Material.load(settings).warnings()
    assert warning.startswith("--sni soon.example=: certificate ")
    assert " expires in " in warning


def test_development_certificate_gives_no_warning() -> None:
    """The development certificate (issued by the development CA) is neither
    self-signed nor about to expire: no warning."""
    configuration = ServerConfiguration.from_options({})
    assert configuration.development is not None
    assert configuration.material.warnings() == []


def test_twistd_logs_warnings_once_at_start(
    servers: list, ca: trustme.CA, tmp_path: Path
) -> None:
    """twistd tlsecho logs the expiry warning when it starts, once, not per
    connection."""
    cert, key = _expiring(ca, tmp_path, 10)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = start_server(servers, "--cert", str(cert), "--key", str(key))
    server.wait_for(r"#warn\] --cert: certificate .* expires in 9 days")
    for _ in range(2):
        result = run_client(server.address, "--ca", str(ca_file))
        assert result.returncode == 0, result.stderr
    server.wait_for(r"closed after 6 bytes")
    assert server.output.count("expires in") == 1, server.output


def test_twistd_logs_self_signed_warning(servers: list, tmp_path: Path) -> None:
    """twistd tlsecho serving a self-signed certificate logs a warning at start."""
    cert, key = _self_signed(tmp_path)
    server = start_server(servers, "--cert", str(cert), "--key", str(key))
    server.wait_for(r"#warn\] --cert: certificate CN=self-signed\.example is self-signed")


# The key log --------------------------------------------------------------------------


def _keylog(path: Path) -> dict[str, set[str]]:
    """The key log's lines grouped by client random; every line must be NSS format."""
    by_random: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        match = KEYLOG_LINE.match(line)
        assert match, f"not an NSS key log line: {line!r}"
        by_random.setdefault(match["random"], set()).add(line)
    return by_random


def _labels(lines: set[str]) -> set[str]:
    return {line.split(" ", 1)[0] for line in lines}


def test_keylog_is_off_by_default(tls_files: TLSFiles, clean_environment: None) -> None:
    """Settings have no key log unless one is asked for."""
    settings = TLSSettings(
        certificate=tls_files.server_cert, private_key=tls_files.server_key
    )
    assert settings.keylog_file is None
    assert not any("keylog" in warning for warning in Material.load(settings).warnings())


@pytest.mark.parametrize(
    ("max_tls", "label"),
    [
        (TLSVersion.TLSv1_3, "CLIENT_HANDSHAKE_TRAFFIC_SECRET"),
        (TLSVersion.TLSv1_2, "CLIENT_RANDOM"),
    ],
)
def test_keylog_in_memory_matches_on_both_sides(
    tls_files: TLSFiles, tmp_path: Path, max_tls: TLSVersion, label: str
) -> None:
    """Server and client key logs hold the same NSS lines for the connection (TLS 1.3
    traffic secrets, or the TLS 1.2 CLIENT_RANDOM master secret), in files only their
    owner can read."""
    server_log, client_log = tmp_path / "server.keys", tmp_path / "client.keys"
    server = server_creator(
        TLSSettings(
            certificate=tls_files.server_cert,
            private_key=tls_files.server_key,
            keylog_file=server_log,
        )
    )
    client = client_creator(
        TLSSettings(ca=(tls_files.ca,), max_tls=max_tls, keylog_file=client_log),
        "localhost",
    )
    results: list[object] = []
    loopback(server, client).client.result.addBoth(results.append)
    assert results == [b"hello"]
    server_lines, client_lines = _keylog(server_log), _keylog(client_log)
    assert server_lines == client_lines
    ((lines),) = server_lines.values()
    assert label in _labels(lines)
    if max_tls is TLSVersion.TLSv1_3:
        assert _labels(lines) >= {
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0",
            "SERVER_TRAFFIC_SECRET_0",
        }
    for path in (server_log, client_log):
        assert path.stat().st_mode & 0o077 == 0, oct(path.stat().st_mode)


@pytest.mark.parametrize(
    ("mode", "how"),
    [(0o640, "readable"), (0o604, "readable"), (0o620, "writable"), (0o602, "writable")],
)
def test_existing_keylog_open_to_others_is_refused(
    tls_files: TLSFiles, tmp_path: Path, mode: int, how: str
) -> None:
    """An existing key log its group or others may read or write is refused (never
    appended to), with chmod 600."""
    path = tmp_path / "keys.log"
    path.write_bytes(b"")
    path.chmod(mode)
    message = _configuration_error(
        certificate=tls_files.server_cert,
        private_key=tls_files.server_key,
        keylog_file=path,
    )
    assert message == (
        f"keylog_file {path}: key log file is {how} by its group or other users "
        f"(mode {mode:04o}); fix it with: chmod 600 {path}"
    )


def test_existing_private_keylog_is_accepted(tls_files: TLSFiles, tmp_path: Path) -> None:
    """An existing key log of the user's own with mode 0600 is appended to."""
    path = tmp_path / "keys.log"
    path.write_bytes(b"")
    path.chmod(0o600)
    settings = TLSSettings(ca=(tls_files.ca,), keylog_file=path)
    assert settings.keylog_file == path


def test_keylog_warning_in_settings(tls_files: TLSFiles, tmp_path: Path) -> None:
    """Settings with a key log list a warning naming the file."""
    path = tmp_path / "keys.log"
    settings = TLSSettings(
        certificate=tls_files.server_cert,
        private_key=tls_files.server_key,
        keylog_file=path,
    )
    assert Material.load(settings).warnings() == [
        f"--keylog-file {path}: TLS secrets are being written; anyone who reads that "
        "file can decrypt the traffic"
    ]


def test_twistd_keylog_file(
    servers: list, tls_files: TLSFiles, tmp_path: Path, clean_environment: None
) -> None:
    """twistd tlsecho --keylog-file logs a warning at start and appends NSS key log
    lines for each connection: TLS 1.3 traffic secrets and the TLS 1.2
    CLIENT_RANDOM."""
    path = tmp_path / "server-keys.log"
    server = start_server(
        servers,
        *identity(tls_files),
        "--keylog-file",
        str(path),
    )
    server.wait_for(r"#warn\] --keylog-file .*: TLS secrets are being written")
    for version in ("1.3", "1.2"):
        result = run_client(server.address, "--ca", str(tls_files.ca), "--max-tls", version)
        assert result.returncode == 0, result.stderr
    connections = _keylog(path)
    assert len(connections) == 2
    labels = [_labels(lines) for lines in connections.values()]
    assert any("CLIENT_HANDSHAKE_TRAFFIC_SECRET" in found for found in labels)
    assert {"CLIENT_RANDOM"} in labels
    assert any(line.startswith("CLIENT_RANDOM ") for line in path.read_text().splitlines())


def test_client_sslkeylogfile(
    servers: list,
    tls_files: TLSFiles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With SSLKEYLOGFILE set, tlsecho client writes the key log there, prints one
    warning line on stderr, and still echoes; its lines match the server's key log."""
    server_path, client_path = tmp_path / "server.keys", tmp_path / "client.keys"
    server = start_server(
        servers,
        *identity(tls_files),
        "--keylog-file",
        str(server_path),
    )
    monkeypatch.setenv("SSLKEYLOGFILE", str(client_path))
    result = run_client(server.address, "--ca", str(tls_files.ca))
    assert (result.returncode, result.stdout) == (0, b"hello\n"), result.stderr
    assert result.stderr.decode().splitlines() == [
        f"tlsecho client: warning: writing TLS secrets to {client_path}; anyone who reads "
        "it can decrypt this connection"
    ]
    client_lines = _keylog(client_path)
    assert len(client_lines) == 1
    assert "CLIENT_HANDSHAKE_TRAFFIC_SECRET" in _labels(next(iter(client_lines.values())))
    assert client_lines == _keylog(server_path)


def test_client_keylog_flag(
    servers: list, tls_files: TLSFiles, tmp_path: Path, clean_environment: None
) -> None:
    """tlsecho client --keylog-file writes the key log and warns on stderr."""
    path = tmp_path / "flag.keys"
    server = start_server(
        servers, "--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)
    )
    result = run_client(
        server.address,
        "--ca",
        str(tls_files.ca),
        "--max-tls",
        "1.2",
        "--keylog-file",
        str(path),
    )
    assert result.returncode == 0, result.stderr
    assert b"warning: writing TLS secrets to" in result.stderr
    assert [line.split(" ")[0] for line in path.read_text().splitlines()] == [
        "CLIENT_RANDOM"
    ]


def test_client_without_keylog_prints_nothing(
    servers: list, tls_files: TLSFiles, clean_environment: None
) -> None:
    """Without SSLKEYLOGFILE or --keylog-file, tlsecho client prints no key log
    warning."""
    server = start_server(
        servers, "--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)
    )
    result = run_client(server.address, "--ca", str(tls_files.ca))
    assert (result.returncode, result.stderr) == (0, b"")


# No key material in logs or messages --------------------------------------------------


def _configuration_error(**settings: object) -> str:
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(**settings)  # type: ignore[arg-type]
    return str(info.value)


def test_error_messages_never_show_key_material(
    tls_files: TLSFiles, tmp_path: Path
) -> None:
    """Every error about a misused key file (as a certificate, a CA, a CRL, an OCSP
    response, a mismatched or world-readable key) names the file, never its contents."""
    key = tls_files.server_key
    world = tmp_path / "world.key"
    world.write_bytes(key.read_bytes())
    world.chmod(0o644)
    cert = tls_files.server_cert
    cases = [
        (key, {"certificate": key}),
        (key, {"ca": (key,)}),
        (key, {"crl": (key,)}),
        (key, {"certificate": cert, "private_key": key, "ocsp_response": key}),
        (tls_files.client_key, {"certificate": cert, "private_key": tls_files.client_key}),
        (world, {"certificate": cert, "private_key": world}),
        (
            key,
            {
                "certificate": cert,
                "private_key": key,
                "sni": (SNICertificate("x.example", key, key),),
            },
        ),
    ]
    for named, settings in cases:
        message = _configuration_error(**settings)
        assert str(named) in message, message
        _assert_no_key_material(message, key, tls_files.client_key)


def test_option_errors_never_show_key_material(tls_files: TLSFiles) -> None:
    """The server's option parser names a key given as --cert without showing it."""
    options = Options()
    with pytest.raises(usage.UsageError) as info:
        options.parseOptions(["--cert", str(tls_files.server_key)])
    assert str(tls_files.server_key) in str(info.value)
    _assert_no_key_material(str(info.value), tls_files.server_key)


def _all_server_output(server: ServerProcess) -> str:
    server.stop()
    return server.output


def test_server_log_never_shows_key_material(
    servers: list, tls_files: TLSFiles, tmp_path: Path, clean_environment: None
) -> None:
    """A whole server run (start-up warnings, mutual TLS, refused clients, the key log
    warning, shutdown) logs nothing of the server's or the client's private key, and
    neither does the client."""
    server = start_server(
        servers,
        *identity(tls_files),
        "--ca",
        str(tls_files.client_ca),
        "--verify",
        "optional",
        "--keylog-file",
        str(tmp_path / "keys.log"),
    )
    client_outputs = []
    for extra in (
        ["--cert", str(tls_files.client_cert), "--key", str(tls_files.client_key)],
        ["--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)],
        [],
    ):
        result = run_client(server.address, "--ca", str(tls_files.ca), *extra)
        client_outputs.append(result.stdout + result.stderr)
    output = _all_server_output(server)
    assert "closed after 6 bytes" in output
    assert "unknown CA" in output
    _assert_no_key_material(
        output + b"".join(client_outputs).decode("utf-8", "replace"),
        tls_files.server_key,
        tls_files.client_key,
    )


def test_key_file_accepted_after_the_suggested_fix(tls_files: TLSFiles) -> None:
    """After chmod o-rwx, as the message says, the same key file is accepted."""
    tls_files.server_key.chmod(0o644)
    with pytest.raises(ConfigurationError):
        TLSSettings(certificate=tls_files.server_cert, private_key=tls_files.server_key)
    mode = tls_files.server_key.stat().st_mode & 0o777
    os.chmod(tls_files.server_key, mode & ~0o007)
    settings = TLSSettings(
        certificate=tls_files.server_cert, private_key=tls_files.server_key
    )
    assert Material.load(settings).key is not None
