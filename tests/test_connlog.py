"""
Tests for L{tlsecho._net._connlog}: addresses as text, and the fields and message of
the one event a connection is logged and counted with, from plain values (no
transport, no reactor).
"""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

from tlsecho._net._connlog import (
    HEALTH_CHECK,
    Ending,
    connection_fields,
    ended_line,
    fallback_fields,
    format_address,
)

SUMMARY = {
    "tls_version": "TLSv1.3",
    "cipher": "TLS_AES_128_GCM_SHA256",
    "group": "X25519MLKEM768",
    "sni": "localhost",
}


def test_format_address_ipv4() -> None:
    """An IPv4 address is written host:port."""
    assert format_address(IPv4Address("TCP", "127.0.0.1", 8443)) == "127.0.0.1:8443"


def test_format_address_ipv6() -> None:
    """An IPv6 address is written [host]:port."""
    assert format_address(IPv6Address("TCP", "::1", 8443)) == "[::1]:8443"
    assert format_address(IPv6Address("TCP", "2001:db8::5", 1)) == "[2001:db8::5]:1"


def test_format_address_unix() -> None:
    """A UNIX socket address is written unix:path."""
    assert format_address(UNIXAddress(b"/run/tlsecho.sock")) == "unix:/run/tlsecho.sock"


def test_format_address_unnamed_unix() -> None:
    """An unnamed UNIX socket (a connecting peer) is written unix:?."""
    assert format_address(UNIXAddress(None)) == "unix:?"


class _HostileAddress:
    """An address whose every attribute raises, as a buggy or hostile layer might."""

    def __getattr__(self, name: str) -> object:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "hostile")


def test_format_address_is_total() -> None:
    """Any address, however broken, is described as text."""
    assert format_address(_HostileAddress()) == "<_HostileAddress>"
    assert format_address(UNIXAddress(b"/tmp/\xff\x1b")) == "unix:/tmp/\\xff\\x1b"
    assert format_address(IPv4Address("TCP", "1.2.3.4\r\nx", 1)) == "1.2.3.4\\r\\nx:1"


@pytest.mark.parametrize(
    ("ending", "reason", "failed", "stage"),
    [
        (Ending(handshake_done=True), "closed", False, "TLS"),
        (
            Ending(handshake_done=True, failure="closed by the peer"),
            "closed by the peer",
            False,
            "TLS",
        ),
        (
            Ending(handshake_done=False, header_error="no PROXY header\x1b"),
            "no PROXY header\\x1b",
            True,
            "PROXY header",
        ),
        (
            Ending(handshake_done=False, proxy_health_check=True),
            HEALTH_CHECK,
            False,
            "TLS handshake",
        ),
        (
            Ending(handshake_done=True, proxy_health_check=True, failure="closed"),
            "closed",
            False,
            "TLS",
        ),
        (
            Ending(handshake_done=False, ended_by="handshake timeout", failure="aborted"),
            "handshake timeout",
            True,
            "TLS handshake",
        ),
        (
            Ending(handshake_done=True, ended_by="idle timeout"),
            "idle timeout",
            False,
            "TLS",
        ),
        (
            Ending(handshake_done=False, failure="connection reset", reset=True),
            "connection reset",
            True,
            "TLS handshake",
        ),
        (
            Ending(handshake_done=True, failure="connection reset", reset=True),
            "connection reset",
            False,
            "TLS",
        ),
        (
            Ending(handshake_done=True, failure="bad record mac", tls_failure=True),
            "bad record mac",
            True,
            "TLS",
        ),
        (
            Ending(
                handshake_done=False,
                proxy_health_check=True,
                failure="unknown CA",
                tls_failure=True,
            ),
            HEALTH_CHECK,
            False,
            "TLS handshake",
        ),
    ],
)
def test_ending(ending: Ending, reason: str, failed: bool, stage: str) -> None:
    """Why a connection ended, whether that is a failure, and at which stage."""
    assert (ending.reason(), ending.failed(), ending.stage()) == (reason, failed, stage)


def _fields(ending: Ending, bytes_out: int = 6) -> dict[str, object]:
    return connection_fields(
        ending,
        peer="192.0.2.7:50123",
        via=None,
        bytes_in=6,
        bytes_out=bytes_out,
        duration=0.25,
        handshake_seconds=0.01,
        alpn=None,
        client=None,
        summary=SUMMARY,
    )


def test_connection_fields() -> None:
    """Every field the logs and metrics read, in order, the TLS summary last."""
    fields = _fields(Ending(handshake_done=True))
    assert list(fields) == [
        "peer",
        "failed",
        "via",
        "stage",
        "reason",
        "bytes_in",
        "bytes_out",
        "duration",
        "handshake_seconds",
        "alpn",
        "client",
        "tls_version",
        "cipher",
        "group",
        "sni",
    ]
    assert fields["reason"] == "closed"
    assert fields["failed"] is False


def test_fallback_fields_have_every_key_and_fail() -> None:
    """A connection that could not be described still has every field, and failed."""
    fields = fallback_fields(
        handshake_done=False, bytes_in=3, duration=1.0, handshake_seconds=None
    )
    assert set(fields) == set(_fields(Ending(handshake_done=True)))
    assert fields["failed"] is True
    assert fields["stage"] == "TLS handshake"
    assert fields["bytes_out"] == 0


def test_ended_line() -> None:
    """A connection that ended well is an info line with its TLS details."""
    line = ended_line(_fields(Ending(handshake_done=True)))
    assert line is not None
    assert not line.warning
    assert line.text() == (
        "192.0.2.7:50123: closed after 6 bytes echoed in 0.250s (TLSv1.3, "
        "TLS_AES_128_GCM_SHA256, group X25519MLKEM768, SNI localhost, ALPN None, "
        "client None)"
    )


def test_ended_line_with_unsent_bytes() -> None:
    """Bytes received but never sent are said."""
    line = ended_line(_fields(Ending(handshake_done=True), bytes_out=2))
    assert line is not None
    assert line.fields["unsent"] == " (of 6 received)"
    assert "after 2 bytes echoed (of 6 received) in" in line.text()


def test_failed_line() -> None:
    """A failed connection is a warning naming the stage and the reason."""
    ending = Ending(handshake_done=False, failure="unknown CA", tls_failure=True)
    line = ended_line(_fields(ending))
    assert line is not None
    assert line.warning
    assert line.text() == "192.0.2.7:50123: TLS handshake failed: unknown CA"


def test_health_check_is_not_logged() -> None:
    """A load balancer's health check is counted, not logged."""
    assert (
        ended_line(_fields(Ending(handshake_done=False, proxy_health_check=True))) is None
    )
