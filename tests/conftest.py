"""
Shared fixtures: trustme certificate authorities and the PEM files made from them,
and an isolated state directory so no test touches the real development CA.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cryptography
import OpenSSL
import pytest
import trustme
import twisted
from OpenSSL import SSL
from twisted.logger import LogEvent, globalLogPublisher

sys.path.insert(0, str(Path(__file__).parent))


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Print the versions the TLS behaviour depends on."""
    return [
        f"OpenSSL: {SSL.SSLeay_version(SSL.SSLEAY_VERSION).decode()}",
        f"pyOpenSSL: {OpenSSL.__version__}, cryptography: {cryptography.__version__}, "
        f"Twisted: {twisted.__version__}",
    ]


@pytest.fixture(autouse=True)
def state_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own XDG state directory (where the development CA lives)."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(path))
    return path


@dataclass(frozen=True)
class TLSFiles:
    """
    PEM files for a server and a client, from two trustme CAs.

    ``ca`` signed the server certificate; ``client_ca`` signed the client's.
    """

    ca: Path
    server_cert: Path
    server_key: Path
    client_ca: Path
    client_cert: Path
    client_key: Path
    server_ca: trustme.CA
    client_authority: trustme.CA


@pytest.fixture
def ca() -> trustme.CA:
    """The CA of the server certificate."""
    return trustme.CA()


@pytest.fixture
def client_authority() -> trustme.CA:
    """The CA of client certificates."""
    return trustme.CA()


def write_cert(cert: trustme.LeafCert, directory: Path, name: str) -> tuple[Path, Path]:
    """Write a trustme leaf's chain and key as NAME.pem and NAME.key; return both paths."""
    chain = directory / f"{name}.pem"
    key = directory / f"{name}.key"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key.write_bytes(cert.private_key_pem.bytes())
    key.chmod(0o600)
    return chain, key


@pytest.fixture
def tls_files(tmp_path: Path, ca: trustme.CA, client_authority: trustme.CA) -> TLSFiles:
    """Server certificate for localhost/127.0.0.1/::1, client certificate, both CAs."""
    server_cert, server_key = write_cert(
        ca.issue_cert("localhost", "127.0.0.1", "::1"), tmp_path, "server"
    )
    client_cert, client_key = write_cert(
        client_authority.issue_cert("client.example", common_name="client.example"),
        tmp_path,
        "client",
    )
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    client_ca_path = tmp_path / "client-ca.pem"
    client_authority.cert_pem.write_to_path(str(client_ca_path))
    return TLSFiles(
        ca=ca_path,
        server_cert=server_cert,
        server_key=server_key,
        client_ca=client_ca_path,
        client_cert=client_cert,
        client_key=client_key,
        server_ca=ca,
        client_authority=client_authority,
    )


@pytest.fixture
def servers() -> Iterator[list[object]]:
    """Server processes started by a test; each is stopped (by PID) afterwards."""
    from _processes import ServerProcess

    started: list[ServerProcess] = []
    yield started  # type: ignore[misc]
    for server in started:
        server.stop()


class ServerLog(list[LogEvent]):
    """Every event logged during a test, with the echo server's picked out."""

    def connections(self) -> list[LogEvent]:
        """The one-per-connection events of the echo server."""
        from tlsecho import EchoServerProtocol

        return [e for e in self if isinstance(e.get("log_source"), EchoServerProtocol)]

    def only(self) -> LogEvent:
        """The one connection event, asserting there was exactly one."""
        (event,) = self.connections()
        return event


@pytest.fixture
def server_log() -> Iterator[ServerLog]:
    """The events logged (in this process) during the test."""
    events = ServerLog()
    globalLogPublisher.addObserver(events.append)
    try:
        yield events
    finally:
        globalLogPublisher.removeObserver(events.append)
