"""
The server's whole configuration, and the service that runs it.

L{ServerConfiguration.from_options} merges the TOML file and the flags (flags
win), applies the development default when no certificate is given, and
validates everything, including each C{--listen} description, before anything
listens.  L{EchoService} then listens on every endpoint with the same connection
creator and echo factory; a port that cannot be bound fails start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from prometheus_client import CollectorRegistry
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import AdoptedStreamServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ._config import load_config
from ._creators import ServerConnectionCreator, server_creator
from ._devcert import DevelopmentCertificate, ensure_development_certificate
from ._echoserver import EchoServerFactory, format_address
from ._endpoints import plain_server_endpoint, require_loopback, server_endpoint
from ._errors import ConfigurationError
from ._metrics import ServerMetrics, metrics_site
from ._reload import FileWatch, ReloadingCreator, settings_files
from ._settings import TLSSettings

__all__ = [
    "DEFAULT_LISTEN",
    "EchoService",
    "ServerConfiguration",
    "bind_or_explain",
    "listen_now",
    "metrics_service",
]

#: Server options that are TLS settings, and the TLSSettings.from_strings
#: argument each becomes.
SETTINGS_OPTIONS = {
    "cert": "certificate",
    "key": "private_key",
    "key-passphrase-file": "key_passphrase_file",
    "ca": "ca",
    "verify": "verify",
    "profile": "profile",
    "ciphers": "ciphers",
    "min-tls": "min_tls",
    "max-tls": "max_tls",
    "allow-cn": "allow_cn",
    "allow-dns": "allow_dns",
    "allow-uri": "allow_uri",
    "allow-spki": "allow_spki",
    "sni": "sni",
    "sni-strict": "sni_strict",
    "alpn": "alpn",
    "crl": "crl",
    "ocsp-response": "ocsp_response",
    "keylog-file": "keylog_file",
    "ticket-key-file": "ticket_key_file",
}
#: Options that are on/off switches.
SWITCHES = frozenset({"sni-strict"})

#: Where the server listens when no --listen is given.
DEFAULT_LISTEN = "tcp:8443:interface=127.0.0.1"

_log = Logger()


@dataclass(frozen=True)
class ServerConfiguration:
    """
    A validated server configuration.

    @ivar settings: The TLS settings.
    @ivar listen: The server endpoint descriptions to listen on.
    @ivar development: The development certificate in use, if no certificate
        was configured.
    @ivar options: The flags this came from (with C{config}), to read it again.
    @ivar values: The flags merged over the configuration file, every key
        (service options included) as given.
    @ivar creator: The server connection creator for these settings, built
        (and so checked) once.

    @raise ConfigurationError: if the settings cannot serve (no certificate,
        client verification without CAs) or the development certificate would
        serve beyond loopback.
    """

    settings: TLSSettings
    listen: tuple[str, ...] = (DEFAULT_LISTEN,)
    development: DevelopmentCertificate | None = None
    options: Mapping[str, Any] | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    creator: ServerConnectionCreator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.development is not None:
            for description in self.listen:
                require_loopback(
                    description,
                    "the development certificate may only serve loopback; "
                    "give --cert and --key to listen elsewhere",
                )
        object.__setattr__(self, "creator", server_creator(self.settings))

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], reactor: Any = None, check_listen: bool = True
    ) -> ServerConfiguration:
        """
        Merge C{--config} and flags (C{None} or an empty list: not given) and
        validate the result.

        @param reactor: Used only to parse endpoint descriptions.
        @param check_listen: Whether to parse each C{--listen} description; a
            worker, which adopts sockets its main process made from them, does
            not (a C{systemd:} description only parses in the main process).
        @raise ConfigurationError: for any invalid setting.
        """
        values: dict[str, Any] = {}
        if options.get("config"):
            values.update(load_config(Path(options["config"])))
        for key, value in options.items():
            # A flag not given is None, an empty list, or False (switches).
            if key != "config" and value not in (None, [], (), False, 0):
                values[key] = value
        development = None
        if values.get("cert") is None and values.get("key") is None:
            development = ensure_development_certificate()
            values["cert"] = str(development.certificate)
            values["key"] = str(development.private_key)
        arguments: dict[str, Any] = {
            argument: bool(values[option]) if option in SWITCHES else values[option]
            for option, argument in SETTINGS_OPTIONS.items()
            if option in values
        }
        settings = TLSSettings.from_strings(**arguments)
        listen = tuple(values.get("listen") or (DEFAULT_LISTEN,))
        if reactor is None:
            from twisted.internet import reactor
        for description in listen if check_listen else ():
            plain_server_endpoint(reactor, description)
        return cls(
            settings=settings,
            listen=listen,
            development=development,
            options=dict(options),
            values=values,
        )

    def reread(self) -> ServerConfiguration:
        """
        The configuration read again: the configuration file (if any) and every
        file it names.  Listeners are not changed by a reload.

        @raise ConfigurationError: if the result is invalid.
        """
        if self.options is None:
            return replace(self, settings=self.settings.replace())
        return ServerConfiguration.from_options(self.options, check_listen=False)

    def files(self) -> list[Path]:
        """
        The files this configuration was read from, to watch for changes.
        """
        config = (self.options or {}).get("config")
        return settings_files(self.settings) + ([Path(config)] if config else [])


class EchoService(MultiService):
    """
    Serve TLS echo on every configured endpoint.

    @ivar factory: The echo factory shared by every listener.
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
        if metrics is not None:
            self.metrics = self.factory.metrics = ServerMetrics()
            self.metrics.serving(_served(configuration.settings))
            if serve_metrics:
                metrics_service(reactor, metrics, self.metrics.registry).setServiceParent(
                    self
                )
        self.creator = creator = ReloadingCreator(
            configuration.creator, lambda: configuration.reread().creator, self._reloaded
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
                _AnnouncingEndpoint(
                    server_endpoint(reactor, description, creator, adopted), description
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
        for warning in self.configuration.settings.warnings():
            _log.warn("{warning}", warning=warning)
        development = self.configuration.development
        if development is not None:
            _log.info(
                "No --cert given: serving the development certificate {certificate} "
                "(key {key}), issued by the development CA {ca}; "
                "tlsecho client trusts that CA for loopback hosts",
                certificate=str(development.certificate),
                key=str(development.private_key),
                ca=str(development.ca),
            )
        for child in self:
            bind_or_explain(child, child.privilegedStartService)

    def startService(self) -> None:
        """
        Start every listener (binding those not bound yet).

        @raise ConfigurationError: as L{privilegedStartService}.
        """
        Service.startService(self)
        for child in self:
            bind_or_explain(child, child.startService)
        if self._watch is not None:
            self._watch.start(self._reload_interval, now=False)

    def stopService(self) -> Deferred[None]:
        """
        Stop gracefully: stop accepting, let open connections finish (their
        bytes are all echoed) for up to the shutdown timeout, then close the
        rest with close_notify.  The returned Deferred fires when all are gone,
        which is when twistd lets the process exit.
        """
        if self._watch is not None and self._watch.running:
            self._watch.stop()
        stopped: Deferred[Any] = maybeDeferred(super().stopService)
        return stopped.addCallback(lambda _: self._drain())

    def _drain(self) -> Deferred[None]:
        connections = self.factory.connections
        if not connections:
            return succeed(None)
        _log.info(
            "stopped listening; waiting up to {timeout:g}s for {count} connection(s) "
            "to finish",
            timeout=self._shutdown_timeout,
            count=len(connections),
        )
        done: Deferred[None] = Deferred()
        clock = self._reactor
        deadline = clock.seconds() + self._shutdown_timeout
        closing_since: list[float] = []

        def check() -> None:
            if not connections:
                poll.stop()
                done.callback(None)
                return
            now = clock.seconds()
            if now < deadline:
                return
            if not closing_since:
                closing_since.append(now)
                _log.info(
                    "closing {count} connection(s) still open after {timeout:g}s",
                    count=len(connections),
                    timeout=self._shutdown_timeout,
                )
                for protocol in list(connections):
                    _close_politely(protocol)
            elif now - closing_since[0] > self.factory.close_timeout:
                for protocol in list(connections):
                    cast(Any, protocol.transport).abortConnection()

        poll = LoopingCall(check)
        poll.clock = clock
        poll.start(0.05)
        return done

    def reload(self) -> bool:
        """
        Read the TLS configuration again and serve new handshakes with it;
        on failure keep the old one (see L{ReloadingCreator.reload}).
        """
        return self.creator.reload()

    def _reloaded(self, settings: TLSSettings | None) -> None:
        if self.metrics is not None:
            self.metrics.reloaded(settings is not None)
            if settings is not None:
                self.metrics.serving(_served(settings))


def metrics_service(
    reactor: Any, description: str, registry: CollectorRegistry
) -> IService:
    """
    A service serving C{registry} as Prometheus metrics on the endpoint
    C{description}; it fails start-up if it cannot listen.
    """
    site = StreamServerEndpointService(
        _AnnouncingEndpoint(
            plain_server_endpoint(reactor, description, "--metrics"),
            description,
            "tlsecho metrics on http://{address}/metrics ({description})",
        ),
        metrics_site(registry),
    )
    site._raiseSynchronously = True
    site.setName("--metrics " + description)
    return site


def _served(settings: TLSSettings) -> list[tuple[str, x509.Certificate]]:
    """The served certificates, named by the option that gives them."""
    served = [("--cert", settings.chain[0])] if settings.chain else []
    return served + [(entry.name, chain[0]) for entry, chain, _ in settings.sni_identities]


def _close_politely(protocol: Any) -> None:
    """
    Close a connection with close_notify (TLS sends it only once no producer
    is registered).
    """
    transport = protocol.transport
    if transport is None:
        return
    transport.unregisterProducer()
    transport.loseConnection()


def bind_or_explain(service: IService, start: Callable[[], None]) -> None:
    """
    Start C{service} with C{start}; a failure to listen becomes a one-line
    configuration error naming the service.
    """
    _listen_errors(start, service.name)


def _listen_errors(start: Callable[[], object], description: str) -> None:
    """
    Call C{start}; turn a failure to listen into a one-line configuration
    error naming the C{--listen} description.
    """
    try:
        start()
    except CannotListenError as e:
        reason = getattr(e.socketError, "strerror", None) or str(e.socketError)
        raise ConfigurationError(
            "--listen", f"{description}: cannot listen: {reason}"
        ) from None
    except (OSError, OverflowError, ValueError) as e:
        # Anything else the system refuses (a bad UNIX path, say): one line too.
        raise ConfigurationError("--listen", f"{description}: cannot listen: {e}") from None


def listen_now(
    endpoint: IStreamServerEndpoint, factory: IProtocolFactory, description: str
) -> IListeningPort:
    """
    Listen on an endpoint that binds at once (TCP, UNIX, adopted sockets) and
    return the port.

    @raise ConfigurationError: naming C{description}, if it cannot listen.
    """
    results: list[IListeningPort | Failure] = []

    def listen() -> None:
        endpoint.listen(factory).addBoth(results.append)
        if results and isinstance(results[0], Failure):
            results[0].raiseException()

    _listen_errors(listen, description)
    if not results:
        raise ConfigurationError("--listen", f"{description}: did not listen at once")
    port = results[0]
    assert not isinstance(port, Failure)
    return port


@implementer(IStreamServerEndpoint)
class _AnnouncingEndpoint:
    """
    Log the address an endpoint listens on once it does (useful with port 0).
    """

    def __init__(
        self,
        endpoint: IStreamServerEndpoint,
        description: str,
        announcement: str = "tlsecho listening on {address} ({description})",
    ):
        self._endpoint = endpoint
        self._description = description
        self._announcement = announcement

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        def announce(port: IListeningPort) -> IListeningPort:
            _log.info(
                self._announcement,
                address=format_address(port.getHost()),
                description=self._description,
            )
            return port

        return self._endpoint.listen(factory).addCallback(announce)
