"""
Prometheus metrics for the server, served with twisted.web (C{--metrics DESC}).

L{ServerMetrics} owns its own registry (so several servers in one process, or
tests, do not collide) and is told about each connection as it ends, about
connections refused by the limit, and about reloads.  Every label value comes
from a fixed set, never from what a peer sent: a failure is counted under its
class (L{failure_class}), and its words, with the peer's text in them, go to
the log only.  L{metrics_site} serves
the registry in the Prometheus text format from the reactor thread, with
C{prometheus_client}'s own encoder.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from twisted.internet.interfaces import IAddress, IProtocolFactory
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from ._profiles import group_label

__all__ = [
    "FAILURE_CLASSES",
    "METRICS_IDLE_TIMEOUT",
    "METRICS_MAX_CONNECTIONS",
    "MULTIPROCESS_ENVIRONMENT",
    "ServerMetrics",
    "failure_class",
    "metrics_site",
    "worker_gone",
    "workers_registry",
]

_log = Logger()

#: Set in a worker's environment: the directory its metrics are written to.
MULTIPROCESS_ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"

#: At most this many connections to the metrics listener at once; more are
#: closed as they come (a scraper needs one or two).
METRICS_MAX_CONNECTIONS = 64
#: Seconds a connection to the metrics listener may stay idle (between
#: requests, or before its first) before it is closed.
METRICS_IDLE_TIMEOUT = 10.0

#: Handshake durations of interest: loopback is sub-millisecond, the far side
#: of the world a few hundred milliseconds, a stalling peer seconds.
_HANDSHAKE_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)


#: The label values of C{tlsecho_failures_total{reason=...}}: the classes of
#: the reasons a connection fails for.  Where a reason is fixed text already
#: ("handshake timeout"), its class is that text.
FAILURE_CLASSES: tuple[str, ...] = (
    "handshake timeout",
    "idle timeout",
    "no PROXY header",
    "invalid PROXY header",
    "PROXY header refused",
    "unrecognized name",
    "no client certificate",
    "client certificate not authorized",
    "certificate verify failed",
    "protocol version",
    "no cipher in common",
    "no key exchange group in common",
    "no application protocol in common (ALPN)",
    "the peer sent plain HTTP to a TLS port",
    "the peer does not speak TLS",
    "renegotiation refused",
    "the peer refused the handshake",
    "the peer rejected our certificate",
    "the peer sent an alert",
    "connection closed without close_notify",
    "connection lost",
    "TLS error",
    "other",
)

#: Reasons that carry what a peer sent (an SNI name, a certificate's names)
#: after a fixed start: matched on that start only, before anything else.
_PEER_TEXT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("unrecognized name", "unrecognized name"),
    ("the server does not serve that name", "unrecognized name"),
    ("client certificate not authorized", "client certificate not authorized"),
    ("certificate verify failed", "certificate verify failed"),
)

#: Then: a class if the reason holds one of these words (first match).
_WORDS: tuple[tuple[str, str], ...] = (
    ("PROXY", "PROXY header refused"),
    ("no client certificate", "no client certificate"),
    ("requires a client certificate", "no client certificate"),
    ("protocol version", "protocol version"),
    ("no cipher", "no cipher in common"),
    ("insufficient security", "no cipher in common"),
    ("(ALPN)", "no application protocol in common (ALPN)"),
    ("plain HTTP", "the peer sent plain HTTP to a TLS port"),
    ("does not speak TLS", "the peer does not speak TLS"),
    ("malformed TLS record", "the peer does not speak TLS"),
    ("renegotiation", "renegotiation refused"),
    ("without close_notify", "connection closed without close_notify"),
)


def failure_class(reason: object) -> str:
    """
    The class of the reason a connection failed for: one of
    L{FAILURE_CLASSES}, C{"other"} for anything unknown (total: never raises).

    Use it for metric labels, which must come from a fixed set: the reason
    itself may hold text a peer chose (every SNI name under C{--sni-strict}
    would make a series of its own).
    """
    if not isinstance(reason, str):
        return "other"
    if reason in FAILURE_CLASSES:
        return reason
    for prefix, cls in _PEER_TEXT_PREFIXES:
        if reason.startswith(prefix):
            return cls
    for words, cls in _WORDS:
        if words in reason:
            return cls
    if reason.startswith("the peer"):
        if reason.startswith("the peer refused the handshake"):
            return "the peer refused the handshake"
        if "our certificate" in reason:
            return "the peer rejected our certificate"
        return "the peer sent an alert"
    if reason.startswith("connection lost"):
        return "connection lost"
    if reason.startswith("TLS error"):
        return "TLS error"
    return "other"


class ServerMetrics:
    """
    The server's Prometheus metrics.
    """

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        # Under --workers, each worker's values go to files the main process
        # adds up (prometheus_client's multiprocess mode); a gauge says how.
        self.active = Gauge(
            "tlsecho_connections_active",
            "Connections open now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.connections = Counter(
            "tlsecho_connections", "Connections accepted.", registry=registry
        )
        self.refused = Counter(
            "tlsecho_connections_refused",
            "Connections closed at once because --max-connections were open.",
            registry=registry,
        )
        self.handshakes = Counter(
            "tlsecho_handshakes",
            "TLS handshakes by outcome, protocol version, cipher and key exchange "
            "group (the profile's groups, other or none).",
            ["outcome", "version", "cipher", "group"],
            registry=registry,
        )
        self.failures = Counter(
            "tlsecho_failures",
            "Connections that failed, by class of reason (the reason itself is logged).",
            ["reason"],
            registry=registry,
        )
        self.bytes_received = Counter(
            "tlsecho_received_bytes", "Application bytes received.", registry=registry
        )
        self.bytes_sent = Counter(
            "tlsecho_sent_bytes", "Application bytes sent (echoed).", registry=registry
        )
        self.handshake_seconds = Histogram(
            "tlsecho_handshake_duration_seconds",
            "Time from accepting a connection to a completed TLS handshake.",
            buckets=_HANDSHAKE_BUCKETS,
            registry=registry,
        )
        self.not_after = Gauge(
            "tlsecho_certificate_not_after_timestamp_seconds",
            "When each served certificate expires (Unix time).",
            ["certificate", "subject"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.health_checks = Counter(
            "tlsecho_health_checks",
            "Load balancer health checks: a PROXY header naming no client, and "
            "nothing after it (not logged).",
            registry=registry,
        )
        self.reloads = Counter(
            "tlsecho_reloads",
            "Reloads of the TLS configuration, by result.",
            ["result"],
            registry=registry,
        )
        for result in ("ok", "failed"):
            self.reloads.labels(result=result)

    def connection_opened(self) -> None:
        """A connection was accepted."""
        self.connections.inc()
        self.active.inc()

    def connection_refused(self) -> None:
        """A connection was closed at once because of the connection limit."""
        self.refused.inc()

    def connection_ended(self, fields: Mapping[str, Any]) -> None:
        """
        A connection ended; C{fields} is the connection's log event.
        """
        self.active.dec()
        self.bytes_received.inc(fields["bytes_in"])
        self.bytes_sent.inc(fields["bytes_out"])
        if fields["handshake_seconds"] is not None:
            self.handshakes.labels(
                outcome="ok",
                version=fields["tls_version"] or "",
                cipher=fields["cipher"] or "",
                group=group_label(fields.get("group")),
            ).inc()
            self.handshake_seconds.observe(fields["handshake_seconds"])
        elif fields["failed"] and fields["stage"] != "PROXY header":
            self.handshakes.labels(
                outcome="failed", version="", cipher="", group="none"
            ).inc()
        if fields["failed"]:
            self.failures.labels(reason=failure_class(fields["reason"])).inc()
        elif fields["reason"] == "health check":
            self.health_checks.inc()

    def reloaded(self, ok: bool) -> None:
        """A reload succeeded or failed."""
        self.reloads.labels(result="ok" if ok else "failed").inc()

    def serving(self, certificates: Sequence[tuple[str, x509.Certificate]]) -> None:
        """
        Record the expiry of each served certificate (replacing earlier ones).
        """
        self.not_after.clear()
        for name, certificate in certificates:
            self.not_after.labels(
                certificate=name, subject=certificate.subject.rfc4514_string()
            ).set(certificate.not_valid_after_utc.timestamp())


class _MetricsResource(Resource):
    """
    C{/metrics} in the Prometheus text format; everything else 404.
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry):
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Request) -> bytes:
        if request.path not in (b"/metrics", b"/"):
            request.setResponseCode(404)
            return b"not found: try /metrics\n"
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self._registry)


def metrics_site(
    registry: CollectorRegistry,
    max_connections: int = METRICS_MAX_CONNECTIONS,
    idle_timeout: float = METRICS_IDLE_TIMEOUT,
) -> IProtocolFactory:
    """
    A twisted.web site serving C{registry} at C{/metrics}, holding at most
    C{max_connections} connections at once (more are closed as they come),
    each closed after C{idle_timeout} seconds without a request.

    The metrics listener may face more than the scraper: its connections must
    not use up the descriptors the TLS listeners need.
    """
    site = Site(_MetricsResource(registry), timeout=idle_timeout)
    site.protocol = _MetricsChannel  # type: ignore[assignment]
    return _Limited(site, max_connections, "--metrics")


class _MetricsChannel(HTTPChannel):
    """
    HTTP/1.1 only, and a connection that timed out but does not take our
    close (its peer does not read) is aborted sooner than twisted.web's 15 s.
    """

    abortTimeout = 5


class _Limited(WrappingFactory):
    """
    A factory that closes new connections at once while C{limit} of its
    connections are open; said in the log at most once a minute (with how
    many were closed), so that the refusals cannot flood it.
    """

    #: Seconds between two log lines about refused connections.
    warn_every = 60.0

    def __init__(self, wrapped: IProtocolFactory, limit: int, option: str):
        super().__init__(wrapped)
        self._limit = limit
        self._option = option
        self._refused = 0
        self._warned_at: float | None = None

    def buildProtocol(self, addr: IAddress | None) -> ProtocolWrapper:
        if len(self.protocols) < self._limit:
            return super().buildProtocol(addr)
        self._refused += 1
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at >= self.warn_every:
            self._warned_at = now
            _log.warn(
                "{option}: {limit} connections open; closed {refused} new one(s)",
                option=self._option,
                limit=self._limit,
                refused=self._refused,
            )
            self._refused = 0
        # The port closes a connection it gets no protocol for.
        return None  # type: ignore[return-value]


def workers_registry(directory: str) -> CollectorRegistry:
    """
    The metrics of every worker process, added up from the files they write
    in C{directory} (each worker's environment names it as
    L{MULTIPROCESS_ENVIRONMENT}).
    """
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return registry


def worker_gone(directory: str, pid: int) -> None:
    """
    Forget the live-only gauges of a worker that exited (its counters stay in
    the totals).
    """
    mark_process_dead(pid, directory)
