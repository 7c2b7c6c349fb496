"""
--log-format json: the server logs one JSON object per line, and each connection's
event carries its fields (peer, TLS version, cipher, SNI, ALPN, client, bytes, duration,
reason), under both runners.
"""

from __future__ import annotations

import json

import pytest

from _processes import TWIST_COMMAND, TWISTD_COMMAND, ServerProcess, identity, run_client
from conftest import TLSFiles

FIELDS = {
    "peer",
    "tls_version",
    "cipher",
    "sni",
    "alpn",
    "client",
    "bytes_in",
    "bytes_out",
    "duration",
    "reason",
    "failed",
}


@pytest.mark.parametrize(
    "command", [TWISTD_COMMAND, TWIST_COMMAND], ids=["twistd", "twist"]
)
def test_json_lines_with_connection_fields(
    servers: list, tls_files: TLSFiles, command: list[str]
) -> None:
    """Every output line is JSON; the connection event has every field, in JSON types."""
    server = ServerProcess(
        [
            "--listen",
            "tcp:0:interface=127.0.0.1",
            *identity(tls_files),
            "--log-format",
            "json",
        ],
        command=command,
    )
    servers.append(server)
    port = server.wait_for(r'"address": "127\.0\.0\.1:(\d+)"').group(1)
    result = run_client(
        f"127.0.0.1:{port}", "--ca", str(tls_files.ca), "--servername", "localhost"
    )
    assert result.returncode == 0, result.stderr
    server.wait_for(r'"bytes_in": 6')
    server.stop()
    events = [json.loads(line) for line in server.lines if line.strip()]
    (connection,) = [e for e in events if "bytes_in" in e]
    assert set(connection) >= FIELDS
    assert connection["tls_version"] == "TLSv1.3"
    assert connection["sni"] == "localhost"
    assert connection["bytes_in"] == connection["bytes_out"] == 6
    assert connection["reason"] == "closed"
    assert connection["failed"] is False
    assert isinstance(connection["duration"], float)


def test_unknown_log_format_is_refused(tls_files: TLSFiles) -> None:
    """--log-format other than text or json is a one-line start-up error."""
    from _processes import run_twistd

    result = run_twistd(
        *identity(tls_files),
        "--log-format",
        "xml",
    )
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "tlsecho: --log-format: expected text or json, not 'xml' "
        "(see 'twistd tlsecho --help')"
    )
