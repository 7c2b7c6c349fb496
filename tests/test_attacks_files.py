"""
Attacks on tlsecho's secret files (issue 10, item 10), performed against the real
``twistd -n tlsecho``, ``tlsecho check`` and ``tlsecho client``: passphrase files,
development CA keys and state directories, key logs and ticket key files that other
local users may read or write, or that hold the wrong thing.  Each one must be
refused before anything listens or connects, with one line naming the option, the
file and the ``chmod`` that fixes it, exit status 2, no traceback and no key
material.  See ``hostile/files.py``.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from _processes import (
    LOOPBACK_LISTEN,
    TLSECHO,
    identity,
    run_client,
    run_twistd,
    start_server,
)
from conftest import TLSFiles
from hostile.files import (
    KEYLOG_MARKER,
    NOBODY,
    development_directory,
    encrypted_key,
    exposed_keylog,
    impostor_behind,
    loosen,
    minted_with_development_ca_key,
    pem_as_ticket_key,
    swap_development_ca,
)

pytestmark = pytest.mark.subprocess

PASSPHRASE = b"correct-horse-battery-0d1e"
TWISTD = "tlsecho: "
CHECK = "tlsecho check: error: "
CLIENT = "tlsecho client: "


# Helpers ------------------------------------------------------------------------------


def _check(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run ``tlsecho check`` with server options."""
    return subprocess.run(
        [TLSECHO, "check", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _text(data: str | bytes) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def _refused(
    result: subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes],
    prefix: str,
) -> str:
    """The one error line of a program that refused to run: exit 2, no traceback."""
    output = _text(result.stdout) + _text(result.stderr)
    assert result.returncode == 2, output
    lines = _text(result.stderr).splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith(prefix), lines[0]
    assert "Traceback" not in output
    assert "listening" not in output
    return lines[0]


def _server_and_check(*arguments: str) -> list[tuple[str, str]]:
    """
    Start the server (which must refuse) and ``tlsecho check`` with the same
    options; their error lines and whole outputs.
    """
    try:
        server = run_twistd(*arguments, "--listen", LOOPBACK_LISTEN, timeout=20)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the server did not refuse to start; it printed:\n{e.output!r}")
    found = []
    for result, prefix in ((server, TWISTD), (_check(*arguments), CHECK)):
        line = _refused(result, prefix)
        found.append((line, result.stdout + result.stderr))
    return found


def _assert_no_secret(text: str, *secrets: Path | bytes) -> None:
    """Fail if any 16-character piece of a PEM body, or a raw secret, is in text."""
    for secret in secrets:
        if isinstance(secret, bytes):
            assert secret.decode() not in text
            continue
        body = [
            line
            for line in secret.read_text().splitlines()
            if line and not line.startswith("-----")
        ]
        assert body
        for line in body:
            for start in range(0, max(len(line) - 16, 1), 16):
                assert line[start : start + 16] not in text, f"{secret} leaked"
    assert "PRIVATE KEY-----" not in text


def _octal(mode: int) -> str:
    return f"{mode:04o}"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SSLKEYLOGFILE from the environment running the tests."""
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)


# Key passphrase files -----------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o602], ids=_octal)
def test_passphrase_file_open_to_others_is_refused(
    tls_files: TLSFiles, tmp_path: Path, mode: int
) -> None:
    """A --key-passphrase-file other users may read (or write) is refused like a key
    by the server and by tlsecho check, with the chmod fix, showing no secret."""
    key, passphrase = encrypted_key(tls_files.server_key, tmp_path, PASSPHRASE, mode)
    how = "readable" if mode & 0o004 else "writable"
    reason = (
        f"--key-passphrase-file {passphrase}: passphrase file is {how} by other users "
        f"(mode {mode:04o}); fix it with: chmod o-rwx {passphrase}"
    )
    arguments = [
        "--cert",
        str(tls_files.server_cert),
        "--key",
        str(key),
        "--key-passphrase-file",
        str(passphrase),
    ]
    for line, output in _server_and_check(*arguments):
        assert reason in line
        _assert_no_secret(output, PASSPHRASE, key, tls_files.server_key)


@pytest.mark.parametrize("mode", [0o600, 0o640], ids=_octal)
def test_private_passphrase_file_is_accepted(
    tls_files: TLSFiles, tmp_path: Path, mode: int
) -> None:
    """A passphrase file only its owner (and group) may read passes tlsecho check,
    as a key file of the same mode does."""
    key, passphrase = encrypted_key(tls_files.server_key, tmp_path, PASSPHRASE, mode)
    result = _check(
        "--cert",
        str(tls_files.server_cert),
        "--key",
        str(key),
        "--key-passphrase-file",
        str(passphrase),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("result: ok")


# The development CA -------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o770, 0o703], ids=_octal)
def test_writable_state_directory_is_refused(
    servers: list, state_home: Path, tmp_path: Path, mode: int
) -> None:
    """A development state directory others may write, where an attacker planted
    their own CA, is refused: the client will not trust it for loopback, and the
    server's development default and tlsecho check exit 2, each saying chmod 700."""
    attacker = trustme.CA()
    directory = swap_development_ca(state_home, attacker, mode)
    cert, key = impostor_behind(attacker, tmp_path)
    impostor = start_server(servers, "--cert", str(cert), "--key", str(key))
    reason = (
        f"{directory}: state directory is writable by its group or other users "
        f"(mode {mode:04o}); fix it with: chmod 700 {directory}"
    )
    line = _refused(run_client(impostor.address), CLIENT)
    assert reason in line
    for line, _ in _server_and_check():
        assert reason in line


def test_writable_development_ca_certificate_is_refused(
    servers: list, state_home: Path, tmp_path: Path
) -> None:
    """A development CA certificate file others may write, rewritten in place by an
    attacker, is refused by the client (for loopback), the server and tlsecho check."""
    attacker = trustme.CA()
    directory = swap_development_ca(state_home, attacker, 0o700)
    ca_file = loosen(directory / "dev-ca.pem", 0o666)
    cert, key = impostor_behind(attacker, tmp_path)
    impostor = start_server(servers, "--cert", str(cert), "--key", str(key))
    reason = (
        f"{ca_file}: CA certificate file is writable by its group or other users "
        f"(mode 0666); fix it with: chmod 644 {ca_file}"
    )
    assert reason in _refused(run_client(impostor.address), CLIENT)
    for line, _ in _server_and_check():
        assert reason in line


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620], ids=_octal)
def test_readable_development_ca_key_is_refused(
    servers: list, state_home: Path, tmp_path: Path, mode: int
) -> None:
    """A development CA key its group or others may read (and so mint localhost
    certificates with) is refused: the client will not trust the CA, and the server
    and tlsecho check exit 2 saying chmod 600, showing none of the key."""
    key_file, cert, key = minted_with_development_ca_key(state_home, mode, tmp_path)
    before = key_file.read_bytes()
    impostor = start_server(servers, "--cert", str(cert), "--key", str(key))
    how = "readable" if mode & 0o044 else "writable"
    reason = (
        f"{key_file}: CA private key file is {how} by its group or other users "
        f"(mode {mode:04o}); fix it with: chmod 600 {key_file}"
    )
    client = run_client(impostor.address)
    assert reason in _refused(client, CLIENT)
    outputs = [_text(client.stdout + client.stderr)]
    for line, output in _server_and_check():
        assert reason in line
        outputs.append(output)
    _assert_no_secret("\n".join(outputs), key_file)
    assert key_file.read_bytes() == before, "the CA key must be refused, not replaced"


def test_readable_development_server_key_is_refused(state_home: Path) -> None:
    """The development server key readable by its group is refused by the server's
    development default and tlsecho check (not only when others may read it)."""
    key = loosen(development_directory(state_home) / "localhost.key", 0o640)
    for line, output in _server_and_check():
        assert f"fix it with: chmod 600 {key}" in line
        _assert_no_secret(output, key)


def test_client_reads_only_the_development_ca_certificate(
    servers: list, state_home: Path
) -> None:
    """The client trusting the development CA for loopback reads its certificate,
    never its key: with the key unreadable even to root (a directory), the
    development default still verifies."""
    server = start_server(servers)
    key = state_home / "tlsecho" / "dev-ca.key"
    saved = key.read_bytes()
    key.unlink()
    key.mkdir(mode=0o700)  # reading it would fail, for root too
    try:
        result = run_client(f"127.0.0.1:{server.port}")
    finally:
        key.rmdir()
        key.write_bytes(saved)
        key.chmod(0o600)
    assert (result.returncode, result.stdout) == (0, b"hello\n"), result.stderr


# Key logs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "owner", "reason"),
    [
        (0o644, None, "key log file is readable by its group or other users (mode 0644)"),
        (0o640, None, "key log file is readable by its group or other users (mode 0640)"),
        (0o620, None, "key log file is writable by its group or other users (mode 0620)"),
        (0o600, NOBODY, f"key log file belongs to another user (uid {NOBODY})"),
    ],
    ids=["0644", "0640", "0620", "owned-by-nobody"],
)
def test_exposed_keylog_file_is_refused(
    tls_files: TLSFiles,
    tmp_path: Path,
    mode: int,
    owner: int | None,
    reason: str,
    clean_environment: None,
) -> None:
    """An existing --keylog-file that others may read or write, or that another user
    owns, is refused by the server and tlsecho check, and never appended to."""
    path = exposed_keylog(tmp_path, mode, owner)
    for line, _ in _server_and_check(*identity(tls_files), "--keylog-file", str(path)):
        assert f"--keylog-file {path}: {reason}" in line
        if owner is None:
            assert f"fix it with: chmod 600 {path}" in line
    assert path.read_bytes() == KEYLOG_MARKER


@pytest.mark.parametrize("source", ["--keylog-file", "SSLKEYLOGFILE"])
def test_client_refuses_exposed_keylog(
    servers: list,
    tls_files: TLSFiles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    """tlsecho client refuses a group- or world-readable key log, from --keylog-file
    or SSLKEYLOGFILE alike: exit 2, one line naming where it came from, nothing
    written and nothing sent."""
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    server = start_server(servers, *identity(tls_files))
    path = exposed_keylog(tmp_path, 0o644)
    extra = ["--keylog-file", str(path)]
    if source == "SSLKEYLOGFILE":
        monkeypatch.setenv("SSLKEYLOGFILE", str(path))
        extra = []
    result = run_client(server.address, "--ca", str(tls_files.ca), *extra)
    assert _refused(result, CLIENT) == (
        f"{CLIENT}{source} {path}: key log file is readable by its group or other "
        f"users (mode 0644); fix it with: chmod 600 {path}"
    )
    assert result.stdout == b""
    assert path.read_bytes() == KEYLOG_MARKER


def test_keylog_loosened_while_running_gets_no_more_secrets(
    servers: list, tls_files: TLSFiles, tmp_path: Path, clean_environment: None
) -> None:
    """A key log made readable by others after the server started gets no more
    secrets: the server logs one error naming --keylog-file and the file, and keeps
    serving."""
    path = tmp_path / "keys.log"
    server = start_server(servers, *identity(tls_files), "--keylog-file", str(path))
    assert run_client(server.address, "--ca", str(tls_files.ca)).returncode == 0
    written = path.read_bytes()
    assert written.count(b"\n") >= 1
    loosen(path, 0o644)
    for _ in range(2):
        result = run_client(server.address, "--ca", str(tls_files.ca))
        assert (result.returncode, result.stdout) == (0, b"hello\n"), result.stderr
    assert path.read_bytes() == written
    server.wait_for(
        rf"--keylog-file {path}: key log file is readable by its group or other users "
        r"\(mode 0644\); fix it with: chmod 600 .*; not writing TLS secrets"
    )
    assert server.output.count("not writing TLS secrets") == 1, server.output
    assert "Traceback" not in server.output


def test_new_keylog_files_are_private_whatever_the_umask(
    servers: list,
    tls_files: TLSFiles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """New key logs (the server's --keylog-file, the client's --keylog-file and
    SSLKEYLOGFILE) are created mode 0600 even under umask 000."""
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    server_log, flag_log, env_log = (tmp_path / n for n in ("s.keys", "f.keys", "e.keys"))
    previous = os.umask(0)
    try:
        server = start_server(
            servers, *identity(tls_files), "--keylog-file", str(server_log)
        )
        flag = run_client(
            server.address, "--ca", str(tls_files.ca), "--keylog-file", str(flag_log)
        )
        monkeypatch.setenv("SSLKEYLOGFILE", str(env_log))
        env = run_client(server.address, "--ca", str(tls_files.ca))
    finally:
        os.umask(previous)
    assert (flag.returncode, env.returncode) == (0, 0), flag.stderr + env.stderr
    for path in (server_log, flag_log, env_log):
        assert path.read_bytes()
        assert _mode(path) == 0o600, (path, oct(_mode(path)))


# Ticket key files ---------------------------------------------------------------------


def _der_key(tls_files: TLSFiles, tmp_path: Path) -> Path:
    key = serialization.load_pem_private_key(tls_files.server_key.read_bytes(), None)
    path = tmp_path / "key.der"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.mark.parametrize(
    ("given", "kind"), [("key", "PEM"), ("certificate", "PEM"), ("der-key", "DER")]
)
def test_key_given_as_ticket_key_file_is_not_to_be_overwritten(
    tls_files: TLSFiles, tmp_path: Path, given: str, kind: str
) -> None:
    """A private key (or certificate) given as --ticket-key-file is refused as such,
    with advice to make a new file, never to overwrite it, showing none of it."""
    source = {
        "key": tls_files.server_key,
        "certificate": tls_files.server_cert,
        "der-key": _der_key(tls_files, tmp_path),
    }[given]
    path = pem_as_ticket_key(source, tmp_path)
    reason = (
        f"--ticket-key-file {path}: holds {kind} data (a key or certificate?), not 80 "
        "random bytes; make a new file with: (umask 077; openssl rand 80 > NEWFILE)"
    )
    for line, output in _server_and_check(
        *identity(tls_files), "--ticket-key-file", str(path)
    ):
        assert reason in line
        assert f"> {path}" not in line
        _assert_no_secret(output, tls_files.server_key)
    assert path.read_bytes() == source.read_bytes()
