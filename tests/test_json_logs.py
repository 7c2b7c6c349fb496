"""
--log-format json: the real plugin writes one flat JSON object per line in the
documented schema (docs/operations.md, "JSON log schema"): time, level, event,
message, and a connection's fields, under both runners; and the documented
default, text, holds for both runners whatever standard output is.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import socket
from pathlib import Path

import pytest

from tlsecho._app._log_schema import BASE, EVENT_FIELDS, EVENTS, FIELDS, json_line

from _docs import doc_block
from _processes import (
    BIN,
    TWIST_COMMAND,
    TWISTD_COMMAND,
    ServerProcess,
    identity,
    metrics_of,
    run_client,
    start_server,
)
from conftest import TLSFiles

OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"

#: The connection fields, as the issue and DESIGN.md name them.
CONNECTION = {
    "peer",
    "via",
    "tls_version",
    "cipher",
    "group",
    "sni",
    "alpn",
    "client",
    "bytes_in",
    "bytes_out",
    "duration_s",
    "reason",
}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "string or null": (str, type(None)),
    "integer": (int,),
    "number": (int, float),
}
LEVELS = {"debug", "info", "warn", "error", "critical"}


def checked(line: str, recent: bool = True) -> dict[str, object]:
    """One log line, parsed and checked against the schema."""
    record = json.loads(line)
    assert isinstance(record, dict), line
    name = record["event"]
    assert name in EVENTS, line
    expected = {*BASE, *EVENT_FIELDS.get(name, ())}
    assert expected <= set(record) <= expected | {"worker", "traceback"}, line
    assert not [key for key in record if key.startswith("log_")], line
    for key, value in record.items():
        kind = FIELDS[key][0]
        assert isinstance(value, TYPES[kind]), (key, value, line)
        assert not isinstance(value, bool), (key, line)
    assert record["level"] in LEVELS, line
    assert ISO_UTC.match(str(record["time"])), line
    if not recent:
        return record
    when = datetime.datetime.fromisoformat(str(record["time"]).replace("Z", "+00:00"))
    now = datetime.datetime.now(datetime.UTC)
    assert abs((now - when).total_seconds()) < 3600, line
    return record


@pytest.mark.parametrize(
    "command", [TWISTD_COMMAND, TWIST_COMMAND], ids=["twistd", "twist"]
)
def test_every_line_is_in_the_schema(
    servers: list, tls_files: TLSFiles, command: list[str]
) -> None:
    """A start, a good connection, a failed one, a reload and a stop: every line is
    one JSON object with exactly the documented keys, in their types; a
    connection's fields are flat and its message is the text log's."""
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
    port = int(server.wait_for(r'"address":"127\.0\.0\.1:(\d+)"').group(1))
    result = run_client(
        f"127.0.0.1:{port}", "--ca", str(tls_files.ca), "--servername", "localhost"
    )
    assert result.returncode == 0, result.stderr
    server.wait_for(r'"event":"connection\.closed"')
    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        plain.sendall(b"GET / HTTP/1.0\r\n\r\n")
        plain.settimeout(10)
        while plain.recv(4096):
            pass
    server.wait_for(r'"event":"connection\.failed"')
    os.kill(server.process.pid, signal.SIGHUP)
    server.wait_for(r'"event":"reload\.ok"')
    assert server.stop() == 0
    records = [checked(line) for line in server.lines if line.strip()]
    by_event = {}
    for record in records:
        by_event.setdefault(record["event"], []).append(record)
    assert {"server.starting", "server.listening", "reload.ok"} <= set(by_event)
    (closed,) = by_event["connection.closed"]
    assert set(closed) == {*BASE, *CONNECTION}
    assert closed["level"] == "info"
    assert closed["peer"].startswith("127.0.0.1:")  # type: ignore[union-attr]
    assert closed["tls_version"] == "TLSv1.3"
    assert closed["sni"] == "localhost"
    assert closed["bytes_in"] == closed["bytes_out"] == 6
    assert closed["reason"] == "closed"
    assert closed["via"] is None
    assert isinstance(closed["duration_s"], float)
    assert str(closed["message"]).startswith(f"{closed['peer']}: closed after 6 bytes")
    (failed,) = by_event["connection.failed"]
    assert set(failed) == {*BASE, *CONNECTION}
    assert failed["level"] == "warn"
    assert failed["cipher"] is None
    assert "TLS handshake failed" in str(failed["message"])
    (listening,) = by_event["server.listening"]
    assert listening["address"] == f"127.0.0.1:{port}"
    assert listening["listen"] == "tcp:0:interface=127.0.0.1"


def test_a_line_is_one_line_of_ascii() -> None:
    """Whatever a value holds (a line separator, a lone surrogate, an object), the
    line is one line of ASCII JSON, and a field the event lacks is null."""
    line = json_line(
        {
            "event": "connection.closed",
            "peer": "a\u2028b\udcff",
            "reason": object(),
            "duration": 0.1234567,
        },
        seconds=0.0,
        level="info",
        message="x\ny",
    )
    assert line.isascii()
    assert "\n" not in line
    record = json.loads(line)
    assert record["time"] == "1970-01-01T00:00:00.000Z"
    assert record["peer"] == "a\u2028b\udcff"
    assert record["sni"] is None
    assert record["duration_s"] == 0.123457
    assert isinstance(record["reason"], str)


@pytest.mark.parametrize(
    "command",
    [[TWISTD_COMMAND[0], "-n", "--pidfile="], [str(BIN / "twist")]],
    ids=["twistd", "twist"],
)
def test_text_is_the_default_for_both_runners(
    servers: list, tls_files: TLSFiles, command: list[str]
) -> None:
    """Without --log-format, both runners log text, although standard output is a
    pipe (twist alone would choose JSON)."""
    server = start_server(servers, *identity(tls_files), command=command)
    server.stop()
    lines = [line for line in server.lines if line.strip()]
    assert lines
    for line in lines:
        assert not line.lstrip().startswith("{"), line
        assert re.match(r"^\d{4}-\d\d-\d\dT\S+ \[[^\]]*\] ", line), line


def test_docs_list_every_event_and_field() -> None:
    """docs/operations.md's JSON log tables are the schema: every field with its
    type, every event name, nothing else; its example line is in the schema."""
    example = doc_block("docs/operations.md", "tests/test_json_logs.py")
    assert set(checked(example.text.strip(), recent=False)) == {*BASE, *CONNECTION}
    text = OPERATIONS.read_text()
    rows = re.findall(r"^\| `([a-z_.]+)` \| ([^|]+?) \|", text, re.MULTILINE)
    fields = {name: kind for name, kind in rows if kind in TYPES}
    events = {name for name, kind in rows if kind not in TYPES}
    assert fields == {name: kind for name, (kind, _) in FIELDS.items()}
    assert events == set(EVENTS)


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


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["single", "workers"])
def test_a_healthy_start_and_scrape_log_no_warning(
    servers: list, tls_files: TLSFiles, workers: list[str]
) -> None:
    """A healthy start, a connection and two /metrics scrapes log nothing at warning
    or above, and no access-log line (with --workers, no prometheus-client warning
    from any worker)."""
    server = ServerProcess(
        [
            "--listen",
            "tcp:0:interface=127.0.0.1",
            *identity(tls_files),
            "--metrics",
            "tcp:0:interface=127.0.0.1",
            "--log-format",
            "json",
            *workers,
        ]
    )
    servers.append(server)
    port = int(
        server.wait_for(
            r'"event":"server\.listening".*"address":"127\.0\.0\.1:(\d+)"'
        ).group(1)
    )
    if workers:
        # Each worker has started serving (the gauge is set then).
        for number in (1, 2):
            server.wait_for(rf'"event":"server\.listening".*"worker":{number}\b')
    assert metrics_of(server)["tlsecho_connections_total"] == 0
    result = run_client(f"127.0.0.1:{port}", "--ca", str(tls_files.ca))
    assert result.returncode == 0, result.stderr
    server.wait_for(r'"event":"connection\.closed"')
    assert metrics_of(server)["tlsecho_connections_total"] == 1
    assert server.stop() == 0
    records = [checked(line) for line in server.lines if line.strip()]
    loud = [r for r in records if r["level"] not in ("debug", "info")]
    assert loud == []
    assert not [r for r in records if "/metrics HTTP" in str(r["message"])]
