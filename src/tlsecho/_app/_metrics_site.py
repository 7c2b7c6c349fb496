"""
The metrics listener's site (C{--metrics DESC}): twisted.web serving a
registry in the Prometheus text format, from the reactor thread, with
C{prometheus_client}'s own encoder; and C{/healthz} (200 while the process
serves) and C{/readyz} (200 when ready for traffic, 503 while starting or
draining) for load balancers and probes.

The site is bounded: at most L{METRICS_MAX_CONNECTIONS} connections at once
(refusals said in the log at most once a minute), each closed after
L{METRICS_IDLE_TIMEOUT} seconds idle, so that whatever else reaches the
listener cannot use up the descriptors the TLS listeners need.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from twisted.internet.interfaces import IAddress, IProtocolFactory
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

__all__ = ["METRICS_IDLE_TIMEOUT", "METRICS_MAX_CONNECTIONS", "metrics_site"]

# The namespace these events had before the site left tlsecho._app._metrics (JSON
# logs carry it).
_log = Logger(namespace="tlsecho._app._metrics")

#: At most this many connections to the metrics listener at once; more are
#: closed as they come (a scraper needs one or two).
METRICS_MAX_CONNECTIONS = 64
#: Seconds a connection to the metrics listener may stay idle (between
#: requests, or before its first) before it is closed.
METRICS_IDLE_TIMEOUT = 10.0


#: Answers C{/readyz}: whether ready, and in words why (not).
Readiness = Callable[[], "tuple[bool, str]"]


class _MetricsResource(Resource):
    """
    C{/metrics} in the Prometheus text format, C{/healthz} and C{/readyz};
    everything else 404.
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry, readiness: Readiness | None = None):
        super().__init__()
        self._registry = registry
        self._readiness = readiness or (lambda: (True, "ready"))

    def render_GET(self, request: Request) -> bytes:
        if request.path in (b"/healthz", b"/readyz"):
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            request.setHeader(b"Cache-Control", b"no-store")
            if request.path == b"/healthz":
                return b"ok\n"
            ready, words = self._readiness()
            if not ready:
                request.setResponseCode(503)
                return f"not ready: {words}\n".encode()
            return b"ready\n"
        if request.path not in (b"/metrics", b"/"):
            request.setResponseCode(404)
            return b"not found: try /metrics\n"
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self._registry)


def metrics_site(
    registry: CollectorRegistry,
    max_connections: int = METRICS_MAX_CONNECTIONS,
    idle_timeout: float = METRICS_IDLE_TIMEOUT,
    readiness: Readiness | None = None,
) -> IProtocolFactory:
    """
    A twisted.web site serving C{registry} at C{/metrics}, C{/healthz} and
    C{/readyz} (answered by C{readiness}; always ready without), holding at most
    C{max_connections} connections at once (more are closed as they come),
    each closed after C{idle_timeout} seconds without a request.

    The metrics listener may face more than the scraper: its connections must
    not use up the descriptors the TLS listeners need.
    """
    site = _QuietSite(_MetricsResource(registry, readiness), timeout=idle_timeout)
    site.protocol = _MetricsChannel  # type: ignore[assignment]
    return _Limited(site, max_connections, "--metrics")


class _QuietSite(Site):
    """
    A site that logs no line per request: a scraper comes every few seconds.
    """

    noisy = False

    def log(self, request: object) -> None:
        pass


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
                event="metrics.refused",
            )
            self._refused = 0
        # The port closes a connection it gets no protocol for.
        return None  # type: ignore[return-value]
