"""
The service's rows of the option table (L{tlsecho._settings._options.OPTIONS}):
listeners, timeouts, limits, reloads, metrics, logs and workers, the fields of
L{tlsecho._settings._service_options.ServiceOptions}.  This module imports
neither Twisted nor OpenSSL.
"""

from __future__ import annotations

from ._values import (
    COUNT,
    ENDPOINT,
    PROXY_SOURCE,
    SECONDS,
    SECONDS_OR_ZERO,
    WORKERS,
    Option,
    Side,
    _choice,
)

__all__ = ["SERVICE_ROWS"]

_SVC = Side.SERVICE

#: The service's options, in the order of C{--help}.
SERVICE_ROWS: tuple[Option, ...] = (
    Option(
        "listen",
        ENDPOINT,
        "Server endpoint description to listen on, without TLS "
        "[tcp:8443:interface=127.0.0.1].",
        _SVC,
        default=("tcp:8443:interface=127.0.0.1",),
        repeatable=True,
        restart_only=True,
    ),
    Option(
        "proxy-trusted",
        PROXY_SOURCE,
        "On haproxy: listeners, accept PROXY headers only from peers in this IP "
        "network (CIDR, e.g. 10.0.0.0/8), at this address, or on UNIX sockets "
        "(unix:); connections from elsewhere are closed before TLS, logged and "
        "counted [127.0.0.0/8, ::1, unix:].",
        _SVC,
        default=(),
        repeatable=True,
        restart_only=True,
    ),
    Option(
        "handshake-timeout",
        SECONDS,
        "Drop a peer that has not completed the TLS handshake in SECONDS [10].",
        _SVC,
        default=10.0,
        restart_only=True,
    ),
    Option(
        "idle-timeout",
        SECONDS,
        "Close a connection that has received nothing for SECONDS [300].",
        _SVC,
        default=300.0,
        restart_only=True,
    ),
    Option(
        "max-connections",
        COUNT,
        "Above this many open connections, close new ones at once (logged, "
        "counted) [10000].",
        _SVC,
        default=10_000,
        restart_only=True,
    ),
    Option(
        "max-connections-per-ip",
        COUNT,
        "Above this many open connections from one address (behind a trusted "
        "proxy, the client its PROXY header names), close new ones at once "
        "(logged, counted).",
        _SVC,
        restart_only=True,
    ),
    Option(
        "max-connection-age",
        SECONDS,
        "Close a connection (close_notify first) once it is SECONDS old, so that "
        "long-lived clients reconnect, e.g. to a reloaded certificate.",
        _SVC,
        restart_only=True,
    ),
    Option(
        "shutdown-timeout",
        SECONDS_OR_ZERO,
        "On SIGTERM, stop accepting and let open connections finish for up to "
        "SECONDS before closing them [10].",
        _SVC,
        default=10.0,
        restart_only=True,
    ),
    Option(
        "reload-interval",
        SECONDS,
        "Reload the TLS configuration when its files change, checking every "
        "SECONDS (SIGHUP always reloads).",
        _SVC,
        restart_only=True,
    ),
    Option(
        "metrics",
        ENDPOINT,
        "Serve Prometheus metrics (/metrics) and health checks (/healthz, /readyz), "
        "plain HTTP, on this endpoint, e.g. tcp:9100:interface=127.0.0.1.",
        _SVC,
        restart_only=True,
    ),
    Option(
        "log-format",
        _choice("text", "json"),
        "text, or json: one JSON object per line, with each connection's fields [text].",
        _SVC,
        default="text",
        restart_only=True,
    ),
    Option(
        "workers",
        WORKERS,
        "Serve from N worker processes sharing the listening sockets (auto: one "
        "per CPU); the main process restarts any that dies and passes SIGHUP and "
        "SIGTERM on [1].",
        _SVC,
        default=1,
        restart_only=True,
    ),
)
