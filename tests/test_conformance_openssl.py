"""
Conformance of the real ``twistd tlsecho`` server as ``openssl s_client`` sees it when
forced to versions, cipher suites and groups the server must refuse: each case asserts
the alert the server sends, read from s_client's "SSL alert number N" (an alert it
I{received}), and the cases the server must accept are checked to succeed.  Also:
no compression, no client-initiated renegotiation (RFC 5746 still announced), and
0-RTT early data rejected (RFC 8446 section 4.2.10).

The system OpenSSL (3.0) is the client; the server's own OpenSSL is the one bundled
with cryptography.  Every process runs with a timeout and is stopped by its PID.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
import trustme

from _processes import ServerProcess, identity, start_server
from conftest import TLSFiles, write_cert

pytestmark = pytest.mark.subprocess

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
#: Seconds one s_client or s_server run may take.
TIMEOUT = 20.0
#: How OpenSSL 3 reports an alert it received: "...:SSL alert number 40".
_RECEIVED_ALERT = re.compile(r"SSL alert number (\d+)")
_NEGOTIATED = re.compile(r"^New, (?P<version>\S+), Cipher is (?P<cipher>\S+)$", re.M)

PROTOCOL_VERSION = 70
HANDSHAKE_FAILURE = 40


# Helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """What an ``openssl s_client`` run printed, and how it ended."""

    returncode: int | None
    stdout: str
    stderr: str

    @property
    def received_alerts(self) -> list[int]:
        """Descriptions of the alerts s_client reported receiving."""
        return [int(n) for n in _RECEIVED_ALERT.findall(self.stderr)]

    @property
    def negotiated(self) -> tuple[str, str] | None:
        """(protocol version, cipher) of the ``New, ...`` line, if there is one."""
        match = _NEGOTIATED.search(self.stdout)
        return None if match is None else (match["version"], match["cipher"])


class _Process:
    """
    An OpenSSL command whose output is collected as it comes, so a test can talk to
    it line by line; stopped by its PID, within timeouts.
    """

    def __init__(self, arguments: list[str]):
        self.process = subprocess.Popen(
            [OPENSSL, *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._stdout = bytearray()
        self._stderr = bytearray()
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(stream, buffer), daemon=True)
            for stream, buffer in (
                (self.process.stdout, self._stdout),
                (self.process.stderr, self._stderr),
            )
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[bytes], buffer: bytearray) -> None:
        while chunk := stream.read1(65536):
            with self._changed:
                buffer.extend(chunk)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def stdout(self) -> str:
        with self._changed:
            return self._stdout.decode("utf-8", "replace")

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """Wait until standard output matches C{pattern}; return the match."""
        compiled = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                match = compiled.search(self._stdout.decode("utf-8", "replace"))
                if match:
                    return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not any(r.is_alive() for r in self._readers):
                    raise AssertionError(
                        f"no {pattern!r} from openssl; stdout:\n{self.stdout}\n"
                        f"stderr:\n{self._stderr.decode('utf-8', 'replace')}"
                    )
                self._changed.wait(min(remaining, 0.1))

    def finish(self, timeout: float = TIMEOUT) -> Session:
        """
        Close standard input and wait for the process to end (stopping it by PID
        after C{timeout}); return what it printed.  The returncode is L{None} if it
        had to be stopped.
        """
        assert self.process.stdin is not None
        with suppress(BrokenPipeError):
            self.process.stdin.close()
        try:
            returncode: int | None = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            returncode = None
        for reader in self._readers:
            reader.join(timeout)
        with self._changed:
            return Session(
                returncode,
                self._stdout.decode("utf-8", "replace"),
                self._stderr.decode("utf-8", "replace"),
            )

    def stop(self) -> None:
        """Stop the process by its PID: SIGTERM, then SIGKILL."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@contextmanager
def _running(arguments: list[str]) -> Iterator[_Process]:
    """Run an OpenSSL command for the duration of the block; stop it by PID after."""
    process = _Process(arguments)
    try:
        yield process
    finally:
        process.stop()


def _client_arguments(port: int, tls_files: TLSFiles, *extra: str) -> list[str]:
    return [
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-servername",
        "localhost",
        "-CAfile",
        str(tls_files.ca),
        "-verify_return_error",
        *extra,
    ]


def _s_client(server: ServerProcess, tls_files: TLSFiles, *extra: str) -> Session:
    """Handshake with ``openssl s_client`` and quit at once (standard input is empty)."""
    result = subprocess.run(
        [OPENSSL, *_client_arguments(server.port, tls_files, *extra)],
        input=b"",
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    return Session(
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


def _refused_with(session: Session) -> int:
    """The one alert the server sent to refuse the handshake."""
    assert session.returncode != 0, session.stdout
    assert session.negotiated in (None, ("(NONE)", "(NONE)")), session.stdout
    alerts = session.received_alerts
    assert len(alerts) == 1, session.stderr
    return alerts[0]


def assert_serving(server: ServerProcess, tls_files: TLSFiles) -> None:
    """A well-behaved s_client still gets its echo: the server survived."""
    marker = f"still serving {os.urandom(4).hex()}"
    with _running(_client_arguments(server.port, tls_files, "-ign_eof")) as client:
        client.write(marker.encode() + b"\n")
        client.wait_for(f"^{marker}$")


@dataclass(frozen=True)
class Started:
    """A started server and the files whose CA verifies its certificate."""

    server: ServerProcess
    files: TLSFiles


@pytest.fixture
def start(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path
) -> Callable[..., Started]:
    """
    Start the server with an C{"ecdsa"} (the tls_files one) or C{"rsa"} certificate
    and extra arguments.  An RSA certificate is what makes RSA key exchange and
    ECDHE-RSA suites possible at all, so that only the cipher policy refuses them.
    """

    def start(key_type: str, *arguments: str) -> Started:
        if key_type == "rsa":
            authority = trustme.CA(key_type=trustme.KeyType.RSA)
            leaf = authority.issue_cert(
                "localhost", "127.0.0.1", key_type=trustme.KeyType.RSA
            )
            cert, key = write_cert(leaf, tmp_path, "rsa-server")
            authority.cert_pem.write_to_path(str(tmp_path / "rsa-ca.pem"))
            files = dataclasses.replace(tls_files, ca=tmp_path / "rsa-ca.pem")
        else:
            cert, key, files = tls_files.server_cert, tls_files.server_key, tls_files
        server = start_server(servers, "--cert", str(cert), "--key", str(key), *arguments)
        return Started(server, files)

    return start


@pytest.fixture
def server(start: Callable[..., Started]) -> ServerProcess:
    """The server with its defaults (profile intermediate) and an ECDSA certificate."""
    return start("ecdsa").server


@pytest.fixture
def modern_server(servers: list[ServerProcess], tls_files: TLSFiles) -> ServerProcess:
    """The server with --profile modern."""
    return start_server(
        servers,
        *identity(tls_files),
        "--profile",
        "modern",
    )


# Versions -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_old_version_refused_with_protocol_version(
    server: ServerProcess, tls_files: TLSFiles, version: str
) -> None:
    """
    s_client forced to TLS 1.0 or 1.1 gets a protocol_version alert (70).

    @SECLEVEL=0 lets this OpenSSL offer those versions at all, so the refusal is the
    server's.
    """
    session = _s_client(server, tls_files, version, "-cipher", "DEFAULT:@SECLEVEL=0")
    assert _refused_with(session) == PROTOCOL_VERSION
    assert "alert protocol version" in session.stderr
    assert_serving(server, tls_files)


def test_modern_refuses_tls12_with_protocol_version(
    modern_server: ServerProcess, tls_files: TLSFiles
) -> None:
    """With --profile modern, s_client forced to TLS 1.2 gets a protocol_version alert."""
    session = _s_client(modern_server, tls_files, "-tls1_2")
    assert _refused_with(session) == PROTOCOL_VERSION
    assert_serving(modern_server, tls_files)


def test_modern_accepts_tls13(modern_server: ServerProcess, tls_files: TLSFiles) -> None:
    """With --profile modern, s_client forced to TLS 1.3 completes the handshake."""
    session = _s_client(modern_server, tls_files, "-tls1_3")
    assert session.negotiated is not None
    assert session.negotiated[0] == "TLSv1.3"
    assert "Verify return code: 0 (ok)" in session.stdout


# Cipher suites ------------------------------------------------------------------------

#: TLS 1.2 suites the server must refuse, each with the key type that would make it
#: possible were the cipher policy to allow it.
REFUSED_CIPHERS = [
    ("rsa", "AES128-SHA256"),  # RSA key exchange: no forward secrecy
    ("rsa", "AES128-GCM-SHA256"),  # RSA key exchange, even with AEAD
    ("rsa", "ECDHE-RSA-AES128-SHA"),  # CBC
    ("ecdsa", "ECDHE-ECDSA-AES128-SHA"),  # CBC
    ("ecdsa", "ECDHE-ECDSA-AES256-SHA384"),  # CBC
    ("rsa", "DHE-RSA-AES128-GCM-SHA256"),  # finite-field DHE: left out of the profile
]


@pytest.mark.parametrize(("key_type", "cipher"), REFUSED_CIPHERS)
def test_tls12_cipher_refused_with_handshake_failure(
    start: Callable[..., Started], key_type: str, cipher: str
) -> None:
    """
    s_client forced to TLS 1.2 with one cipher suite outside the profile gets
    handshake_failure (40).

    RFC 5246 section 7.4.1.3 asks for handshake_failure when no suite is acceptable;
    OpenSSL does not use the optional insufficient_security instead.
    """
    started = start(key_type)
    session = _s_client(started.server, started.files, "-tls1_2", "-cipher", cipher)
    assert _refused_with(session) == HANDSHAKE_FAILURE
    assert "alert handshake failure" in session.stderr
    assert_serving(started.server, started.files)


# Groups -------------------------------------------------------------------------------


#: At TLS 1.2 the groups a client lists also bound the curve of an ECDSA certificate
#: (RFC 8422 section 5.1): a client listing only X25519 cannot take the P-256
#: certificate.  The TLS 1.2 group cases therefore use an RSA certificate, so that
#: only the ECDHE group decides; TLS 1.3 keeps the two apart (section 4.2.7).
GROUP_VERSIONS = [("-tls1_2", "rsa"), ("-tls1_3", "ecdsa")]


@pytest.mark.parametrize(("version", "key_type"), GROUP_VERSIONS)
@pytest.mark.parametrize("group", ["ffdhe2048", "X448", "P-521"])
def test_group_refused_with_handshake_failure(
    start: Callable[..., Started], version: str, key_type: str, group: str
) -> None:
    """
    s_client offering only a group outside X25519/P-256/P-384 gets handshake_failure.

    RFC 8446 section 4.1.1: with no group in common the server "MUST abort the handshake
    with either a handshake_failure or an insufficient_security alert"; at TLS 1.2 no
    ECDHE suite can be chosen, which is handshake_failure again (RFC 5246 7.4.1.3).
    """
    started = start(key_type)
    session = _s_client(started.server, started.files, version, "-groups", group)
    assert _refused_with(session) == HANDSHAKE_FAILURE
    assert_serving(started.server, started.files)


@pytest.mark.parametrize(("version", "key_type"), GROUP_VERSIONS)
@pytest.mark.parametrize(
    ("group", "temp_key"),
    [
        ("X25519", "X25519, 253 bits"),
        ("P-256", "ECDH, prime256v1, 256 bits"),
        ("P-384", "ECDH, secp384r1, 384 bits"),
    ],
)
def test_allowed_group_succeeds(
    start: Callable[..., Started], version: str, key_type: str, group: str, temp_key: str
) -> None:
    """s_client offering only X25519, P-256 or P-384 completes a handshake with it."""
    started = start(key_type)
    session = _s_client(started.server, started.files, version, "-groups", group)
    assert session.returncode == 0, session.stderr
    assert f"Server Temp Key: {temp_key}" in session.stdout
    assert "Verify return code: 0 (ok)" in session.stdout


# Compression and renegotiation --------------------------------------------------------


def test_compression_not_negotiated(server: ServerProcess, tls_files: TLSFiles) -> None:
    """
    s_client asking for compression (-comp) at TLS 1.2 gets a ServerHello with null
    compression.

    This OpenSSL 3.0 is built without zlib, so its ClientHello offers only null; the
    raw ClientHello offering DEFLATE is in test_conformance_tlslite.py.
    """
    session = _s_client(server, tls_files, "-tls1_2", "-comp", "-trace")
    assert session.returncode == 0, session.stderr
    assert "compression_method: No Compression (0x00)" in session.stdout
    assert "Compression: NONE" in session.stdout


def test_client_renegotiation_refused(server: ServerProcess, tls_files: TLSFiles) -> None:
    """
    At TLS 1.2, a client's renegotiation (s_client's "R" command) gets the warning alert
    no_renegotiation (100), though the server announces secure renegotiation (RFC 5746).

    RFC 5246 section 7.2.2 lets a server answer a renegotiating ClientHello with
    no_renegotiation; s_client then gives up on the connection by itself.
    """
    # Not -ign_eof, with which s_client sends "R" as data instead of renegotiating.
    arguments = _client_arguments(server.port, tls_files, "-tls1_2", "-msg")
    with _running(arguments) as client:
        client.wait_for("^Secure Renegotiation IS supported$")
        client.write(b"before\n")
        client.wait_for("^before$")
        client.write(b"R\n")
        client.wait_for(r"^<<< TLS 1\.2, Alert \[length 0002\], warning no_renegotiation\n")
        session = client.finish()
    assert re.search(r"warning no_renegotiation\n\s+01 64\n", session.stdout)
    assert "no renegotiation" in session.stderr
    assert_serving(server, tls_files)


# 0-RTT --------------------------------------------------------------------------------


def test_tickets_allow_no_early_data(
    server: ServerProcess, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """Every TLS 1.3 session ticket the server sends says Max Early Data: 0."""
    ticket = tmp_path / "ticket.pem"
    arguments = _client_arguments(
        server.port, tls_files, "-tls1_3", "-sess_out", str(ticket)
    )
    with _running(arguments) as client:
        client.write(b"tickets\n")
        # The tickets come right after the handshake, so before the echo; what
        # s_client prints about them stays in its buffer until it exits.
        client.wait_for("^tickets$")
        session = client.finish()
    limits = re.findall(r"^\s*Max Early Data: (\d+)$", session.stdout, re.M)
    assert limits, session.stdout
    assert set(limits) == {"0"}


def _wait_for_file(path: Path, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.05)


def test_early_data_rejected(
    server: ServerProcess, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """
    0-RTT data sent with a ticket that allows it is rejected, not echoed, and the
    handshake goes on to a working 1-RTT connection (RFC 8446 section 4.2.10).

    The server never issues such a ticket, so it comes from ``openssl s_server
    -early_data`` with the same certificate; tlsecho cannot use it, and must skip the
    early data it cannot decrypt.
    """
    ticket = tmp_path / "ticket.pem"
    accept = [
        "s_server",
        "-accept",
        "127.0.0.1:0",
        "-naccept",
        "1",
        "-early_data",
        "-cert",
        str(tls_files.server_cert),
        "-key",
        str(tls_files.server_key),
    ]
    with _running(accept) as other:
        port = int(other.wait_for(r"^ACCEPT 127\.0\.0\.1:(\d+)$")[1])
        arguments = _client_arguments(port, tls_files, "-tls1_3", "-sess_out", str(ticket))
        with _running(arguments) as client:
            client.write(b"x\n")
            _wait_for_file(ticket)  # s_client writes it when a ticket arrives
            issued = client.finish()
    assert re.search(r"^\s*Max Early Data: 16384$", issued.stdout, re.M), issued.stdout

    early = tmp_path / "early.txt"
    marker = f"EARLY {os.urandom(4).hex()}"
    early.write_text(marker + "\n")
    arguments = _client_arguments(
        server.port,
        tls_files,
        "-sess_in",
        str(ticket),
        "-early_data",
        str(early),
        "-ign_eof",
    )
    with _running(arguments) as client:
        client.wait_for("^Early data was rejected$")
        client.write(b"after\n")
        client.wait_for("^after$")
        stdout = client.stdout
    assert marker not in stdout
    assert "Reused," not in stdout
    assert_serving(server, tls_files)
