"""
The server's service settings (listeners, timeouts, limits, workers, metrics,
logs) as one typed value, each default taken from its row of the option table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._options import OPTIONS, Side, option_named

__all__ = ["ServiceOptions"]


def _default(name: str) -> Any:
    return option_named(name).default


@dataclass(frozen=True)
class ServiceOptions:
    """
    The server's service settings, typed and validated once; each default is
    its option's row.

    @ivar listen: Endpoint descriptions to listen on (without TLS).
    @ivar proxy_trusted: Who may send PROXY headers (empty: loopback and
        UNIX sockets; see L{tlsecho._net._proxy.trusted_sources}).
    @ivar handshake_timeout: Seconds a peer has to complete its handshake.
    @ivar idle_timeout: Seconds without receiving before a connection closes.
    @ivar max_connections: Open connections above which new ones are refused.
    @ivar max_connections_per_ip: Open connections from one address above
        which new ones from it are refused; L{None}: no limit.
    @ivar max_connection_age: Seconds after which a connection is closed;
        L{None}: never.
    @ivar shutdown_timeout: Seconds SIGTERM lets connections drain.
    @ivar reload_interval: Seconds between checks of the files; L{None}: never.
    @ivar metrics: Where to serve Prometheus metrics; L{None}: nowhere.
    @ivar log_format: C{"text"} or C{"json"}.
    @ivar workers: How many worker processes serve (1: this process).
    """

    listen: tuple[str, ...] = _default("listen")
    proxy_trusted: tuple[str, ...] = _default("proxy-trusted")
    handshake_timeout: float = _default("handshake-timeout")
    idle_timeout: float = _default("idle-timeout")
    max_connections: int = _default("max-connections")
    max_connections_per_ip: int | None = _default("max-connections-per-ip")
    max_connection_age: float | None = _default("max-connection-age")
    shutdown_timeout: float = _default("shutdown-timeout")
    reload_interval: float | None = _default("reload-interval")
    metrics: str | None = _default("metrics")
    log_format: str = _default("log-format")
    workers: int = _default("workers")

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> ServiceOptions:
        """
        The service options among C{values} (keyed by option name, as given:
        text or native), each parsed by its row; the rest keep their defaults.

        @raise ConfigurationError: for a value of the wrong type or range.
        """
        arguments = {
            option.field: option.parse(values[option.name])
            for option in OPTIONS
            if option.side is Side.SERVICE and values.get(option.name) is not None
        }
        return cls(**arguments)  # type: ignore[arg-type]

    def restart_only_changes(self, other: ServiceOptions) -> list[str]:
        """
        The options whose change C{other} brings that only a restart applies.
        """
        return [
            option.flag
            for option in OPTIONS
            if option.restart_only
            and option.side is Side.SERVICE
            and getattr(self, option.field) != getattr(other, option.field)
        ]
