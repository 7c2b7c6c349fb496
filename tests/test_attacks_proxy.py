"""
Attacks on C{haproxy:} listeners (see L{hostile.proxy}): spoofed headers from
untrusted sources, split headers, silent health checks, huge v2 headers and
malformed v1/v2 content, against the protocol in memory and the real plugin.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
from pathlib import Path

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tlsecho._net._proxy import MAX_V2_HEADER, _LoggedProxyFactory, proxy_state

from _processes import ServerProcess, identity, metrics_of, run_twistd, start_server
from conftest import TLSFiles
from hostile.proxy import (
    echo_after,
    is_closed,
    tlv,
    v1,
    v2,
    v2_inet,
    v2_unix,
)

PROXY_LISTEN = "haproxy:tcp:0:interface=127.0.0.1"
METRICS = ("--metrics", "tcp:0:interface=127.0.0.1")
_NO_TRACEBACK = re.compile(r"Traceback|Unhandled Error")


class _Recorder(Protocol):
    """The protocol behind the PROXY layer: records what reaches it."""

    def __init__(self) -> None:
        self.received = b""
        self.lost: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.lost = reason


def _connect(
    peer: object = None, trusted: tuple[str, ...] | None = None
) -> tuple[object, _Recorder, StringTransport]:
    """A PROXY wrapper around a recorder, on a StringTransport from C{peer}."""
    if trusted is None:
        factory = _LoggedProxyFactory(Factory.forProtocol(_Recorder))
    else:
        from tlsecho._net._proxy import trusted_sources

        factory = _LoggedProxyFactory(
            Factory.forProtocol(_Recorder), trusted=trusted_sources(trusted)
        )
    transport = StringTransport(
        peerAddress=peer or IPv4Address("TCP", "127.0.0.1", 40000)  # type: ignore[arg-type]
    )
    wrapper = factory.buildProtocol(transport.getPeer())
    assert wrapper is not None
    wrapper.makeConnection(transport)
    recorder = wrapper.wrappedProtocol  # type: ignore[attr-defined]
    assert isinstance(recorder, _Recorder)
    return wrapper, recorder, transport


#: An HAProxy-sized set of TLVs: ALPN, authority (SNI), a 128-byte unique ID,
#: SSL with version, CN, cipher, signature and key algorithms.
_HAPROXY_TLVS = (
    tlv(0x01, b"h2")
    + tlv(0x02, b"a" * 253)
    + tlv(0x05, b"u" * 128)
    + tlv(
        0x20,
        b"\x07"
        + b"\x00\x00\x00\x00"
        + tlv(0x21, b"TLSv1.3")
        + tlv(0x22, b"c" * 64)
        + tlv(0x23, b"TLS_AES_256_GCM_SHA384")
        + tlv(0x24, b"RSA-SHA256")
        + tlv(0x25, b"RSA2048"),
    )
)

_VALID_HEADERS = {
    "v1-tcp4": (v1("TCP4", "203.0.113.7", "127.0.0.1", "51234", "8443"), "203.0.113.7"),
    "v1-tcp6": (v1("TCP6", "2001:db8::7", "::1", "51234", "8443"), "2001:db8::7"),
    "v1-unknown": (b"PROXY UNKNOWN\r\n", None),
    "v2-tcp4": (v2_inet("198.51.100.9", 4000, 8443), "198.51.100.9"),
    "v2-tcp6-tlvs": (v2_inet("2001:db8::9", 4000, 8443, _HAPROXY_TLVS), "2001:db8::9"),
    "v2-local": (v2(0x00, 0x00, b""), None),
}


@pytest.mark.parametrize("name", sorted(_VALID_HEADERS))
def test_valid_header_split_at_every_byte_is_accepted(name: str) -> None:
    """A valid header split into two reads at any byte, or fed byte by byte, is accepted."""
    header, source = _VALID_HEADERS[name]
    splits: list[list[bytes]] = [
        [header[:i], header[i:] + b"hello"] for i in range(1, len(header))
    ]
    splits.append([header[i : i + 1] for i in range(len(header))] + [b"hello"])
    assert len(splits) < 1000  # bounded
    for parts in splits:
        wrapper, recorder, transport = _connect()
        for part in parts:
            wrapper.dataReceived(part)  # type: ignore[attr-defined]
        assert not transport.disconnecting, (name, [len(p) for p in parts])
        assert recorder.received == b"hello"
        peer = wrapper.getPeer()  # type: ignore[attr-defined]
        assert getattr(peer, "host", None) == (source or "127.0.0.1")
        assert proxy_state(wrapper).header_error is None


def test_haproxy_sized_tlvs_fit_under_the_cap() -> None:
    """The TLVs HAProxy sends (ALPN, authority, unique ID, SSL) fit under the v2 cap."""
    header = v2_inet("2001:db8::9", 4000, 8443, _HAPROXY_TLVS)
    assert len(header) <= MAX_V2_HEADER
    assert MAX_V2_HEADER <= 4096


def test_overlong_v2_header_is_refused_after_its_first_16_bytes() -> None:
    """A v2 header declaring more than the cap is closed as soon as its length is read."""
    wrapper, recorder, transport = _connect()
    header = v2(0x01, 0x11, b"", declared=MAX_V2_HEADER - 16 + 1)
    wrapper.dataReceived(header[:16])  # type: ignore[attr-defined]
    assert transport.disconnecting
    assert proxy_state(wrapper).header_error == "PROXY header too long"
    assert recorder.received == b""


_BAD_V1 = {
    "non-numeric-port": v1("TCP4", "1.2.3.4", "5.6.7.8", "http", "443"),
    "port-too-big": v1("TCP4", "1.2.3.4", "5.6.7.8", "65536", "443"),
    "negative-port": v1("TCP4", "1.2.3.4", "5.6.7.8", "-1", "443"),
    "signed-port": v1("TCP4", "1.2.3.4", "5.6.7.8", "+80", "443"),
    "bad-ipv4": v1("TCP4", "999.1.1.1", "5.6.7.8", "1", "443"),
    "ipv6-as-tcp4": v1("TCP4", "2001:db8::1", "5.6.7.8", "1", "443"),
    "ipv4-as-tcp6": v1("TCP6", "1.2.3.4", "::1", "1", "443"),
    "scoped-ipv6": v1("TCP6", "fe80::1%eth0", "::1", "1", "443"),
    "hostname": v1("TCP4", "localhost", "5.6.7.8", "1", "443"),
    "invalid-utf8": v1("TCP4", b"1.2.3.\xff", "5.6.7.8", "1", "443"),
    "escape-bytes": v1("TCP4", b"\x1b[31mEVIL\x1b[0m", "5.6.7.8", "1", "443"),
    "too-few-fields": v1("TCP4", "1.2.3.4", "5.6.7.8", "1"),
    "too-many-fields": v1("TCP4", "1.2.3.4", "5.6.7.8", "1", "443", "x"),
    "double-space": b"PROXY TCP4  1.2.3.4 5.6.7.8 1 443\r\n",
    "bare-lf": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 443\n" + b"x" * 100,
    "unknown-protocol": v1("UDP4", "1.2.3.4", "5.6.7.8", "1", "443"),
    "over-107-bytes": b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n",
}


@pytest.mark.parametrize("name", sorted(_BAD_V1))
def test_malformed_v1_header_is_refused_without_raising(name: str) -> None:
    """A v1 header with bad addresses, ports or bytes is refused, and nothing raises."""
    wrapper, recorder, transport = _connect()
    wrapper.dataReceived(_BAD_V1[name] + b"hello")  # type: ignore[attr-defined]
    assert transport.disconnecting
    assert proxy_state(wrapper).header_error == "invalid PROXY header"
    assert recorder.received == b""


_INET4 = bytes(4) + bytes(4) + b"\x00\x01\x00\x02"
_BAD_V2 = {
    "bad-version": v2(0x01, 0x11, _INET4, version=0x10),
    "bad-command": v2(0x02, 0x11, _INET4),
    "unknown-family": v2(0x01, 0x41, _INET4),
    "unknown-protocol": v2(0x01, 0x13, _INET4),
    "datagram": v2(0x01, 0x12, _INET4),
    "short-inet": v2(0x01, 0x11, _INET4[:11]),
    "short-inet6": v2(0x01, 0x21, bytes(35)),
    "short-unix": v2(0x01, 0x31, bytes(215)),
    "tlv-overrun": v2(0x01, 0x11, _INET4 + b"\x01\x00\x10ab"),
    "tlv-truncated-header": v2(0x01, 0x11, _INET4 + b"\x01\x00"),
}


@pytest.mark.parametrize("name", sorted(_BAD_V2))
def test_malformed_v2_header_is_refused_without_raising(name: str) -> None:
    """A v2 header of an unknown kind, truncated, or with broken TLVs is refused."""
    wrapper, recorder, transport = _connect()
    wrapper.dataReceived(_BAD_V2[name] + b"hello")  # type: ignore[attr-defined]
    assert transport.disconnecting
    assert proxy_state(wrapper).header_error == "invalid PROXY header"
    assert recorder.received == b""


def test_unix_source_with_invalid_utf8_is_reported_as_text() -> None:
    """A v2 AF_UNIX source path of invalid UTF-8 becomes printable text, never raises."""
    wrapper, recorder, transport = _connect()
    wrapper.dataReceived(v2_unix(b"/tmp/\xff\xfe\x1b[31m") + b"hello")  # type: ignore[attr-defined]
    assert not transport.disconnecting
    assert recorder.received == b"hello"
    peer = wrapper.getPeer()  # type: ignore[attr-defined]
    assert isinstance(peer, UNIXAddress)
    assert isinstance(peer.name, bytes)
    name = peer.name.decode("utf-8")  # valid UTF-8, whatever the header held
    assert name == "/tmp/\\xff\\xfe\\x1b[31m"
    assert name.isprintable()


@pytest.mark.parametrize(
    "peer",
    [
        IPv4Address("TCP", "192.0.2.1", 5000),
        IPv6Address("TCP", "2001:db8::1", 5000),
        IPv6Address("TCP", "::ffff:192.0.2.1", 5000),
    ],
    ids=["ipv4", "ipv6", "mapped"],
)
def test_untrusted_source_is_refused_before_any_byte(peer: object) -> None:
    """A connection from outside the default trusted sources is closed before it sends."""
    wrapper, recorder, transport = _connect(peer)
    assert transport.disconnecting
    assert proxy_state(wrapper).header_error == "PROXY header from untrusted source"
    wrapper.dataReceived(v1("TCP4", "10.9.9.9", "5.6.7.8", "1", "443") + b"x")  # type: ignore[attr-defined]
    assert recorder.received == b""
    assert wrapper.getPeer() == peer  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "peer",
    [
        IPv4Address("TCP", "127.0.0.9", 5000),
        IPv6Address("TCP", "::1", 5000),
        IPv6Address("TCP", "::ffff:127.0.0.1", 5000),
        UNIXAddress(b"/run/haproxy.sock"),
    ],
    ids=["ipv4-loopback", "ipv6-loopback", "mapped-loopback", "unix"],
)
def test_default_trusted_sources_are_local(peer: object) -> None:
    """By default loopback (and UNIX socket) peers may send a header."""
    wrapper, _recorder, transport = _connect(peer)
    wrapper.dataReceived(v1("TCP4", "203.0.113.1", "5.6.7.8", "1", "443") + b"x")  # type: ignore[attr-defined]
    assert not transport.disconnecting
    assert wrapper.getPeer().host == "203.0.113.1"  # type: ignore[attr-defined]


def test_configured_trusted_network() -> None:
    """With --proxy-trusted 10.0.0.0/8, 10.1.2.3 is believed and loopback is not."""
    wrapper, _, transport = _connect(
        IPv4Address("TCP", "10.1.2.3", 5000), trusted=("10.0.0.0/8",)
    )
    wrapper.dataReceived(v1("TCP4", "203.0.113.1", "5.6.7.8", "1", "443"))  # type: ignore[attr-defined]
    assert not transport.disconnecting
    _, _, transport = _connect(trusted=("10.0.0.0/8",))
    assert transport.disconnecting


# Real sockets, against the real twistd plugin.


def _proxy_server(
    servers: list[ServerProcess], tls_files: TLSFiles, *extra: str
) -> ServerProcess:
    return start_server(servers, *identity(tls_files), *extra, listen=PROXY_LISTEN)


def _failures(server: ServerProcess) -> float:
    """How many connections the server counted as failed, whatever the labels."""
    values = metrics_of(server)
    return sum(v for k, v in values.items() if k.startswith("tlsecho_failures_total{"))


def test_spoofed_header_from_untrusted_source_is_closed_logged_and_counted(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """With loopback untrusted, a header claiming any client is closed, logged, counted."""
    server = _proxy_server(servers, tls_files, "--proxy-trusted", "10.0.0.0/8", *METRICS)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(v1("TCP4", "203.0.113.66", "127.0.0.1", "4444", str(server.port)))
        assert is_closed(raw)
    server.wait_for(r"127\.0\.0\.1:\d+: PROXY header failed: PROXY header from untrusted")
    assert "203.0.113.66" not in server.output
    assert _failures(server) == 1
    assert metrics_of(server)["tlsecho_connections_total"] == 1


def test_header_split_over_tcp_segments_is_accepted(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """Headers sent in pieces shorter than Twisted's first-read minimum still work."""
    server = _proxy_server(servers, tls_files)
    v1_header = v1("TCP4", "198.51.100.3", "127.0.0.1", "4003", str(server.port))
    v2_header = v2_inet("198.51.100.4", 4004, server.port)
    for header, at in ((v1_header, (3, 7)), (v2_header, (5, 11, 14))):
        cuts = [0, *at, len(header)]
        parts = [header[a:b] for a, b in itertools.pairwise(cuts)]
        assert echo_after(server.port, parts, tls_files.ca, pause=0.1) == b"proxied\n"
    server.wait_for(r"198\.51\.100\.3:4003: \w[\w ]* after 8 bytes echoed")
    server.wait_for(r"198\.51\.100\.4:4004: \w[\w ]* after 8 bytes echoed")


@pytest.mark.parametrize(
    "header", [v2(0x00, 0x00, b""), b"PROXY UNKNOWN\r\n"], ids=["v2-local", "v1-unknown"]
)
def test_health_check_header_then_silence_is_logged_at_handshake_timeout(
    servers: list[ServerProcess], tls_files: TLSFiles, header: bytes
) -> None:
    """A header naming no client, then nothing until the handshake timeout, is logged."""
    server = _proxy_server(servers, tls_files, "--handshake-timeout", "1", *METRICS)
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as raw:
        raw.sendall(header)
        assert is_closed(raw)  # by the server, at its handshake timeout
    server.wait_for(r"127\.0\.0\.1:\d+: TLS handshake failed: handshake timeout")
    values = metrics_of(server)
    assert values.get("tlsecho_health_checks_total", 0) == 0
    assert _failures(server) == 1


def test_huge_v2_tlv_is_closed_at_once(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """A v2 header declaring a 65 KB TLV is closed at once, not parked until the timeout."""
    server = _proxy_server(servers, tls_files, "--handshake-timeout", "60", *METRICS)
    header = v2_inet("198.51.100.5", 4005, server.port, tlv(0xE0, b"x" * 65_000))
    assert len(header) > 65_000
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as raw:
        # The server may close while this is still sending.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            raw.sendall(header)
        # A timeout here (15 s, far below the 60 s handshake timeout) fails.
        assert is_closed(raw)
    server.wait_for(r"127\.0\.0\.1:\d+: PROXY header failed: PROXY header too long")
    assert "198.51.100.5" not in server.output
    assert _failures(server) == 1


def test_malformed_headers_cost_one_log_line_each_and_no_traceback(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """Each malformed v1 or v2 header: closed, one log line, no traceback."""
    server = _proxy_server(servers, tls_files, *METRICS)
    sent = [*_BAD_V1.values(), *_BAD_V2.values()]
    for header in sent:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            raw.sendall(header)
            assert is_closed(raw), header
    pattern = r"127\.0\.0\.1:\d+: PROXY header failed: invalid PROXY header"
    server.wait_for(pattern)
    # Every connection is counted once it is logged.
    assert _failures(server) == len(sent)
    assert len(re.findall(pattern, server.output)) == len(sent)
    assert not _NO_TRACEBACK.search(server.output), server.output
    assert "\x1b" not in server.output
    # The server still serves a good client.
    good = v1("TCP4", "198.51.100.6", "127.0.0.1", "4006", str(server.port))
    assert echo_after(server.port, [good], tls_files.ca) == b"proxied\n"


def test_unix_header_with_invalid_utf8_path_is_served_and_logged(
    servers: list[ServerProcess], tls_files: TLSFiles
) -> None:
    """A v2 AF_UNIX header with an invalid UTF-8 path: served, logged, no traceback."""
    server = _proxy_server(servers, tls_files, *METRICS)
    header = v2_unix(b"/tmp/caf\xc3\xa9\xff.sock")
    assert echo_after(server.port, [header], tls_files.ca) == b"proxied\n"
    server.wait_for(r"unix:/tmp/caf\S*\.sock: \w[\w ]* after 8 bytes echoed")
    assert not _NO_TRACEBACK.search(server.output), server.output
    assert metrics_of(server)["tlsecho_connections_active"] == 0


def test_invalid_proxy_trusted_is_a_one_line_error(tls_files: TLSFiles) -> None:
    """An invalid --proxy-trusted network is refused at start in one line naming it."""
    result = run_twistd(
        *identity(tls_files), "--listen", PROXY_LISTEN, "--proxy-trusted", "10.0.0.0/33"
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--proxy-trusted" in lines[0]
    assert "10.0.0.0/33" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_invalid_proxy_trusted_in_toml_names_file(
    tls_files: TLSFiles, tmp_path: Path
) -> None:
    """An invalid proxy-trusted entry in the TOML file names the option and the file."""
    config = tmp_path / "tlsecho.toml"
    config.write_text('proxy-trusted = ["127.0.0.1/8"]\n')
    result = run_twistd(*identity(tls_files), "--config", str(config))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--proxy-trusted" in lines[0]
    assert str(config) in lines[0]
