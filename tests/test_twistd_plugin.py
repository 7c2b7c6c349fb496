"""
Black-box tests of the tlsecho twistd plugin: the real ``twistd -n tlsecho`` (and
``twist tlsecho``) in a subprocess, checked with ``tlsecho client`` and
``openssl s_client`` over loopback sockets.
"""

from __future__ import annotations

import datetime
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from _processes import (
    LOOPBACK_LISTEN,
    TWIST_COMMAND,
    ServerProcess,
    run_client,
    run_twistd,
    start_server,
)
from conftest import TLSFiles, write_cert

pytestmark = pytest.mark.subprocess

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
PASSPHRASE = "correct-horse-battery-7f3a9c"
PAYLOAD = b"hello, tlsecho\n"


# Helpers ------------------------------------------------------------------------------


def _server_args(tls_files: TLSFiles) -> list[str]:
    return ["--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)]


def _assert_echo(
    result: subprocess.CompletedProcess[bytes], payload: bytes = PAYLOAD
) -> None:
    assert (result.returncode, result.stdout) == (0, payload), result.stderr.decode()


def _ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def _s_client_echo(
    arguments: list[str], payload: bytes, timeout: float = 15.0
) -> tuple[bytes, str]:
    """
    Run ``openssl s_client -quiet`` with ``arguments``, send ``payload`` and collect
    standard output until the payload has come back (or the timeout passes); the
    process is then stopped by its PID.  Returns (stdout, stderr).
    """
    process = subprocess.Popen(
        [OPENSSL, "s_client", "-quiet", *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    received = bytearray()
    errors = bytearray()
    done = threading.Event()

    def read_stdout() -> None:
        assert process.stdout is not None
        while chunk := process.stdout.read1(65536):
            received.extend(chunk)
            if len(received) >= len(payload):
                done.set()
        done.set()

    def read_stderr() -> None:
        assert process.stderr is not None
        while chunk := process.stderr.read1(65536):
            errors.extend(chunk)

    readers = [
        threading.Thread(target=read_stdout, daemon=True),
        threading.Thread(target=read_stderr, daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        assert process.stdin is not None
        process.stdin.write(payload)
        process.stdin.flush()
        done.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        for reader in readers:
            reader.join(10)
        assert process.stdin is not None
        process.stdin.close()
    return bytes(received), errors.decode("utf-8", "replace")


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    return lines[0]


def _run_failing_twistd(*arguments: str) -> subprocess.CompletedProcess[str]:
    try:
        return run_twistd(*arguments, timeout=20)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"twistd did not exit by itself; it printed:\n{e.output}")


# Serving ------------------------------------------------------------------------------


def test_serves_echo_with_cert_and_key(servers: list, tls_files: TLSFiles) -> None:
    """With --cert and --key the plugin serves TLS echo that tlsecho client verifies."""
    server = start_server(servers, *_server_args(tls_files))
    _assert_echo(run_client(server.address, "--ca", str(tls_files.ca), payload=PAYLOAD))


def test_key_defaults_to_cert_file(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """Without --key the private key is read from the --cert file (a combined PEM)."""
    combined = tmp_path / "combined.pem"
    combined.write_bytes(
        tls_files.server_cert.read_bytes() + tls_files.server_key.read_bytes()
    )
    combined.chmod(0o600)  # private key material: owner only
    combined.chmod(0o600)
    server = start_server(servers, "--cert", str(combined))
    _assert_echo(run_client(server.address, "--ca", str(tls_files.ca), payload=PAYLOAD))


def test_listens_on_ipv4_ipv6_and_unix_at_once(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """Several --listen descriptions (tcp 127.0.0.1, tcp6 ::1, unix) all serve echo."""
    if not _ipv6_loopback_available():
        pytest.skip("this machine has no IPv6 loopback (::1) to listen on")
    socket_path = tmp_path / "echo.sock"
    server = start_server(
        servers,
        *_server_args(tls_files),
        "--listen",
        r"tcp6:0:interface=\:\:1",
        "--listen",
        f"unix:{socket_path}",
    )
    server.wait_listening(count=2)
    server.wait_for(r"tlsecho listening on unix:")
    by_host = dict(server.addresses)
    assert set(by_host) == {"127.0.0.1", "::1"}, server.output
    ca = str(tls_files.ca)
    _assert_echo(
        run_client(f"127.0.0.1:{by_host['127.0.0.1']}", "--ca", ca, payload=PAYLOAD)
    )
    _assert_echo(run_client(f"[::1]:{by_host['::1']}", "--ca", ca, payload=PAYLOAD))
    echoed, errors = _s_client_echo(
        [
            "-unix",
            str(socket_path),
            "-servername",
            "localhost",
            "-CAfile",
            ca,
            "-verify_return_error",
        ],
        PAYLOAD,
    )
    assert echoed == PAYLOAD, errors


def test_config_file_with_relative_paths(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A --config TOML file sets listen, cert and key; its relative paths are resolved
    against the file's directory, not the working directory."""
    directory = tmp_path / "conf"
    (directory / "tls").mkdir(parents=True)
    shutil.copy(tls_files.server_cert, directory / "tls" / "server.pem")
    shutil.copy(tls_files.server_key, directory / "tls" / "server.key")
    config = directory / "tlsecho.toml"
    config.write_text(
        f'listen = ["{LOOPBACK_LISTEN}"]\n'
        'cert = "tls/server.pem"\n'
        'key = "tls/server.key"\n'
        'min-tls = "1.2"\n'
        'verify = "none"\n'
    )
    assert Path.cwd() != directory
    server = start_server(servers, "--config", str(config), listen=None)
    _assert_echo(run_client(server.address, "--ca", str(tls_files.ca), payload=PAYLOAD))


def _config_with_max_tls_12(tls_files: TLSFiles, tmp_path: Path) -> Path:
    config = tmp_path / "tlsecho.toml"
    config.write_text(
        f'cert = "{tls_files.server_cert}"\n'
        f'key = "{tls_files.server_key}"\n'
        'max-tls = "1.2"\n'
    )
    return config


def test_config_file_key_is_applied(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A policy set only in the --config file (max-tls = "1.2") is enforced."""
    config = _config_with_max_tls_12(tls_files, tmp_path)
    server = start_server(servers, "--config", str(config))
    result = run_client(server.address, "--ca", str(tls_files.ca), "--min-tls", "1.3")
    assert result.returncode == 4, result.stderr.decode()


def test_flags_override_config_file(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A flag wins over the same key in the --config file (--max-tls 1.3 over "1.2")."""
    config = _config_with_max_tls_12(tls_files, tmp_path)
    server = start_server(servers, "--config", str(config), "--max-tls", "1.3")
    _assert_echo(
        run_client(
            server.address, "--ca", str(tls_files.ca), "--min-tls", "1.3", payload=PAYLOAD
        )
    )


# Client certificates ------------------------------------------------------------------


def _verifying_server(servers: list, tls_files: TLSFiles, mode: str) -> ServerProcess:
    return start_server(
        servers,
        *_server_args(tls_files),
        "--verify",
        mode,
        "--ca",
        str(tls_files.client_ca),
    )


def test_verify_required_refuses_client_without_certificate(
    servers: list, tls_files: TLSFiles
) -> None:
    """With --verify required, a client without a certificate fails with exit 4 and a
    reason saying the server requires a client certificate."""
    server = _verifying_server(servers, tls_files, "required")
    result = run_client(server.address, "--ca", str(tls_files.ca))
    stderr = result.stderr.decode()
    assert result.returncode == 4, stderr
    assert "server requires a client certificate" in _one_line(stderr)
    assert result.stdout == b""


def test_verify_required_accepts_client_with_certificate(
    servers: list, tls_files: TLSFiles
) -> None:
    """With --verify required, a client presenting a certificate from --ca succeeds."""
    server = _verifying_server(servers, tls_files, "required")
    result = run_client(
        server.address,
        "--ca",
        str(tls_files.ca),
        "--cert",
        str(tls_files.client_cert),
        "--key",
        str(tls_files.client_key),
        payload=PAYLOAD,
    )
    _assert_echo(result)


def test_verify_optional_accepts_client_without_certificate(
    servers: list, tls_files: TLSFiles
) -> None:
    """With --verify optional, a client without a certificate is served."""
    server = _verifying_server(servers, tls_files, "optional")
    _assert_echo(run_client(server.address, "--ca", str(tls_files.ca), payload=PAYLOAD))


def test_verify_optional_accepts_client_with_trusted_certificate(
    servers: list, tls_files: TLSFiles
) -> None:
    """With --verify optional, a client presenting a certificate from --ca is served."""
    server = _verifying_server(servers, tls_files, "optional")
    result = run_client(
        server.address,
        "--ca",
        str(tls_files.ca),
        "--cert",
        str(tls_files.client_cert),
        "--key",
        str(tls_files.client_key),
        payload=PAYLOAD,
    )
    _assert_echo(result)


def test_verify_optional_refuses_untrusted_client_certificate(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """With --verify optional, a client certificate that does not chain to --ca is
    refused (exit 4): optional means verified when sent."""
    stranger = trustme.CA().issue_cert("stranger.example", common_name="stranger.example")
    cert, key = write_cert(stranger, tmp_path, "stranger")
    server = _verifying_server(servers, tls_files, "optional")
    result = run_client(
        server.address, "--ca", str(tls_files.ca), "--cert", str(cert), "--key", str(key)
    )
    stderr = result.stderr.decode()
    assert result.returncode == 4, stderr
    assert _one_line(stderr).startswith(
        "tlsecho client: the peer does not trust our certificate (unknown CA)"
    ), stderr
    assert result.stdout == b""
    server.wait_for(r"failed: certificate verify failed: unknown CA")


def test_min_tls_13_refuses_tls12_client(servers: list, tls_files: TLSFiles) -> None:
    """A server with --min-tls 1.3 refuses a client limited to --max-tls 1.2 (exit 4)."""
    server = start_server(servers, *_server_args(tls_files), "--min-tls", "1.3")
    result = run_client(server.address, "--ca", str(tls_files.ca), "--max-tls", "1.2")
    stderr = result.stderr.decode()
    assert result.returncode == 4, stderr
    assert _one_line(stderr).startswith(
        "tlsecho client: protocol version: the peer refused our TLS versions"
    ), stderr
    assert result.stdout == b""
    server.wait_for(r"failed: protocol version: no TLS version in common")


# The development default --------------------------------------------------------------


def test_development_default_logs_certificate_and_ca_paths(
    servers: list, state_home: Path
) -> None:
    """Without --cert the server starts and logs the development certificate and CA
    paths, which exist in the state directory."""
    server = start_server(servers)
    directory = state_home / "tlsecho"
    ca = directory / "dev-ca.pem"
    certificate = directory / "localhost.pem"
    assert ca.is_file()
    assert certificate.is_file()
    server.wait_for(f"{re.escape(str(certificate))}.*{re.escape(str(ca))}")


def test_development_default_client_by_ip_needs_no_flags(servers: list) -> None:
    """``tlsecho client 127.0.0.1:PORT`` with no flags trusts the development CA."""
    server = start_server(servers)
    _assert_echo(run_client(f"127.0.0.1:{server.port}", payload=PAYLOAD))


def test_development_default_client_by_localhost_needs_no_flags(servers: list) -> None:
    """``tlsecho client localhost:PORT`` with no flags trusts the development CA."""
    server = start_server(servers)
    _assert_echo(run_client(f"localhost:{server.port}", payload=PAYLOAD))


def test_development_default_reuses_ca_on_second_start(
    servers: list, state_home: Path
) -> None:
    """A second start reuses the development CA file made by the first (same bytes)."""
    first = start_server(servers)
    ca = state_home / "tlsecho" / "dev-ca.pem"
    before = ca.read_bytes()
    first.stop()
    second = start_server(servers)
    assert ca.read_bytes() == before
    _assert_echo(run_client(f"127.0.0.1:{second.port}", payload=PAYLOAD))


def test_development_default_refuses_all_interfaces() -> None:
    """Without --cert, ``--listen tcp:0`` (all interfaces) fails start-up with one
    line naming --listen."""
    result = _run_failing_twistd("--listen", "tcp:0")
    assert result.returncode != 0
    assert "--listen" in _one_line(result.stderr)
    assert "Traceback" not in result.stdout + result.stderr


# Start-up failures --------------------------------------------------------------------


def _encrypted_key(tls_files: TLSFiles, tmp_path: Path) -> Path:
    key = serialization.load_pem_private_key(tls_files.server_key.read_bytes(), None)
    path = tmp_path / "encrypted.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
    )
    path.chmod(0o600)  # private key material: owner only
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)  # private key material: owner only
    return path


def _dated_cert(tls_files: TLSFiles, tmp_path: Path, start: int, end: int) -> Path:
    now = datetime.datetime.now(datetime.UTC)
    leaf = tls_files.server_ca.issue_cert(
        "localhost",
        not_before=now + datetime.timedelta(days=start),
        not_after=now + datetime.timedelta(days=end),
    )
    cert, _ = write_cert(leaf, tmp_path, "dated")
    return _write(cert, cert.read_bytes() + leaf.private_key_pem.bytes())


def _reversed_chain(tls_files: TLSFiles, tmp_path: Path) -> Path:
    leaf = tls_files.server_ca.create_child_ca().issue_cert("localhost")
    assert len(leaf.cert_chain_pems) == 2
    return _write(
        tmp_path / "reversed.pem",
        b"".join(blob.bytes() for blob in reversed(leaf.cert_chain_pems))
        + leaf.private_key_pem.bytes(),
    )


#: Each case: (files) -> (flags, option the error must name, file it must name).
BadInput = Callable[[TLSFiles, Path], tuple[list[str], str, Path | None]]


def _with_cert(tls_files: TLSFiles, *extra: str) -> list[str]:
    return [*_server_args(tls_files), "--listen", LOOPBACK_LISTEN, *extra]


BAD_INPUTS: dict[str, BadInput] = {
    "missing cert file": lambda f, d: (
        ["--cert", str(d / "missing.pem"), "--listen", LOOPBACK_LISTEN],
        "--cert",
        d / "missing.pem",
    ),
    "missing key file": lambda f, d: (
        _with_cert(f, "--key", str(d / "missing.key")),
        "--key",
        d / "missing.key",
    ),
    "missing ca file": lambda f, d: (
        _with_cert(f, "--verify", "required", "--ca", str(d / "missing-ca.pem")),
        "--ca",
        d / "missing-ca.pem",
    ),
    "missing config file": lambda f, d: (
        _with_cert(f, "--config", str(d / "missing.toml")),
        "--config",
        d / "missing.toml",
    ),
    "cert is a directory": lambda f, d: (
        ["--cert", str(d), "--key", str(f.server_key), "--listen", LOOPBACK_LISTEN],
        "--cert",
        d,
    ),
    "cert not PEM": lambda f, d: (
        [
            "--cert",
            str(_write(d / "garbage.pem", b"this is not a certificate\n")),
            "--key",
            str(f.server_key),
            "--listen",
            LOOPBACK_LISTEN,
        ],
        "--cert",
        d / "garbage.pem",
    ),
    "key not PEM": lambda f, d: (
        _with_cert(f, "--key", str(_write(d / "garbage.key", b"\x00\x01binary junk\n"))),
        "--key",
        d / "garbage.key",
    ),
    "key does not match cert": lambda f, d: (
        _with_cert(f, "--key", str(f.client_key)),
        "--key",
        f.client_key,
    ),
    "encrypted key without passphrase": lambda f, d: (
        _with_cert(f, "--key", str(_encrypted_key(f, d))),
        "--key",
        d / "encrypted.key",
    ),
    "encrypted key with wrong passphrase": lambda f, d: (
        _with_cert(
            f,
            "--key",
            str(_encrypted_key(f, d)),
            "--key-passphrase-file",
            str(_write(d / "wrong.pass", b"not-the-passphrase\n")),
        ),
        "--key",
        d / "encrypted.key",
    ),
    "chain out of order": lambda f, d: (
        ["--cert", str(_reversed_chain(f, d)), "--listen", LOOPBACK_LISTEN],
        "--cert",
        d / "reversed.pem",
    ),
    "expired cert": lambda f, d: (
        ["--cert", str(_dated_cert(f, d, -30, -1)), "--listen", LOOPBACK_LISTEN],
        "--cert",
        d / "dated.pem",
    ),
    "not yet valid cert": lambda f, d: (
        ["--cert", str(_dated_cert(f, d, 1, 30)), "--listen", LOOPBACK_LISTEN],
        "--cert",
        d / "dated.pem",
    ),
    "CA file with no certificates": lambda f, d: (
        _with_cert(
            f,
            "--verify",
            "required",
            "--ca",
            str(_write(d / "no-certs.pem", f.client_key.read_bytes())),
        ),
        "--ca",
        d / "no-certs.pem",
    ),
    "empty CA file": lambda f, d: (
        _with_cert(f, "--verify", "required", "--ca", str(_write(d / "empty.pem", b""))),
        "--ca",
        d / "empty.pem",
    ),
    "unknown cipher string": lambda f, d: (
        _with_cert(f, "--ciphers", "NO-SUCH-CIPHER"),
        "--ciphers",
        None,
    ),
    "unknown verify mode": lambda f, d: (
        _with_cert(f, "--verify", "sometimes", "--ca", str(f.client_ca)),
        "--verify",
        None,
    ),
    "unknown TLS version": lambda f, d: (
        _with_cert(f, "--min-tls", "1.1"),
        "--min-tls",
        None,
    ),
    "min above max": lambda f, d: (
        _with_cert(f, "--min-tls", "1.3", "--max-tls", "1.2"),
        "--min-tls",
        None,
    ),
    "optional without ca": lambda f, d: (
        _with_cert(f, "--verify", "optional"),
        "--verify",
        None,
    ),
    "required without ca": lambda f, d: (
        _with_cert(f, "--verify", "required"),
        "--verify",
        None,
    ),
    "bad endpoint type": lambda f, d: (
        [*_server_args(f), "--listen", "nosuchtransport:8443"],
        "--listen",
        None,
    ),
    "bad endpoint port": lambda f, d: (
        [*_server_args(f), "--listen", "tcp:notaport:interface=127.0.0.1"],
        "--listen",
        None,
    ),
    "ssl endpoint description": lambda f, d: (
        [*_server_args(f), "--listen", "ssl:0:interface=127.0.0.1"],
        "--listen",
        None,
    ),
    "config file not TOML": lambda f, d: (
        _with_cert(f, "--config", str(_write(d / "bad.toml", b"cert = [unclosed\n"))),
        "--config",
        d / "bad.toml",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_startup_with_one_line(
    case: str, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """An invalid setting makes twistd exit non-zero by itself, with exactly one line on
    stderr naming the option (and the file), and no traceback."""
    workdir = tmp_path / "bad"
    workdir.mkdir()
    arguments, option, path = BAD_INPUTS[case](tls_files, workdir)
    result = _run_failing_twistd(*arguments)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    line = _one_line(result.stderr)
    assert option in line
    if path is not None:
        assert str(path) in line
    assert "Traceback" not in output
    assert "tlsecho listening on" not in output
    assert PASSPHRASE not in output


def test_port_in_use_fails_startup_with_one_line(tls_files: TLSFiles) -> None:
    """A --listen port that is already bound makes start-up fail: non-zero exit, one
    line on stderr naming --listen, no traceback."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = _run_failing_twistd(
            *_server_args(tls_files), "--listen", f"tcp:{port}:interface=127.0.0.1"
        )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    line = _one_line(result.stderr)
    assert "--listen" in line
    assert str(port) in line
    assert "Traceback" not in output


# Encrypted keys -----------------------------------------------------------------------


def test_encrypted_key_with_passphrase_file_serves_and_never_logs_it(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """An encrypted key with --key-passphrase-file serves echo, and the passphrase
    never appears in the server's output."""
    key = _encrypted_key(tls_files, tmp_path)
    passphrase_file = _write(tmp_path / "key.pass", PASSPHRASE.encode() + b"\n")
    server = start_server(
        servers,
        "--cert",
        str(tls_files.server_cert),
        "--key",
        str(key),
        "--key-passphrase-file",
        str(passphrase_file),
    )
    _assert_echo(run_client(server.address, "--ca", str(tls_files.ca), payload=PAYLOAD))
    server.stop()
    assert server.output
    assert PASSPHRASE not in server.output


# The other runner ---------------------------------------------------------------------


def test_twist_runner_serves_echo(servers: list, tls_files: TLSFiles) -> None:
    """``twist tlsecho`` serves TLS echo just as ``twistd -n tlsecho`` does."""
    server = start_server(servers, *_server_args(tls_files), command=TWIST_COMMAND)
    _assert_echo(run_client(server.address, "--ca", str(tls_files.ca), payload=PAYLOAD))


def test_twist_runner_port_in_use_fails_startup_with_one_line(tls_files: TLSFiles) -> None:
    """Under ``twist tlsecho`` too, a --listen port already bound fails start-up with
    a non-zero exit and exactly one line on stderr naming --listen."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        try:
            result = subprocess.run(
                [
                    *TWIST_COMMAND,
                    "tlsecho",
                    *_server_args(tls_files),
                    "--listen",
                    f"tcp:{port}:interface=127.0.0.1",
                ],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"twist did not exit by itself; it printed:\n{e.output}")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    line = _one_line(result.stderr)
    assert "--listen" in line
    assert str(port) in line
    assert "Traceback" not in output


# Messages in words ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        (
            "tcp:notaport",
            "tlsecho: --listen: bad endpoint description 'tcp:notaport': "
            "port 'notaport' is not a number",
        ),
        (
            "18420",
            "tlsecho: --listen: bad endpoint description '18420': "
            "Unknown endpoint type: '18420' (did you mean tcp:18420?)",
        ),
    ],
)
def test_bad_listen_is_one_line_in_words(
    tls_files: TLSFiles, listen: str, expected: str
) -> None:
    """A --listen that is not a description says what is wrong without Python's
    words, and a bare port gets the description it probably meant."""
    result = _run_failing_twistd(*_server_args(tls_files), "--listen", listen)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert _one_line(result.stderr) == f"{expected} (see 'twistd tlsecho --help')"
    assert "Traceback" not in output


def test_certificate_file_without_key_says_give_key(tls_files: TLSFiles) -> None:
    """--cert alone, whose file holds no key, says to give --key."""
    result = _run_failing_twistd(
        "--cert", str(tls_files.server_cert), "--listen", LOOPBACK_LISTEN
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert _one_line(result.stderr) == (
        f"tlsecho: --cert {tls_files.server_cert}: holds no PEM private key "
        "(expected -----BEGIN PRIVATE KEY-----); give its key file with --key "
        "(see 'twistd tlsecho --help')"
    )
    assert "Traceback" not in output


def test_metrics_port_in_use_names_metrics(tls_files: TLSFiles) -> None:
    """A --metrics port that is already bound is reported as --metrics, not --listen."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        metrics = f"tcp:{port}:interface=127.0.0.1"
        result = _run_failing_twistd(*_with_cert(tls_files), "--metrics", metrics)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert _one_line(result.stderr) == (
        f"tlsecho: --metrics: {metrics}: cannot listen: Address already in use"
    )
    assert "Traceback" not in output


def test_client_demanding_a_staple_is_logged_in_words(
    servers: list, tls_files: TLSFiles
) -> None:
    """A client that requires an OCSP staple from a server with none: the server says
    in words what the client refused, not OpenSSL's reason string."""
    server = start_server(servers, *_server_args(tls_files))
    result = run_client(server.address, "--ca", str(tls_files.ca), "--require-ocsp-staple")
    assert result.returncode == 4, result.stderr
    line = server.wait_for(r"TLS handshake failed: .*")
    assert line.group(0) == (
        "TLS handshake failed: the client refused our certificate: it requires an "
        "OCSP staple and we sent none it accepts (give --ocsp-response; bad "
        "certificate status response)"
    )
    assert "tlsv1 bad certificate status response" not in server.output
