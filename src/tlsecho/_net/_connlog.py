"""
What tlsecho says about a connection: an address as text, and the one log
event a connection gets when it ends (its fields, also what the metrics count,
and its message).

Everything here takes plain values (strings, numbers, flags), which the echo
protocol reads off its transport (L{tlsecho._net._connection}), so it is tested
without one.  Peer-chosen text is escaped and capped with L{printable}.

This module imports nothing from Twisted or OpenSSL.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._settings._text import printable

__all__ = [
    "HEALTH_CHECK",
    "MESSAGE",
    "Ending",
    "LogLine",
    "connection_fields",
    "ended_line",
    "fallback_fields",
    "format_address",
    "peer_ip",
]

#: The reason of a load balancer's health check (counted, not logged).
HEALTH_CHECK = "health check"
#: The key of an event's message, formatted already: a connection's (its
#: L{LogLine.text}, which tlsecho's observers write as it is instead of
#: formatting the event again), or a worker's relayed event's.  An event that
#: has it must format (L{twisted.logger.formatEvent}) to exactly that text.
MESSAGE = "tlsecho_text"
#: The stage of a connection whose PROXY header was refused.
PROXY_STAGE = "PROXY header"

#: The message of a connection that failed.
_FAILED = "{peer}: {stage} failed: {reason}"
#: The message of a connection that ended well.
_ENDED = (
    "{peer}: {reason} after {bytes_out} bytes echoed{unsent} in "
    "{duration:.3f}s ({tls_version}, {cipher}, group {group}, SNI {sni}, ALPN {alpn}, "
    "client {client})"
)


def peer_ip(address: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """
    The IP address of C{address} (a Twisted address), canonical: an IPv4
    address mapped into IPv6 is the IPv4 address, a scope is dropped;
    L{None} for what has no IP address (a UNIX socket's peer, a PROXY header
    naming no client, a host that is not an address).  Never raises.
    """
    host = getattr(address, "host", None)
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return None
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def format_address(address: object) -> str:
    """
    An address as people write it: C{127.0.0.1:8443}, C{[::1]:8443}, C{unix:/path}.

    Never raises, and the result is inert text for a log line: a PROXY header
    names any address its sender likes (a UNIX path that is not UTF-8, an IPv4
    "host" holding terminal escapes), so every part is escaped and capped with
    L{printable}.
    """
    try:
        return _format_address(address)
    except Exception:
        return f"<{printable(type(address).__name__)}>"


def _format_address(address: object) -> str:
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is None:
        name = getattr(address, "name", None)
        return f"unix:{printable(name) if name else '?'}"
    if isinstance(host, bytes):
        host = host.decode("utf-8", "surrogateescape")
    host = str(host)
    if ":" not in host:
        return f"{printable(host)}:{printable(str(port))}"
    # Canonical text: a PROXY v2 header's IPv6 address arrives uncompressed.
    with contextlib.suppress(ValueError):
        host = str(ipaddress.ip_address(host))
    return f"[{printable(host)}]:{printable(str(port))}"


@dataclass(frozen=True)
class Ending:
    """
    How a connection ended.

    @ivar handshake_done: Whether its TLS handshake completed.
    @ivar header_error: Why the PROXY layer refused its header, or L{None}.
    @ivar proxy_health_check: Whether the PROXY layer saw a health check (a
        header naming no client, nothing after it, closed by the proxy).
    @ivar ended_by: What of ours ended it (C{"idle timeout"}), or L{None}.
    @ivar failure: One line on the failure it ended with, or L{None} if it
        ended without one.
    @ivar tls_failure: Whether that failure was TLS's (handshake, alert,
        certificate).
    @ivar reset: Whether that failure was the connection being lost (reset).
    """

    handshake_done: bool
    header_error: str | None = None
    proxy_health_check: bool = False
    ended_by: str | None = None
    failure: str | None = None
    tls_failure: bool = False
    reset: bool = False

    @property
    def health_check(self) -> bool:
        """
        Whether it was a load balancer's health check: no TLS, just a PROXY
        header naming no client.
        """
        return self.proxy_health_check and not self.handshake_done

    def reason(self) -> str:
        """
        Why it ended, in words.
        """
        if self.header_error is not None:
            return printable(self.header_error)
        if self.health_check:
            return HEALTH_CHECK
        if self.ended_by is not None:
            return self.ended_by
        if self.failure is not None:
            return self.failure
        return "closed"

    def failed(self) -> bool:
        """
        Whether it counts as failed: a refused PROXY header, a TLS failure,
        or a handshake that never completed because of a timeout or a reset
        (typically a client that rejected our certificate).
        """
        if self.header_error is not None:
            return True
        if self.health_check:
            return False
        return self.tls_failure or (
            not self.handshake_done and (self.ended_by is not None or self.reset)
        )

    def stage(self) -> str:
        """
        Where it was when it ended: the PROXY header, the TLS handshake, or TLS.
        """
        if self.header_error:
            return PROXY_STAGE
        return "TLS" if self.handshake_done else "TLS handshake"


def connection_fields(
    ending: Ending,
    *,
    peer: str,
    via: str | None,
    bytes_in: int,
    bytes_out: int,
    duration: float,
    handshake_seconds: float | None,
    alpn: str | None,
    client: str | None,
    summary: Mapping[str, Any],
) -> dict[str, Any]:
    """
    The fields of the event a connection that ended is logged and counted
    with.

    @param peer: Its peer, from L{format_address}.
    @param via: The proxy it came through, from L{format_address}, or L{None}.
    @param bytes_in: Bytes received.
    @param bytes_out: Bytes echoed that were really sent.
    @param duration: Seconds it was open.
    @param handshake_seconds: Seconds its TLS handshake took, or L{None}.
    @param alpn: The protocol ALPN chose (escaped), or L{None}.
    @param client: Who its client certificate names, or L{None}.
    @param summary: Its TLS version, cipher and server name (C{tls_version},
        C{cipher}, C{sni}).
    """
    return {
        "peer": peer,
        "failed": ending.failed(),
        "via": via,
        "stage": ending.stage(),
        "reason": ending.reason(),
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "duration": duration,
        "handshake_seconds": handshake_seconds,
        "alpn": alpn,
        "client": client,
        **summary,
    }


def fallback_fields(
    *,
    handshake_done: bool,
    bytes_in: int,
    duration: float,
    handshake_seconds: float | None,
) -> dict[str, Any]:
    """
    The fields of a connection that could not be described: enough for the
    factory and the metrics, counted as failed.
    """
    return {
        "peer": "?",
        "failed": True,
        "via": None,
        "stage": "TLS" if handshake_done else "TLS handshake",
        "reason": "could not describe the connection",
        "bytes_in": bytes_in,
        "bytes_out": 0,
        "duration": duration,
        "handshake_seconds": handshake_seconds,
        "alpn": None,
        "client": None,
        "tls_version": None,
        "cipher": None,
        "group": None,
        "sni": None,
    }


class LogLine(NamedTuple):
    """
    One log event: whether it is a warning, its format, its fields, and its
    name (C{connection.closed}, C{connection.failed}).
    """

    warning: bool
    format: str
    fields: dict[str, Any]
    event: str

    def text(self) -> str:
        """
        The message, as a log observer formats it (L{MESSAGE}).
        """
        return self.format.format_map(self.fields)


def ended_line(fields: Mapping[str, Any]) -> LogLine | None:
    """
    The event a connection that ended with C{fields} is logged with; L{None}
    for a health check (a load balancer's, every few seconds: counted, not
    logged).
    """
    if fields["reason"] == HEALTH_CHECK:
        return None
    if fields["failed"]:
        return LogLine(True, _FAILED, dict(fields), "connection.failed")
    unsent = (
        f" (of {fields['bytes_in']} received)"
        if fields["bytes_out"] != fields["bytes_in"]
        else ""
    )
    return LogLine(False, _ENDED, {"unsent": unsent, **fields}, "connection.closed")
