"""
Prometheus metrics for the server (C{--metrics DESC}).

L{ServerMetrics} owns its own registry (so several servers in one process, or
tests, do not collide) and is told about each connection as it ends, about
connections refused by the limit, and about reloads.  Every label value comes
from a fixed set (L{tlsecho._app._metric_labels}), never from what a peer sent.
Under C{--workers}, L{workers_registry} adds up what each worker wrote.  The
registry is served by L{tlsecho._app._metrics_site.metrics_site}.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from .._settings._profiles import group_label
from ._metric_labels import REFUSAL_LIMITS, failure_class, refusal_limit

__all__ = [
    "MULTIPROCESS_ENVIRONMENT",
    "ServerMetrics",
    "worker_gone",
    "workers_registry",
]

#: Set in a worker's environment: the directory its metrics are written to.
MULTIPROCESS_ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"

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
            "Connections closed at once by a limit: max-connections (not counted "
            "as accepted) or max-connections-per-ip (counted as accepted: behind a "
            "proxy, the address is known only once the PROXY header is read).",
            ["limit"],
            registry=registry,
        )
        for limit in REFUSAL_LIMITS:
            self.refused.labels(limit=limit)
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

    def connection_refused(
        self, limit: str = "max-connections", opened: bool = False
    ) -> None:
        """
        A connection was closed at once because of C{limit} (one of
        L{REFUSAL_LIMITS}); C{opened}: after it was counted as opened.
        """
        self.refused.labels(limit=refusal_limit(limit)).inc()
        if opened:
            self.active.dec()

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
        if not _multiprocess():
            # prometheus-client cannot clear a multiprocess gauge's values (it
            # warns, on every start): a worker's old series go with the worker.
            self.not_after.clear()
        for name, certificate in certificates:
            self.not_after.labels(
                certificate=name, subject=certificate.subject.rfc4514_string()
            ).set(certificate.not_valid_after_utc.timestamp())


def _multiprocess() -> bool:
    """
    Whether this process writes its metrics for a main process to add up.
    """
    return any(
        name in os.environ
        for name in (MULTIPROCESS_ENVIRONMENT, "prometheus_multiproc_dir")
    )


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
