"""
TLS session resumption: on the process that issued the ticket always, and on
any process sharing ``--ticket-key-file`` (workers, or instances behind a load
balancer).  Real ``twistd -n tlsecho`` processes, Python's ``ssl`` client.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from twisted.python import usage

from tlsecho import ConfigurationError, TLSSettings, client_creator
from tlsecho._tls._tickets import session_id_context
from tlsecho.tap import Options

from _processes import ServerProcess, identity, start_server
from _sessions import echo_session
from conftest import TLSFiles


def _key_file(directory: Path, name: str = "ticket.key") -> Path:
    path = directory / name
    path.write_bytes(os.urandom(80))
    path.chmod(0o600)
    return path


def _server(servers: list[ServerProcess], tls_files: TLSFiles, *extra: str) -> int:
    server = start_server(servers, *identity(tls_files), *extra)
    return server.port


def _resumes(first: int, second: int, ca: Path) -> bool:
    """Whether a session made on port ``first`` resumes on port ``second``."""
    _, session, _ = echo_session(first, ca)
    return echo_session(second, ca, session).resumed


def test_session_resumes_on_the_same_process(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """Without a key file a session still resumes where it was made (TLS 1.3 tickets)."""
    port = _server(servers, tls_files)
    resumed, session, _ = echo_session(port, tls_files.ca)
    assert not resumed
    assert echo_session(port, tls_files.ca, session)[0]


def test_per_process_keys_do_not_resume_elsewhere(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """Two instances without a shared key file: a full handshake on the other one."""
    first, second = _server(servers, tls_files), _server(servers, tls_files)
    assert not _resumes(first, second, tls_files.ca)


def test_shared_key_file_resumes_across_instances(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path
) -> None:
    """Instances sharing --ticket-key-file resume each other's sessions."""
    key = _key_file(tmp_path)
    first = _server(servers, tls_files, "--ticket-key-file", str(key))
    second = _server(servers, tls_files, "--ticket-key-file", str(key))
    assert _resumes(first, second, tls_files.ca)
    # And back, with the ticket the second instance issued.
    assert _resumes(second, first, tls_files.ca)


def test_different_client_policy_does_not_resume(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path
) -> None:
    """Same keys, different client-certificate policy: the session is not taken."""
    key = _key_file(tmp_path)
    open_door = _server(servers, tls_files, "--ticket-key-file", str(key))
    checking = _server(
        servers,
        tls_files,
        "--ticket-key-file",
        str(key),
        "--verify",
        "optional",
        "--ca",
        str(tls_files.client_ca),
    )
    assert not _resumes(open_door, checking, tls_files.ca)


def test_reload_rotates_the_ticket_key(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A new key file and SIGHUP: old tickets get a full handshake, new ones resume."""
    key = _key_file(tmp_path)
    port = _server(servers, tls_files, "--ticket-key-file", str(key))
    server = servers[-1]
    _, old_session, _ = echo_session(port, tls_files.ca)
    assert echo_session(port, tls_files.ca, old_session)[0]
    rotated = _key_file(tmp_path, "ticket.key.new")
    os.replace(rotated, key)
    os.kill(server.process.pid, signal.SIGHUP)
    server.wait_for("reloaded")
    assert not echo_session(port, tls_files.ca, old_session)[0]
    _, new_session, _ = echo_session(port, tls_files.ca)
    assert echo_session(port, tls_files.ca, new_session)[0]


@pytest.mark.parametrize(
    ("content", "mode", "reason"),
    [
        (os.urandom(48), 0o600, "holds 48 bytes, not 80; make one with: openssl rand 80"),
        (os.urandom(80), 0o644, "ticket key file is readable by other users"),
        (None, 0o600, "no such file"),
    ],
)
def test_bad_key_file_is_one_line(
    tmp_path: Path, tls_files: TLSFiles, content: bytes | None, mode: int, reason: str
) -> None:
    """Each bad key file is a configuration error naming the option, file and reason."""
    path = tmp_path / "ticket.key"
    if content is not None:
        path.write_bytes(content)
        path.chmod(mode)
    with pytest.raises(usage.UsageError) as raised:
        Options().parseOptions(
            [
                *identity(tls_files),
                "--ticket-key-file",
                str(path),
            ]
        )
    message = str(raised.value)
    assert message.startswith(f"--ticket-key-file {path}: ")
    assert reason in message
    assert "\n" not in message


def test_ticket_keys_are_a_server_option(tmp_path: Path) -> None:
    """The client refuses ticket_key_file."""
    settings = TLSSettings(ticket_key_file=_key_file(tmp_path))
    with pytest.raises(ConfigurationError, match="ticket_key_file"):
        client_creator(settings, "localhost")


def test_unavailable_build_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where ticket keys cannot be set (a stripped build), the option says why."""
    from tlsecho._settings import _ticket_keys
    from tlsecho._tls._openssl_internals import Unavailable, _symbols

    def unavailable(name: str, signature: str) -> None:
        raise Unavailable(f"example.so does not list {name} (stripped?)")

    monkeypatch.setattr(_symbols, "openssl_function", unavailable)
    path = _key_file(tmp_path)
    with pytest.raises(ConfigurationError) as raised:
        _ticket_keys.load_ticket_keys(path)
    assert str(raised.value) == (
        f"ticket_key_file {path}: cannot set session-ticket keys in this build: "
        "example.so does not list SSL_CTX_ctrl (stripped?)"
    )


def test_session_context_follows_the_client_policy(tls_files: TLSFiles) -> None:
    """The session ID context is stable for one policy and differs between policies."""
    base = session_id_context("none", [], [], [])
    assert base == session_id_context("none", [], [], [])
    assert len(base) == 32
    ca = tls_files.client_authority.cert_pem.bytes()
    from cryptography import x509

    trusted = [x509.load_pem_x509_certificate(ca)]
    assert session_id_context("required", trusted, [], []) != base
    assert session_id_context("required", trusted, [], ["cn:a"]) != session_id_context(
        "required", trusted, [], ["cn:b"]
    )
