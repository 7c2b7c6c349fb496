"""
Attacks on how the server describes, logs and accounts for a connection, and on
its server-side identity matching, performed against the real twistd plugin.

See L{hostile.connections} for what the attacker tries and what tlsecho promises.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from pathlib import Path

from OpenSSL import SSL

from _processes import ServerProcess, identity, metrics_of, run_client, start_server
from conftest import TLSFiles
from hostile.connections import (
    client_certificate,
    non_reading_client,
    proxy_v2_unix_header,
    renegotiating_client,
    tls_client,
)

METRICS = ("--metrics", "tcp:0:interface=127.0.0.1")
#: Characters that must never reach a text log from a peer.
FORBIDDEN = ("\x1b", "\r", "\x07", "\u2028", "\u2029", "\x85")


def _wait_active(server: ServerProcess, expected: float, timeout: float = 15.0) -> float:
    """
    Scrape until C{tlsecho_connections_active} is C{expected} or C{timeout}
    passes; return the last value.
    """
    deadline = time.monotonic() + timeout
    while True:
        active = metrics_of(server)["tlsecho_connections_active"]
        if active == expected or time.monotonic() > deadline:
            return active
        time.sleep(0.1)


def _still_served(server: ServerProcess, tls_files: TLSFiles, *arguments: str) -> None:
    result = run_client(
        server.address, "--ca", str(tls_files.ca), *arguments, payload=b"next\n"
    )
    assert result.returncode == 0, (result.stderr, server.output)
    assert result.stdout == b"next\n"


def _line_with(server: ServerProcess, text: str) -> str:
    return server.wait_for(re.escape(text) + ".*").string


def _assert_clean(server: ServerProcess) -> None:
    output = server.output
    for character in FORBIDDEN:
        assert character not in output, (character, output)
    assert "Traceback" not in output, output


# Item 2: describing a connection never leaks its slot ---------------------------------


def test_unparseable_client_san_does_not_leak_connection_slots(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A trusted client certificate whose SAN cannot be parsed is still counted as
    ended, so connections under --max-connections never run out."""
    bad = client_certificate(
        tls_files.client_authority,
        tmp_path,
        "bad-san",
        common_names=["bad"],
        raw_dns_name=b"caf\xc3\xa9\xff.example",
    )
    for verify in ("optional", "required"):
        server = start_server(
            servers,
            *identity(tls_files),
            "--ca",
            str(tls_files.client_ca),
            "--verify",
            verify,
            "--max-connections",
            "2",
            *METRICS,
        )
        for _ in range(3):
            connection = tls_client(server.port, certificate=bad)
            connection.send(b"hello\n")
            assert connection.recv(100) == b"hello\n"
            connection.close()
            assert _wait_active(server, 0) == 0, server.output
        line = _line_with(server, "after 6 bytes echoed")
        assert "client CN=bad, (SAN unreadable)" in line, line
        _still_served(
            server,
            tls_files,
            "--cert",
            str(tls_files.client_cert),
            "--key",
            str(tls_files.client_key),
        )
        assert "Traceback" not in server.output, server.output


def test_proxy_v2_unix_path_not_utf8_does_not_leak_connection_slots(
    servers: list, tls_files: TLSFiles
) -> None:
    """A PROXY v2 header naming an AF_UNIX path that is not UTF-8 is logged escaped,
    and its connection is counted as ended."""
    server = start_server(
        servers,
        *identity(tls_files),
        "--max-connections",
        "2",
        *METRICS,
        listen="haproxy:tcp:0:interface=127.0.0.1",
    )
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            raw.sendall(proxy_v2_unix_header(b"/tmp/\xff\xfe\x1b[2J\nforged"))
        assert _wait_active(server, 0) == 0, server.output
    _line_with(server, r"unix:/tmp/\xff\xfe\x1b[2J\nforged: TLS handshake failed")
    _assert_clean(server)
    # Nothing (no PROXY header) gets a TLS echo through the haproxy: listener;
    # the process also still stops cleanly.
    assert server.stop() == 0, server.output


# Item 5: peer text is escaped and capped in the text log ------------------------------


def test_sni_with_control_characters_is_escaped_in_the_text_log(
    servers: list, tls_files: TLSFiles
) -> None:
    """An SNI name holding ESC, CR, LF, BEL, U+2028 and invalid UTF-8 is logged on one
    line, escaped."""
    server = start_server(servers, *identity(tls_files))
    evil = "x\x1b[31mred\r\n2030-01-01 [-] forged\x07\u2028end".encode() + b"\xff"
    connection = tls_client(server.port, servername=evil)
    connection.send(b"hi")
    assert connection.recv(10) == b"hi"
    connection.close()
    line = _line_with(server, "SNI x")
    assert r"SNI x\x1b[31mred\r\n2030-01-01 [-] forged\x07\u2028end\xff," in line, line
    _assert_clean(server)
    assert not any(line.startswith("2030-01-01") for line in server.lines)


def test_long_sni_is_capped_in_the_text_log(servers: list, tls_files: TLSFiles) -> None:
    """A 250-character SNI name is logged as its first 200 characters and an ellipsis."""
    server = start_server(servers, *identity(tls_files))
    connection = tls_client(server.port, servername=b"a" * 250)
    connection.send(b"hi")
    assert connection.recv(10) == b"hi"
    connection.close()
    line = _line_with(server, "SNI aaaa")
    assert "SNI " + "a" * 200 + "…," in line, line
    assert "a" * 201 not in line


def test_client_common_name_with_control_characters_is_escaped(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A trusted client certificate whose CN holds control characters is logged on
    one line, escaped."""
    server = start_server(
        servers,
        *identity(tls_files),
        "--ca",
        str(tls_files.client_ca),
        "--verify",
        "optional",
    )
    evil = client_certificate(
        tls_files.client_authority,
        tmp_path,
        "evil-cn",
        common_names=["m\x1b]0;owned\x07\r\nforged\u0085x"],
    )
    connection = tls_client(server.port, certificate=evil)
    connection.send(b"hi")
    assert connection.recv(10) == b"hi"
    connection.close()
    line = _line_with(server, "client CN=m")
    assert r"client CN=m\x1b]0;owned\x07\r\nforged\x85x)" in line, line
    _assert_clean(server)


# Item 12: ambiguous identities -------------------------------------------------------


def _allow(servers: list, tls_files: TLSFiles, *rules: str) -> ServerProcess:
    return start_server(
        servers,
        *identity(tls_files),
        "--ca",
        str(tls_files.client_ca),
        "--verify",
        "required",
        *rules,
    )


def _client_with(
    server: ServerProcess, tls_files: TLSFiles, certificate: tuple[Path, Path]
) -> int:
    result = run_client(
        server.address,
        "--ca",
        str(tls_files.ca),
        "--cert",
        str(certificate[0]),
        "--key",
        str(certificate[1]),
    )
    return result.returncode


def test_two_common_names_never_match_allow_cn(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A client certificate with CN=mallory and CN=alice is refused under
    --allow-cn alice, and the log says it has two common names."""
    server = _allow(servers, tls_files, "--allow-cn", "alice")
    for order in (["mallory", "alice"], ["alice", "mallory"], ["alice", "alice"]):
        ambiguous = client_certificate(
            tls_files.client_authority, tmp_path, "two-cn", common_names=order
        )
        assert _client_with(server, tls_files, ambiguous) == 4
    line = _line_with(server, "client certificate not authorized")
    assert "has 2 common names, which --allow-cn never matches" in line, line
    alice = client_certificate(
        tls_files.client_authority, tmp_path, "alice", common_names=["alice"]
    )
    assert _client_with(server, tls_files, alice) == 0


# Item 13: --allow-dns and trailing dots ------------------------------------------------


def test_allow_dns_strips_at_most_one_trailing_dot(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """--allow-dns alice.example matches DNS:alice.example. but not DNS:alice.example..
    (nor a rule with two dots a certificate with one)."""
    server = _allow(servers, tls_files, "--allow-dns", "alice.example")
    two_dots = client_certificate(
        tls_files.client_authority, tmp_path, "two", dns_names=["alice.example.."]
    )
    one_dot = client_certificate(
        tls_files.client_authority, tmp_path, "one", dns_names=["alice.example."]
    )
    assert _client_with(server, tls_files, two_dots) == 4
    assert _client_with(server, tls_files, one_dot) == 0
    strict = _allow(servers, tls_files, "--allow-dns", "alice.example..")
    plain = client_certificate(
        tls_files.client_authority, tmp_path, "plain", dns_names=["alice.example"]
    )
    assert _client_with(strict, tls_files, plain) == 4


# Item 14: --allow-dns never looks at the subject CN -----------------------------------


def test_allow_dns_does_not_match_the_subject_common_name(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """A certificate whose CN (not SAN) is the allowed DNS name is refused under
    --allow-dns."""
    server = _allow(servers, tls_files, "--allow-dns", "alice.example")
    cn_only = client_certificate(
        tls_files.client_authority,
        tmp_path,
        "cn-only",
        common_names=["alice.example"],
        dns_names=["mallory.example"],
    )
    assert _client_with(server, tls_files, cn_only) == 4
    line = _line_with(server, "client certificate not authorized")
    assert "CN=alice.example, DNS:mallory.example" in line, line


# Item 13: --sni-strict with a default certificate that has no SAN ---------------------


def test_sni_strict_default_certificate_without_san_is_one_line_at_start(
    servers: list, tls_files: TLSFiles, tmp_path: Path
) -> None:
    """--sni-strict with a default certificate that has no SAN warns once at start
    and refuses each unknown name with one line, never a traceback."""
    cert, key = client_certificate(
        tls_files.server_ca, tmp_path, "no-san", common_names=["localhost"]
    )
    server = start_server(servers, "--cert", str(cert), "--key", str(key), "--sni-strict")
    for _ in range(3):
        with contextlib.suppress(SSL.Error, OSError):
            tls_client(server.port, servername=b"other.example").close()
    server.wait_for(r"unrecognized name 'other\.example' \(--sni-strict\)")
    deadline = time.monotonic() + 15
    while server.output.count("unrecognized name") < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    output = server.output
    assert output.count("unrecognized name") == 3, output
    assert output.count("has no subjectAltName") == 1, output
    assert "Traceback" not in output, output


# Item 11: true figures ----------------------------------------------------------------


def test_bytes_never_read_are_not_counted_as_echoed(
    servers: list, tls_files: TLSFiles
) -> None:
    """A client that sends a lot and never reads is not counted as having been sent
    everything it sent: bytes_out < bytes_in in the log and the metrics."""
    server = start_server(servers, *identity(tls_files), *METRICS)
    sent = non_reading_client(server.port, 64 * 1024 * 1024)
    assert _wait_active(server, 0) == 0, server.output
    values = metrics_of(server)
    received = values["tlsecho_received_bytes_total"]
    echoed = values["tlsecho_sent_bytes_total"]
    assert 0 < received <= sent
    # What stayed in the server's buffers (at least Twisted's 64 KiB write
    # buffer, where it stops reading) was never sent.
    assert echoed <= received - 32 * 1024, (echoed, received)
    line = _line_with(server, "bytes echoed")
    match = re.search(r"after (\d+) bytes echoed \(of (\d+) received\)", line)
    assert match is not None, line
    assert (int(match.group(1)), int(match.group(2))) == (echoed, received)


def test_refused_tls12_renegotiation_is_logged_as_such(
    servers: list, tls_files: TLSFiles
) -> None:
    """A TLS 1.2 client asking to renegotiate is refused, and the log says
    "renegotiation refused", not a cipher mismatch."""
    server = start_server(servers, *identity(tls_files), "--profile", "intermediate")
    assert renegotiating_client(server.port) == b"before\n"
    line = _line_with(server, "renegotiation refused")
    assert line.endswith(
        ": TLS failed: renegotiation refused (the peer asked to renegotiate TLS 1.2)"
    ), line
    assert "no common cipher" not in server.output, server.output
