"""
Listening, and saying so: a port that cannot be bound becomes a one-line
configuration error naming the C{--listen} description, each listener
announces the address it got (useful with port 0), and the metrics site is
one more listener, bounded (L{tlsecho._app._metrics_site.metrics_site}) and said at
start when it listens beyond loopback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .._net._connlog import format_address
from .._net._endpoints import plain_server_endpoint
from .._settings._errors import ConfigurationError
from ._metrics_site import Readiness, metrics_site

__all__ = ["AnnouncingEndpoint", "bind_or_explain", "listen_now", "metrics_service"]

_log = Logger()


def metrics_service(
    reactor: Any,
    description: str,
    registry: CollectorRegistry,
    readiness: Readiness | None = None,
) -> IService:
    """
    A service serving C{registry} as Prometheus metrics on the endpoint
    C{description}, with C{/healthz} and C{/readyz} (answered by
    C{readiness}); it fails start-up if it cannot listen.
    """
    site = StreamServerEndpointService(
        AnnouncingEndpoint(
            plain_server_endpoint(reactor, description, "--metrics"),
            description,
            "tlsecho metrics on http://{address}/metrics ({description})",
            check=_warn_beyond_loopback,
            event="metrics.listening",
        ),
        metrics_site(registry, readiness=readiness),
    )
    site._raiseSynchronously = True
    site.setName("--metrics " + description)
    return site


def _warn_beyond_loopback(port: IListeningPort, description: str) -> None:
    """
    Say (one line) that the metrics listener C{port} can be reached from
    beyond this machine: it serves plain HTTP to anyone, without
    authentication (C{tcp:PORT} without C{interface=} binds every address).
    """
    host = getattr(port.getHost(), "host", None)
    if host is None:
        return  # a UNIX socket: the file's permissions decide
    try:
        loopback = ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        _log.warn(
            "--metrics {description} listens on {address}, not on loopback: anyone "
            "who can reach it can read the metrics; add interface=127.0.0.1 "
            "(or firewall the port)",
            description=description,
            address=format_address(port.getHost()),
            event="config.warning",
        )


def bind_or_explain(service: IService, start: Callable[[], None]) -> None:
    """
    Start C{service} with C{start}; a failure to listen becomes a one-line
    configuration error naming the service.
    """
    # The metrics listener is named "--metrics DESC"; the others, DESC.
    option, description = "--listen", service.name or ""
    if description.startswith("--metrics "):
        option, description = "--metrics", description.removeprefix("--metrics ")
    _listen_errors(start, description, option)


def _listen_errors(
    start: Callable[[], object], description: str, option: str = "--listen"
) -> None:
    """
    Call C{start}; turn a failure to listen into a one-line configuration
    error naming C{option} and its description.
    """
    try:
        start()
    except CannotListenError as e:
        reason = getattr(e.socketError, "strerror", None) or str(e.socketError)
        raise ConfigurationError(
            option, f"{description}: cannot listen: {reason}"
        ) from None
    except (OSError, OverflowError, ValueError) as e:
        # Anything else the system refuses (a bad UNIX path, say): one line too.
        raise ConfigurationError(option, f"{description}: cannot listen: {e}") from None


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
class AnnouncingEndpoint:
    """
    Log the address an endpoint listens on once it does (useful with port 0).
    """

    def __init__(
        self,
        endpoint: IStreamServerEndpoint,
        description: str,
        announcement: str = "tlsecho listening on {address} ({description})",
        check: Callable[[IListeningPort, str], None] | None = None,
        event: str = "server.listening",
    ):
        """
        @param check: Called with the port and C{description} once listening,
            after the announcement (to warn about the address, say).
        @param event: The announcement's event name (JSON logs).
        """
        self._endpoint = endpoint
        self._description = description
        self._announcement = announcement
        self._check = check
        self._event = event

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        def announce(port: IListeningPort) -> IListeningPort:
            _log.info(
                self._announcement,
                address=format_address(port.getHost()),
                description=self._description,
                event=self._event,
            )
            if self._check is not None:
                self._check(port, self._description)
            return port

        return self._endpoint.listen(factory).addCallback(announce)
