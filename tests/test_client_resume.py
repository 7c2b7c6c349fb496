"""
``tlsecho client --resume``: connect twice, offering the first session on the
second connection, and say whether the server resumed it (TLS 1.2 and 1.3), on
the same instance and across instances with and without a shared
``--ticket-key-file``; real ``twistd -n tlsecho`` processes.  And the client's
fail-closed name check on resumption: a resumed session is accepted only for
the leaf the name check approved when the session was made (in memory, with
the creator's session tampered with).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from twisted.python.failure import Failure

from tlsecho import HandshakeFailed, TLSSettings, TLSVersion, client_creator, server_creator
from tlsecho._tls._client_creator import keep_session
from tlsecho._tls._openssl_internals import session_reused

from _loopback import loopback
from _processes import ServerProcess, identity, run_client, start_server
from conftest import TLSFiles

PAYLOAD = b"resume me\n"
VERSIONS = ["1.2", "1.3"]


# The name check on resumption (in memory) ---------------------------------------------


def _resumable_pair(tls_files: TLSFiles, max_tls: TLSVersion) -> tuple[object, object]:
    server = server_creator(
        TLSSettings(
            certificate=tls_files.server_cert,
            private_key=tls_files.server_key,
            max_tls=max_tls,
        )
    )
    client = client_creator(
        TLSSettings(ca=(tls_files.ca,), max_tls=max_tls), "localhost", resumable=True
    )
    return server, client


def _exchange(server: object, client: object) -> tuple[bytes | Failure, bool]:
    """One in-memory echo: its outcome and whether the session was resumed."""
    results: list[bytes | Failure] = []
    connection = loopback(server, client)  # type: ignore[arg-type]
    connection.client.result.addBoth(results.append)
    (outcome,) = results
    # Twisted lets go of the connection once it is closed; the creator keeps it.
    return outcome, session_reused(client._last[0])  # type: ignore[attr-defined]


@pytest.mark.parametrize("max_tls", [TLSVersion.TLSv1_2, TLSVersion.TLSv1_3])
def test_approved_session_resumes(tls_files: TLSFiles, max_tls: TLSVersion) -> None:
    """The session of a verified connection is offered and resumed, and passes."""
    server, client = _resumable_pair(tls_files, max_tls)
    assert _exchange(server, client) == (b"hello", False)
    assert keep_session(client)  # type: ignore[arg-type]
    assert _exchange(server, client) == (b"hello", True)


@pytest.mark.parametrize("approval", [None, b"\0" * 32], ids=["none", "other-leaf"])
@pytest.mark.parametrize("max_tls", [TLSVersion.TLSv1_2, TLSVersion.TLSv1_3])
def test_resumed_session_without_approval_is_refused(
    tls_files: TLSFiles, max_tls: TLSVersion, approval: bytes | None
) -> None:
    """A resumed session whose leaf the name check did not approve fails closed."""
    server, client = _resumable_pair(tls_files, max_tls)
    _exchange(server, client)
    assert keep_session(client)  # type: ignore[arg-type]
    session, approved = client._offer  # type: ignore[attr-defined]
    assert approved is not None
    client._offer = (session, approval)  # type: ignore[attr-defined]
    outcome, resumed = _exchange(server, client)
    assert resumed
    assert isinstance(outcome, Failure)
    assert outcome.check(HandshakeFailed)
    assert outcome.value.reason == (
        "certificate verify failed: the server's certificate was not checked"
    )


# tlsecho client --resume against the plugin -------------------------------------------


def _key_file(directory: Path) -> Path:
    path = directory / "ticket.key"
    path.write_bytes(os.urandom(80))
    path.chmod(0o600)
    return path


def _resume(port: int, tls_files: TLSFiles, version: str) -> str:
    """Run ``tlsecho client --resume``; return its standard error, after checks."""
    result = run_client(
        f"127.0.0.1:{port}",
        "--ca",
        str(tls_files.ca),
        "--min-tls",
        version,
        "--max-tls",
        version,
        "--resume",
        payload=PAYLOAD,
    )
    assert (result.returncode, result.stdout) == (0, PAYLOAD), result.stderr
    return result.stderr.decode()


@pytest.mark.parametrize("version", VERSIONS)
def test_resumes_on_the_same_instance(
    servers: list[ServerProcess], tls_files: TLSFiles, version: str
) -> None:
    server = start_server(servers, *identity(tls_files))
    stderr = _resume(server.port, tls_files, version)
    assert stderr == f"tlsecho client: session resumed (TLSv{version})\n"


@pytest.mark.parametrize("version", VERSIONS)
def test_not_resumed_across_instances_without_shared_keys(
    servers: list[ServerProcess], tls_files: TLSFiles, version: str
) -> None:
    """Two instances behind one port would not resume: shown with a proxy-free
    trick, the second connection going to the other instance."""
    first = start_server(servers, *identity(tls_files))
    second = start_server(servers, *identity(tls_files))
    stderr = _resume_across(first.port, second.port, tls_files, version)
    assert stderr == f"tlsecho client: session not resumed (TLSv{version})\n"


@pytest.mark.parametrize("version", VERSIONS)
def test_resumed_across_instances_sharing_a_ticket_key_file(
    servers: list[ServerProcess], tls_files: TLSFiles, tmp_path: Path, version: str
) -> None:
    key = _key_file(tmp_path)
    first = start_server(servers, *identity(tls_files), "--ticket-key-file", str(key))
    second = start_server(servers, *identity(tls_files), "--ticket-key-file", str(key))
    stderr = _resume_across(first.port, second.port, tls_files, version)
    assert stderr == f"tlsecho client: session resumed (TLSv{version})\n"


def _resume_across(first: int, second: int, tls_files: TLSFiles, version: str) -> str:
    """
    ``tlsecho client --resume`` whose first connection goes to port ``first``
    and second to port ``second``: a small TCP forwarder that switches after the
    first connection, standing in for a load balancer.
    """
    from _forwarder import Forwarder

    with Forwarder([first, second]) as forwarder:
        return _resume(forwarder.port, tls_files, version)
