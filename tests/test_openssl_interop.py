"""
Interoperability of the tlsecho plugin with ``openssl s_client``: protocol versions,
cipher suites, the certificate chain sent, client-certificate requests and echo,
as an independent TLS implementation sees them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.x509.oid import NameOID

from _processes import ServerProcess, start_server
from conftest import TLSFiles, write_cert

pytestmark = pytest.mark.subprocess

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
_NEGOTIATED = re.compile(r"^New, (?P<version>\S+), Cipher is (?P<cipher>\S+)$", re.M)
_PEM = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.DOTALL
)


# Helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """What an ``openssl s_client`` run printed, and how it ended."""

    returncode: int | None
    stdout: str
    stderr: str

    @property
    def negotiated(self) -> tuple[str, str] | None:
        """(protocol version, cipher) of the ``New, ...`` line, if there is one."""
        match = _NEGOTIATED.search(self.stdout)
        return None if match is None else (match["version"], match["cipher"])


def _connect_args(server: ServerProcess, tls_files: TLSFiles) -> list[str]:
    return [
        "-connect",
        f"127.0.0.1:{server.port}",
        "-servername",
        "localhost",
        "-CAfile",
        str(tls_files.ca),
        "-verify_return_error",
    ]


def _s_client(server: ServerProcess, tls_files: TLSFiles, *extra: str) -> Session:
    """
    Handshake with ``openssl s_client`` and quit at once (standard input is empty).
    """
    result = subprocess.run(
        [OPENSSL, "s_client", *_connect_args(server, tls_files), *extra],
        input=b"",
        capture_output=True,
        timeout=20,
        check=False,
    )
    return Session(
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


def _s_client_exchange(
    server: ServerProcess,
    tls_files: TLSFiles,
    payload: bytes,
    *extra: str,
    timeout: float = 15.0,
) -> tuple[Session, bytes]:
    """
    Run ``openssl s_client -ign_eof``, send ``payload``, and read until it has come
    back on standard output, the process ends by itself, or ``timeout`` passes; then
    stop the process by its PID.  Returns the session and the raw standard output.
    The returncode is L{None} if the process had to be stopped.
    """
    process = subprocess.Popen(
        [OPENSSL, "s_client", "-ign_eof", *_connect_args(server, tls_files), *extra],
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
            if payload and payload in received:
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
        # s_client may already have ended (a refused handshake).
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(payload)
            process.stdin.flush()
        done.wait(timeout)
        if not (payload and payload in received):
            # Standard output ended (or the time is up): let the process end by itself.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        returncode = process.poll()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        for reader in readers:
            reader.join(10)
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
    session = Session(
        returncode,
        bytes(received).decode("utf-8", "replace"),
        errors.decode("utf-8", "replace"),
    )
    return session, bytes(received)


def _serve(servers: list, cert: Path, key: Path, *arguments: str) -> ServerProcess:
    return start_server(servers, "--cert", str(cert), "--key", str(key), *arguments)


def _organizational_unit(ca: trustme.CA) -> str:
    """The OU of a trustme CA, unique per CA ("Testing CA #...")."""
    certificate = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    (attribute,) = certificate.subject.get_attributes_for_oid(
        NameOID.ORGANIZATIONAL_UNIT_NAME
    )
    return str(attribute.value)


@pytest.fixture
def rsa_server_files(tls_files: TLSFiles, tmp_path: Path) -> tuple[Path, Path]:
    """An RSA server certificate (for localhost) from the same CA as tls_files.ca."""
    leaf = tls_files.server_ca.issue_cert(
        "localhost", "127.0.0.1", key_type=trustme.KeyType.RSA
    )
    return write_cert(leaf, tmp_path, "rsa-server")


# Versions and ciphers -----------------------------------------------------------------


def test_default_handshake_is_tls13_and_verifies(
    servers: list, tls_files: TLSFiles
) -> None:
    """By default s_client negotiates TLS 1.3 and verifies the server's chain."""
    server = _serve(servers, tls_files.server_cert, tls_files.server_key)
    session = _s_client(server, tls_files, "-verify_hostname", "localhost")
    assert session.returncode == 0, session.stderr
    assert session.negotiated is not None, session.stdout
    assert session.negotiated[0] == "TLSv1.3"
    assert "Verify return code: 0 (ok)" in session.stdout


@pytest.mark.parametrize("key_type", ["ecdsa", "rsa"])
def test_tls12_negotiates_an_ecdhe_aead_cipher(
    servers: list,
    tls_files: TLSFiles,
    rsa_server_files: tuple[Path, Path],
    key_type: str,
) -> None:
    """With -tls1_2, s_client gets an ECDHE key exchange and an AEAD cipher (GCM or
    ChaCha20-Poly1305), for ECDSA and RSA server keys alike."""
    cert, key = (
        rsa_server_files
        if key_type == "rsa"
        else (tls_files.server_cert, tls_files.server_key)
    )
    server = _serve(servers, cert, key)
    session = _s_client(server, tls_files, "-tls1_2")
    assert session.returncode == 0, session.stderr
    assert session.negotiated is not None, session.stdout
    version, cipher = session.negotiated
    assert version == "TLSv1.2"
    assert cipher.startswith(f"ECDHE-{key_type.upper()}-"), cipher
    assert "-GCM-" in cipher or cipher.endswith("-CHACHA20-POLY1305"), cipher
    assert "Verify return code: 0 (ok)" in session.stdout


@pytest.mark.parametrize("version_flag", ["-tls1_1", "-tls1"])
def test_tls_below_12_is_refused(
    servers: list,
    tls_files: TLSFiles,
    rsa_server_files: tuple[Path, Path],
    version_flag: str,
) -> None:
    """A TLS 1.1 or 1.0 client is refused by the server with a protocol_version alert."""
    server = _serve(servers, *rsa_server_files)
    # SECLEVEL=0 lets this OpenSSL offer the old versions at all, so that the refusal
    # is the server's and not the client's own.
    session = _s_client(server, tls_files, version_flag, "-cipher", "DEFAULT:@SECLEVEL=0")
    assert session.returncode != 0, session.stdout
    assert session.negotiated is not None, session.stdout
    assert session.negotiated[1] == "(NONE)"
    assert "alert protocol version" in session.stderr


def test_non_ecdhe_non_aead_cipher_is_refused(
    servers: list, tls_files: TLSFiles, rsa_server_files: tuple[Path, Path]
) -> None:
    """A TLS 1.2 client offering only AES128-SHA (RSA key exchange, CBC) is refused,
    even though the server's RSA certificate could serve it."""
    server = _serve(servers, *rsa_server_files)
    session = _s_client(server, tls_files, "-tls1_2", "-cipher", "AES128-SHA")
    assert session.returncode != 0, session.stdout
    assert session.negotiated is not None, session.stdout
    assert session.negotiated[1] == "(NONE)"
    assert "alert handshake failure" in session.stderr


# Certificate chain --------------------------------------------------------------------


def test_intermediate_certificate_is_sent(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A server certificate from an intermediate CA is sent with that intermediate, so
    s_client trusting only the root verifies it and shows the full chain."""
    intermediate = tls_files.server_ca.create_child_ca()
    leaf = intermediate.issue_cert("localhost", "127.0.0.1")
    cert, key = write_cert(leaf, tmp_path, "chained")
    server = _serve(servers, cert, key)
    session = _s_client(server, tls_files, "-showcerts")
    assert session.returncode == 0, session.stderr
    assert "Verify return code: 0 (ok)" in session.stdout
    sent = _PEM.findall(session.stdout.encode())
    expected = [blob.bytes().strip() for blob in leaf.cert_chain_pems]
    assert [pem.replace(b"\r\n", b"\n") for pem in sent] == expected
    assert re.search(
        rf"^ 1 s:.*{re.escape(_organizational_unit(intermediate))}",
        session.stdout,
        re.M,
    ), session.stdout


# Client certificates ------------------------------------------------------------------


def _requiring_server(servers: list, tls_files: TLSFiles) -> ServerProcess:
    return _serve(
        servers,
        tls_files.server_cert,
        tls_files.server_key,
        "--verify",
        "required",
        "--ca",
        str(tls_files.client_ca),
    )


def test_verify_required_refuses_s_client_without_certificate(
    servers: list, tls_files: TLSFiles
) -> None:
    """With --verify required, s_client without a certificate is refused (a
    certificate_required alert under TLS 1.3) and gets no echo."""
    server = _requiring_server(servers, tls_files)
    payload = b"no certificate here\n"
    session, received = _s_client_exchange(server, tls_files, payload)
    assert session.returncode not in (None, 0), session.stderr
    assert "alert certificate required" in session.stderr
    assert payload not in received


def test_verify_required_accepts_s_client_with_certificate(
    servers: list, tls_files: TLSFiles
) -> None:
    """With --verify required, s_client with -cert/-key from the client CA gets its
    bytes echoed."""
    server = _requiring_server(servers, tls_files)
    payload = b"mutual TLS works\n"
    session, received = _s_client_exchange(
        server,
        tls_files,
        payload,
        "-cert",
        str(tls_files.client_cert),
        "-key",
        str(tls_files.client_key),
    )
    assert payload in received, session.stderr
    assert "alert" not in session.stderr


def test_acceptable_client_ca_names_list_the_client_ca(
    servers: list, tls_files: TLSFiles
) -> None:
    """The certificate request names the --ca certificate authority (and not others),
    as s_client shows under 'Acceptable client certificate CA names'."""
    server = _requiring_server(servers, tls_files)
    session = _s_client(
        server,
        tls_files,
        "-cert",
        str(tls_files.client_cert),
        "-key",
        str(tls_files.client_key),
    )
    assert session.returncode == 0, session.stderr
    match = re.search(
        r"^Acceptable client certificate CA names\n(?P<names>(?:.+\n)*?)"
        r"(?=^(?:Requested Signature|Client Certificate Types|Shared|Peer|---))",
        session.stdout,
        re.M,
    )
    assert match is not None, session.stdout
    names = match["names"]
    assert _organizational_unit(tls_files.client_authority) in names
    assert _organizational_unit(tls_files.server_ca) not in names


# Echo ---------------------------------------------------------------------------------


def test_bytes_echo_through_s_client(servers: list, tls_files: TLSFiles) -> None:
    """Bytes sent through s_client (text and binary) come back unchanged."""
    server = _serve(servers, tls_files.server_cert, tls_files.server_key)
    payload = b"echo through openssl\n" + os.urandom(4096) + b"\nend\n"
    session, received = _s_client_exchange(server, tls_files, payload, "-quiet")
    assert received == payload, session.stderr
