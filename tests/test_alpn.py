"""
Tests for ALPN (issue 3, item 5): ``--alpn PROTO`` (repeatable) on server and client;
the server picks its most preferred protocol the client offers, no overlap ends the
handshake with the no_application_protocol alert (RFC 7301 section 3.2), a client
offering no ALPN is served, and ``tlsecho client --verbose`` reports the negotiated
protocol on stderr while stdout stays the echo alone.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from twisted.python.failure import Failure

from tlsecho import (
    ConfigurationError,
    HandshakeFailed,
    TLSSettings,
    TLSVersion,
    client_creator,
    server_creator,
)
from tlsecho.tap import Options

from _loopback import Loopback, OpenClient, loopback
from _processes import ServerProcess, identity, run_client, start_server
from conftest import ServerLog, TLSFiles

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
NO_OVERLAP = "no application protocol in common (ALPN)"
PAYLOAD = b"hello, alpn\n"


# Helpers ------------------------------------------------------------------------------


def _server(files: TLSFiles, alpn: tuple[str, ...] = ("h2", "http/1.1")) -> object:
    return server_creator(
        TLSSettings(certificate=files.server_cert, private_key=files.server_key, alpn=alpn)
    )


def _client(files: TLSFiles, alpn: tuple[str, ...], **settings: object) -> object:
    return client_creator(
        TLSSettings(ca=(files.ca,), alpn=alpn, **settings),  # type: ignore[arg-type]
        "localhost",
    )


def _open(server: object, client: object) -> Loopback:
    connection = loopback(server, client, client=OpenClient())  # type: ignore[arg-type]
    assert connection.client.handshake_done, connection.client.lost
    return connection


def _echo(server: object, client: object) -> bytes | Failure:
    results: list[bytes | Failure] = []
    loopback(server, client).client.result.addBoth(results.append)  # type: ignore[arg-type]
    (outcome,) = results
    return outcome


# In memory ----------------------------------------------------------------------------


@pytest.mark.parametrize("max_tls", [TLSVersion.TLSv1_2, TLSVersion.TLSv1_3])
@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (("h2",), b"h2"),
        (("http/1.1",), b"http/1.1"),
        (("http/1.1", "h2"), b"h2"),
        (("foo", "http/1.1"), b"http/1.1"),
    ],
    ids=["h2", "http1.1", "server-preference", "partial-overlap"],
)
def test_negotiated_protocol(
    tls_files: TLSFiles, offered: tuple[str, ...], chosen: bytes, max_tls: TLSVersion
) -> None:
    """The server picks its most preferred protocol among those the client offers, and
    both sides see it, in TLS 1.2 and 1.3."""
    connection = _open(_server(tls_files), _client(tls_files, offered, max_tls=max_tls))
    assert connection.client_tls.negotiatedProtocol == chosen
    assert connection.server_tls.negotiatedProtocol == chosen


@pytest.mark.parametrize("max_tls", [TLSVersion.TLSv1_2, TLSVersion.TLSv1_3])
def test_no_overlap_fails_with_no_application_protocol(
    tls_files: TLSFiles, server_log: ServerLog, max_tls: TLSVersion
) -> None:
    """A client offering none of the server's protocols fails the handshake with
    no_application_protocol, and the server logs why."""
    outcome = _echo(_server(tls_files), _client(tls_files, ("foo", "bar"), max_tls=max_tls))
    assert isinstance(outcome, Failure), outcome
    assert outcome.check(HandshakeFailed)
    assert outcome.value.reason == NO_OVERLAP
    event = server_log.only()
    assert event["failed"]
    assert event["reason"] == NO_OVERLAP


def test_client_without_alpn_is_served(tls_files: TLSFiles) -> None:
    """A client that offers no ALPN echoes, and no protocol is negotiated."""
    assert _echo(_server(tls_files), _client(tls_files, ())) == b"hello"
    connection = _open(_server(tls_files), _client(tls_files, ()))
    assert connection.server_tls.negotiatedProtocol is None


def test_server_without_alpn_ignores_client_offer(tls_files: TLSFiles) -> None:
    """A server configured without ALPN serves a client that offers it, choosing none."""
    connection = _open(_server(tls_files, alpn=()), _client(tls_files, ("h2",)))
    assert connection.client_tls.negotiatedProtocol is None
    assert _echo(_server(tls_files, alpn=()), _client(tls_files, ("h2",))) == b"hello"


@pytest.mark.parametrize("value", ["", "x" * 256])
def test_invalid_protocol_name(value: str) -> None:
    """An empty or over-long (256-byte) ALPN name is a ConfigurationError naming
    --alpn."""
    with pytest.raises(ConfigurationError) as info:
        TLSSettings(alpn=("h2", value))
    assert info.value.option == "alpn"
    assert str(info.value) == f"alpn: {value!r} is not a protocol name (1 to 255 bytes)"


def test_server_flags_keep_order(tls_files: TLSFiles) -> None:
    """Repeated --alpn flags reach the server's settings in the order given."""
    options = Options()
    options.parseOptions(
        [
            *identity(tls_files),
            "--alpn",
            "http/1.1",
            "--alpn",
            "h2",
        ]
    )
    assert options["configuration"].settings.alpn == ("http/1.1", "h2")


# From outside -------------------------------------------------------------------------


@pytest.fixture
def server(servers: list, tls_files: TLSFiles) -> ServerProcess:
    """twistd tlsecho --alpn h2 --alpn http/1.1."""
    return start_server(
        servers,
        *identity(tls_files),
        "--alpn",
        "h2",
        "--alpn",
        "http/1.1",
    )


def _client_command(
    server: ServerProcess, files: TLSFiles, *arguments: str
) -> subprocess.CompletedProcess[bytes]:
    return run_client(server.address, "--ca", str(files.ca), *arguments, payload=PAYLOAD)


def test_verbose_client_reports_alpn_on_stderr(
    server: ServerProcess, tls_files: TLSFiles
) -> None:
    """tlsecho client --alpn h2 --verbose echoes, writes exactly the echo on stdout, and
    reports "ALPN h2" in one line on stderr."""
    result = _client_command(server, tls_files, "--alpn", "h2", "--verbose")
    assert (result.returncode, result.stdout) == (0, PAYLOAD), result.stderr
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert ", ALPN h2, " in lines[0]


def test_server_preference_from_outside(server: ServerProcess, tls_files: TLSFiles) -> None:
    """tlsecho client --alpn http/1.1 --alpn h2 gets h2, the server's first choice."""
    result = _client_command(
        server, tls_files, "--alpn", "http/1.1", "--alpn", "h2", "--verbose"
    )
    assert result.returncode == 0, result.stderr
    assert b", ALPN h2, " in result.stderr


def test_quiet_client_prints_nothing_extra(
    server: ServerProcess, tls_files: TLSFiles
) -> None:
    """Without --verbose, tlsecho client --alpn h2 prints only the echo."""
    result = _client_command(server, tls_files, "--alpn", "h2")
    assert (result.returncode, result.stdout, result.stderr) == (0, PAYLOAD, b"")


def test_client_without_alpn_connects(server: ServerProcess, tls_files: TLSFiles) -> None:
    """tlsecho client without --alpn echoes, and --verbose says no ALPN was
    negotiated."""
    result = _client_command(server, tls_files, "--verbose")
    assert (result.returncode, result.stdout) == (0, PAYLOAD), result.stderr
    assert b", ALPN (none), " in result.stderr


@pytest.mark.parametrize("version", [[], ["--max-tls", "1.2"]], ids=["1.3", "1.2"])
def test_no_overlap_client_exits_4(
    server: ServerProcess, tls_files: TLSFiles, version: list[str]
) -> None:
    """tlsecho client --alpn foo exits 4 with one line naming ALPN, and nothing on
    stdout; the server logs the same reason."""
    result = _client_command(server, tls_files, "--alpn", "foo", *version)
    assert result.returncode == 4, result.stderr
    assert result.stdout == b""
    assert result.stderr.decode().splitlines() == [
        f"tlsecho client: {NO_OVERLAP} (server '127.0.0.1' at {server.address})"
    ]
    server.wait_for(r"TLS handshake failed: no application protocol in common \(ALPN\)")


def _s_client(server: ServerProcess, files: TLSFiles, alpn: str) -> tuple[int, str, str]:
    result = subprocess.run(
        [
            OPENSSL,
            "s_client",
            "-connect",
            f"127.0.0.1:{server.port}",
            "-servername",
            "localhost",
            "-CAfile",
            str(files.ca),
            "-alpn",
            alpn,
        ],
        input=b"",
        capture_output=True,
        timeout=20,
        check=False,
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def test_openssl_no_overlap_gets_alert_120(
    server: ServerProcess, tls_files: TLSFiles
) -> None:
    """openssl s_client -alpn foo receives the no_application_protocol alert (120)."""
    returncode, stdout, stderr = _s_client(server, tls_files, "foo")
    assert returncode != 0, stdout
    assert "alert no application protocol" in stderr
    assert "SSL alert number 120" in stderr
    assert server.process.poll() is None


def test_openssl_negotiates_http11(server: ServerProcess, tls_files: TLSFiles) -> None:
    """openssl s_client -alpn foo,http/1.1 negotiates http/1.1."""
    returncode, stdout, stderr = _s_client(server, tls_files, "foo,http/1.1")
    assert returncode == 0, stdout + stderr
    assert "ALPN protocol: http/1.1" in stdout.splitlines()


def test_server_without_alpn_serves_alpn_clients_from_outside(
    servers: list, tls_files: TLSFiles
) -> None:
    """A server started without --alpn ignores ALPN (RFC 7301): openssl s_client -alpn h2
    completes the handshake with no protocol negotiated, and tlsecho client --alpn h2
    echoes."""
    server = start_server(
        servers, "--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)
    )
    returncode, stdout, stderr = _s_client(server, tls_files, "h2,http/1.1")
    assert returncode == 0, stdout + stderr
    assert "No ALPN negotiated" in stdout.splitlines()
    result = _client_command(server, tls_files, "--alpn", "h2")
    assert (result.returncode, result.stdout, result.stderr) == (0, PAYLOAD, b"")
