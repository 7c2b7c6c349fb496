"""
The echo service: listen on every configured endpoint with the same
connection creator and echo factory, reload, and stop gracefully.

A port that cannot be bound fails start-up (one line, naming the C{--listen}
description); on stop, open connections may finish for the shutdown timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.endpoints import AdoptedStreamServerEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from .._net._echofactory import EchoServerFactory
from .._net._endpoints import server_endpoint
from .._settings._material import Material
from .._tls._reload import FileWatch, ReloadingCreator
from .._tls._server_creator import ServerConnectionCreator
from ._configuration import ServerConfiguration, warn_restart_needed
from ._drain import CLOSE_GRACE, STOP_GRACE, drain
from ._health import Lifecycle
from ._listening import AnnouncingEndpoint, bind_or_explain, metrics_service
from ._metrics import ServerMetrics
from ._version import describe

__all__ = ["CLOSE_GRACE", "STOP_GRACE", "EchoService"]

_log = Logger()


class EchoService(MultiService):
    """
    Serve TLS echo on every configured endpoint.

    @ivar factory: The echo factory shared by every listener.
    @ivar lifecycle: Starting, ready or draining, for C{/readyz} and systemd.
    """

    def __init__(
        self,
        configuration: ServerConfiguration,
        reactor: Any = None,
        factory: EchoServerFactory | None = None,
        reload_interval: float | None = None,
        shutdown_timeout: float = 10.0,
        metrics: str | None = None,
        inherited: Sequence[tuple[int, int]] | None = None,
        serve_metrics: bool = True,
    ):
        """
        @param configuration: What to serve, where.
        @param reactor: The reactor to listen with; the global one by default.
        @param factory: The echo factory; a default L{EchoServerFactory}.
        @param reload_interval: Every so many seconds, reload if any file of
            the configuration changed; L{None}: only on L{reload}.
        @param shutdown_timeout: On stop, how long open connections may go on
            before they are closed.
        @param metrics: A server endpoint description where to serve
            Prometheus metrics (plain HTTP, C{/metrics}); L{None}: none.
        @param inherited: In a worker: the listening sockets (descriptor,
            address family) its main process made, one per C{--listen}, to
            adopt instead of binding.
        @param serve_metrics: Whether to serve the metrics on C{metrics}; a
            worker only counts them, for its main process to serve.
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.configuration = configuration
        self.factory = factory or EchoServerFactory()
        self.metrics: ServerMetrics | None = None
        self.lifecycle = Lifecycle(reactor)
        # Serves /readyz through the drain: stopped last, not with the listeners.
        self._metrics_service: IService | None = None
        if metrics is not None:
            self.metrics = self.factory.metrics = ServerMetrics()
            self.metrics.serving(_served(configuration.material))
            if serve_metrics:
                site = metrics_service(
                    reactor, metrics, self.metrics.registry, self.lifecycle.readiness
                )
                site.setServiceParent(self)
                self._metrics_service = site
        self._say_restart_needed = inherited is None  # a worker's main process says it
        self._worker = inherited is not None
        self._announced = False
        self.creator = creator = ReloadingCreator(
            configuration.creator, self._reread, self._reloaded
        )
        self._reactor = reactor
        self._shutdown_timeout = shutdown_timeout
        self._watch: LoopingCall | None = None
        if reload_interval is not None:
            watch = FileWatch(configuration.files())
            self._watch = LoopingCall(lambda: watch.changed() and self.reload())
            self._watch.clock = reactor
            self._reload_interval = reload_interval
        for index, description in enumerate(configuration.listen):
            adopted = None
            if inherited is not None:
                descriptor, family = inherited[index]
                adopted = AdoptedStreamServerEndpoint(reactor, descriptor, family)
            service = StreamServerEndpointService(
                AnnouncingEndpoint(
                    server_endpoint(
                        reactor,
                        description,
                        creator,
                        adopted,
                        proxy_trusted=configuration.proxy_trusted,
                    ),
                    description,
                ),
                self.factory,
            )
            # Fail start-up when a port cannot be bound, as
            # twisted.application.strports.service does.
            service._raiseSynchronously = True
            service.setName(description)
            service.setServiceParent(self)

    def privilegedStartService(self) -> None:
        """
        Log what is served, then bind every listener.

        @raise ConfigurationError: naming the C{--listen} description, if a
            port cannot be bound.
        """
        self._announce()
        for child in self:
            bind_or_explain(child, child.privilegedStartService)

    def _announce(self) -> None:
        """
        Once, before listening (twistd calls L{privilegedStartService}, twist
        only L{startService}): the versions (not in a worker: its main process
        says them), the configuration's warnings, and the development
        certificate if it is served.
        """
        if self._announced:
            return
        self._announced = True
        if not self._worker:
            _log.info("starting {versions}", versions=describe(), event="server.starting")
        for warning in self.configuration.material.warnings():
            _log.warn("{warning}", warning=warning, event="config.warning")
        development = self.configuration.development
        if development is not None:
            _log.info(
                "No --cert given: serving the development certificate {certificate} "
                "(key {key}), issued by the development CA {ca}; "
                "tlsecho client trusts that CA for loopback hosts",
                certificate=str(development.certificate),
                key=str(development.private_key),
                ca=str(development.ca),
                event="server.development_certificate",
            )

    def startService(self) -> None:
        """
        Start every listener (binding those not bound yet).

        @raise ConfigurationError: as L{privilegedStartService}.
        """
        self._announce()
        Service.startService(self)
        self.lifecycle.start_watchdog()
        for child in self:
            bind_or_explain(child, child.startService)
        if self._watch is not None:
            self._watch.start(self._reload_interval, now=False)
        # Every endpoint tlsecho makes binds at once: they all listen now.
        count = len(self.configuration.listen)
        self.lifecycle.listening(f"serving on {count} listener(s)")

    def stopService(self) -> Deferred[None]:
        """
        Stop gracefully: stop accepting, let open connections finish (their
        bytes are all echoed) for up to the shutdown timeout, then close the
        rest with close_notify, and abort those that have not closed
        L{CLOSE_GRACE} seconds later.  The returned Deferred fires when all are
        gone, and at the latest L{STOP_GRACE} seconds after the shutdown
        timeout, which is when twistd lets the process exit.  C{/readyz} says
        503 from the start; the metrics listener stops last.
        """
        self.lifecycle.stopping()
        if self._watch is not None and self._watch.running:
            self._watch.stop()
        Service.stopService(self)
        listeners = [child for child in self if child is not self._metrics_service]
        stopped: Deferred[Any] = DeferredList(
            [maybeDeferred(child.stopService) for child in reversed(listeners)]
        )
        stopped.addCallback(lambda _: self._drain())
        metrics = self._metrics_service
        if metrics is not None:
            stopped.addCallback(lambda _: metrics.stopService())
        return stopped.addBoth(self._stopped)

    def _stopped(self, result: object) -> object:
        self.lifecycle.stopped()
        return result

    def _drain(self) -> Deferred[None]:
        return drain(self.factory.connections, self._reactor, self._shutdown_timeout)

    def reload(self) -> bool:
        """
        Read the TLS configuration again and serve new handshakes with it;
        on failure keep the old one (see L{ReloadingCreator.reload}).
        """
        self.lifecycle.reloading()
        applied = self.creator.reload()
        self.lifecycle.reloaded("reloaded" if applied else "reload failed; serving the old")
        return applied

    def _reread(self) -> ServerConnectionCreator:
        """
        The configuration read again, for a reload; a change only a restart can
        apply is logged (once, in one line) and otherwise ignored.
        """
        new = self.configuration.reread()
        if self._say_restart_needed:
            warn_restart_needed(self.configuration, new)
        return new.creator

    def _reloaded(self, material: Material | None) -> None:
        if self.metrics is not None:
            self.metrics.reloaded(material is not None)
            if material is not None:
                self.metrics.serving(_served(material))


def _served(material: Material) -> list[tuple[str, x509.Certificate]]:
    """The served certificates, named by the option that gives them."""
    served = [("--cert", material.chain[0])] if material.chain else []
    return served + [(entry.name, chain[0]) for entry, chain, _ in material.sni_identities]
