"""
Prometheus metrics (--metrics), the connection limit (--max-connections), and the
per-connection log fields, checked against the real plugin.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import ssl
import string

import pytest
from cryptography import x509
from prometheus_client import generate_latest

from tlsecho._app._metric_labels import FAILURE_CLASSES, failure_class
from tlsecho._app._metrics import ServerMetrics

from _processes import identity, metrics_of, run_client, start_server
from conftest import TLSFiles


def _tls(port: int, tls_files: TLSFiles) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(tls_files.ca))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def test_metrics_limits_and_log_fields(servers: list, tls_files: TLSFiles) -> None:
    """Connections, handshakes, failures, bytes, durations, certificate expiry, reloads
    and limit refusals are all counted; each connection logs its fields."""
    server = start_server(
        servers,
        *identity(tls_files),
        "--metrics",
        "tcp:0:interface=127.0.0.1",
        "--max-connections",
        "2",
    )
    port = server.port
    result = run_client(server.address, "--ca", str(tls_files.ca), payload=b"x" * 1000)
    assert result.returncode == 0, result.stderr
    server.wait_for(
        r"closed after 1000 bytes echoed .*TLSv1\.3, TLS_\w+, group \w+, "
        r"SNI None"
    )
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as plain,
        contextlib.suppress(ConnectionResetError),  # closed, maybe by a reset
    ):
        plain.sendall(b"GET / HTTP/1.0\r\n\r\n")
        plain.recv(100)
    server.wait_for("TLS handshake failed: the peer sent plain HTTP to a TLS port")
    first, second = _tls(port, tls_files), _tls(port, tls_files)
    try:
        # Refused at once: a reset, perhaps even before connect() returns.
        with contextlib.suppress(ConnectionResetError):
            third = socket.create_connection(("127.0.0.1", port), timeout=10)
            try:
                assert third.recv(100) == b""
            finally:
                third.close()
        server.wait_for(r"refused: 2 connections are open \(--max-connections\)")
        first.sendall(b"still served\n")
        assert first.recv(100) == b"still served\n"
        os.kill(server.process.pid, signal.SIGHUP)
        server.wait_for("reloaded the TLS configuration")
        values = metrics_of(server)
    finally:
        first.close()
        second.close()
    not_after = x509.load_pem_x509_certificate(
        tls_files.server_cert.read_bytes()
    ).not_valid_after_utc.timestamp()
    assert values["tlsecho_connections_active"] == 2
    assert values["tlsecho_connections_total"] == 4
    assert values['tlsecho_connections_refused_total{limit="max-connections"}'] == 1
    assert values['tlsecho_connections_refused_total{limit="max-connections-per-ip"}'] == 0
    assert (
        values['tlsecho_failures_total{reason="the peer sent plain HTTP to a TLS port"}']
        == 1
    )
    failed = 'tlsecho_handshakes_total{cipher="",group="none",outcome="failed",version=""}'
    assert values[failed] == 1
    ok = [
        k
        for k in values
        if k.startswith("tlsecho_handshakes_total{") and 'outcome="ok"' in k
    ]
    assert ok
    assert all('version="TLSv1.3"' in k for k in ok)
    assert sum(values[k] for k in ok) == 1
    assert values["tlsecho_received_bytes_total"] == 1000
    assert values["tlsecho_sent_bytes_total"] == 1000
    assert values["tlsecho_handshake_duration_seconds_count"] == 1
    assert 0 < values["tlsecho_handshake_duration_seconds_sum"] < 5
    (expiry,) = [k for k in values if k.startswith("tlsecho_certificate_not_after")]
    assert 'certificate="--cert"' in expiry
    assert values[expiry] == not_after
    assert values['tlsecho_reloads_total{result="ok"}'] == 1
    assert values['tlsecho_reloads_total{result="failed"}'] == 0


def test_client_identity_and_alpn_are_logged(servers: list, tls_files: TLSFiles) -> None:
    """With mutual TLS and ALPN, the connection's log line names the client and protocol."""
    server = start_server(
        servers,
        *identity(tls_files),
        "--ca",
        str(tls_files.client_ca),
        "--verify",
        "required",
        "--alpn",
        "echo/1",
    )
    result = run_client(
        server.address,
        "--ca",
        str(tls_files.ca),
        "--cert",
        str(tls_files.client_cert),
        "--key",
        str(tls_files.client_key),
        "--alpn",
        "echo/1",
        "--servername",
        "localhost",
    )
    assert result.returncode == 0, result.stderr
    line = server.wait_for(r"closed after \d+ bytes echoed .*").group(0)
    assert "SNI localhost" in line
    assert "ALPN echo/1" in line
    assert re.search(r"client CN=client\.example, DNS:client\.example", line), line


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("handshake timeout", "handshake timeout"),
        ("no PROXY header", "no PROXY header"),
        ("invalid PROXY header", "invalid PROXY header"),
        ("PROXY header from 203.0.113.9, not --proxy-trusted", "PROXY header refused"),
        ("unrecognized name 'evil.example' (--sni-strict)", "unrecognized name"),
        # Peer text that looks like another class is still matched on the start.
        ("unrecognized name 'PROXY.renegotiation' (--sni-strict)", "unrecognized name"),
        (
            "client certificate not authorized (CN=\x1b[31mroot, DNS:PROXY): "
            "no --allow-* rule matches",
            "client certificate not authorized",
        ),
        (
            "certificate verify failed: unknown CA (unable to get local issuer "
            "certificate)",
            "certificate verify failed",
        ),
        ("certificate verify failed: certificate revoked", "certificate verify failed"),
        ("no client certificate", "no client certificate"),
        ("protocol version: no TLS version in common", "protocol version"),
        ("no cipher or signature algorithm in common", "no cipher in common"),
        (
            "the peer sent plain HTTP to a TLS port",
            "the peer sent plain HTTP to a TLS port",
        ),
        (
            "the peer does not speak TLS (wrong version number)",
            "the peer does not speak TLS",
        ),
        ("the peer sent a malformed TLS record", "the peer does not speak TLS"),
        ("renegotiation refused", "renegotiation refused"),
        (
            "the peer does not trust our certificate (unknown CA)",
            "the peer rejected our certificate",
        ),
        ("the peer sent the alert 'bad record mac'", "the peer sent an alert"),
        (
            "connection closed without close_notify",
            "connection closed without close_notify",
        ),
        ("connection lost", "connection lost"),
        ("TLS error: some new openssl reason", "TLS error"),
        ("", "other"),
        ("\x00\xff" * 1000, "other"),
    ],
)
def test_failure_class(reason: str, expected: str) -> None:
    """Each failure reason is counted under a class from the fixed set."""
    assert failure_class(reason) == expected
    assert expected in FAILURE_CLASSES


def test_failure_class_is_total() -> None:
    """Any text, or no text, gives one of the fixed classes (C{"other"} at worst)."""
    rng = random.Random(10)
    alphabet = "PROXY TLS peer error no the (ALPN)\x1b\r\n\u2028é" + string.printable
    samples: list[object] = [None, 42, b"bytes", "\ud800"]
    samples += ["".join(rng.choices(alphabet, k=rng.randrange(60))) for _ in range(2000)]
    classes = {failure_class(sample) for sample in samples}
    assert classes <= set(FAILURE_CLASSES)
    assert "other" in classes


def test_failure_labels_are_classes_not_peer_text() -> None:
    """A failure whose reason holds peer text is counted under its class only."""
    metrics = ServerMetrics()
    for name in ("a.example", "b.example", "\x1b]0;owned\x07"):
        metrics.connection_opened()
        metrics.connection_ended(
            {
                "bytes_in": 0,
                "bytes_out": 0,
                "handshake_seconds": None,
                "failed": True,
                "stage": "TLS handshake",
                "reason": f"unrecognized name {name!r} (--sni-strict)",
            }
        )
    text = generate_latest(metrics.registry).decode()
    failures = [
        line for line in text.splitlines() if line.startswith("tlsecho_failures_total")
    ]
    assert failures == ['tlsecho_failures_total{reason="unrecognized name"} 3.0']
