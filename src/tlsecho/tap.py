"""
The C{twistd tlsecho} / C{twist tlsecho} plugin: command-line options and the
service they make.

L{Options} turns flags (and the C{--config} file they may name) into a
validated L{ServerConfiguration}, reporting any invalid setting as a one-line
L{usage.UsageError} before anything starts; L{makeService} only assembles.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.application.service import MultiService
from twisted.python import usage

from ._configuration import SETTINGS_OPTIONS, ServerConfiguration
from ._echoserver import EchoServerFactory
from ._endpoints import plain_server_endpoint
from ._errors import ConfigurationError
from ._logs import relay_logs_to_main_process, use_json_logs
from ._plugin import PluginService, SupervisorService, count, seconds
from ._workers import MainProcessWatch, inherited_sockets

__all__ = ["Options", "makeService"]

#: Options of the service (not TLS settings), with their defaults; the TOML
#: file may set them too.
SERVICE_DEFAULTS: dict[str, str | None] = {
    "handshake-timeout": "10",
    "idle-timeout": "300",
    "max-connections": "10000",
    "shutdown-timeout": "10",
    "reload-interval": None,
    "metrics": None,
    "log-format": "text",
    "workers": "1",
}

#: The options that may be given several times.
REPEATABLE = (
    "listen",
    "proxy-trusted",
    "ca",
    "allow-cn",
    "allow-dns",
    "allow-uri",
    "allow-spki",
    "sni",
    "alpn",
    "crl",
)


def _appender(option: str, help: str) -> Callable[[Options, str], None]:
    """
    An C{opt_} method that appends each value of a repeatable option.
    """

    def append(self: Options, value: str) -> None:
        self[option].append(value)

    append.__doc__ = f"{help} (repeatable)"
    return append


class Options(usage.Options):
    """
    Options of the tlsecho server.
    """

    synopsis = "[--listen DESC ...] [--cert FILE [--key FILE]] [options]"
    longdesc = (
        "TLS echo server. Without --cert it serves a development certificate "
        "for localhost from a local development CA, on loopback only."
    )
    optParameters = [
        ["cert", None, None, "PEM file: the server certificate, then its intermediates."],
        ["key", None, None, "PEM private key file (default: the --cert file)."],
        [
            "key-passphrase-file",
            None,
            None,
            "File holding the passphrase of an encrypted --key (and --sni keys).",
        ],
        ["verify", None, None, "Client certificates: none, optional or required [none]."],
        [
            "profile",
            None,
            None,
            "TLS policy after Mozilla's guidelines: intermediate (TLS 1.2+1.3) or "
            "modern (TLS 1.3 only) [intermediate].",
        ],
        [
            "ciphers",
            None,
            None,
            "OpenSSL cipher string narrowing the profile's TLS 1.2 ciphers.",
        ],
        ["min-tls", None, None, "Lowest TLS version: 1.2 or 1.3 [from the profile]."],
        ["max-tls", None, None, "Highest TLS version: 1.2 or 1.3 [1.3]."],
        [
            "ocsp-response",
            None,
            None,
            "DER OCSP response for --cert, stapled when a client asks.",
        ],
        [
            "keylog-file",
            None,
            None,
            "Append TLS secrets (NSS key log format) to this file. Debugging only.",
        ],
        [
            "reload-interval",
            None,
            None,
            "Reload the TLS configuration when its files change, checking every "
            "SECONDS (SIGHUP always reloads).",
        ],
        [
            "handshake-timeout",
            None,
            None,
            "Drop a peer that has not completed the TLS handshake in SECONDS [10].",
        ],
        [
            "idle-timeout",
            None,
            None,
            "Close a connection that has received nothing for SECONDS [300].",
        ],
        [
            "max-connections",
            None,
            None,
            "Above this many open connections, close new ones at once (logged, "
            "counted) [10000].",
        ],
        [
            "metrics",
            None,
            None,
            "Serve Prometheus metrics (plain HTTP, /metrics) on this endpoint, "
            "e.g. tcp:9100:interface=127.0.0.1.",
        ],
        [
            "shutdown-timeout",
            None,
            None,
            "On SIGTERM, stop accepting and let open connections finish for up to "
            "SECONDS before closing them [10].",
        ],
        [
            "log-format",
            None,
            None,
            "text, or json: one JSON object per line, with each connection's fields "
            "[text].",
        ],
        [
            "ticket-key-file",
            None,
            None,
            "80 bytes ('openssl rand 80') of session-ticket keys, shared by the "
            "processes that should resume each other's TLS sessions [per process].",
        ],
        [
            "workers",
            None,
            None,
            "Serve from N worker processes sharing the listening sockets (auto: one "
            "per CPU); the main process restarts any that dies and passes SIGHUP and "
            "SIGTERM on [1].",
        ],
        ["config", None, None, "TOML file with the same keys; flags override it."],
    ]
    optFlags = [
        ["sni-strict", None, "Refuse SNI names no certificate is for (unrecognized_name)."],
    ]

    def __init__(self) -> None:
        super().__init__()
        for name in REPEATABLE:
            self[name] = []

    opt_listen = _appender(
        "listen",
        "Server endpoint description to listen on, without TLS "
        "[tcp:8443:interface=127.0.0.1].",
    )
    opt_proxy_trusted = _appender(
        "proxy-trusted",
        "On haproxy: listeners, accept PROXY headers only from peers in this IP "
        "network (CIDR, e.g. 10.0.0.0/8), at this address, or on UNIX sockets "
        "(unix:); connections from elsewhere are closed before TLS, logged and "
        "counted [127.0.0.0/8, ::1, unix:].",
    )
    opt_ca = _appender(
        "ca", "PEM file of CA certificates that client certificates must chain to."
    )
    opt_allow_cn = _appender(
        "allow-cn", "Authorize client certificates with this subject common name."
    )
    opt_allow_dns = _appender(
        "allow-dns", "Authorize client certificates with this DNS subject alt name."
    )
    opt_allow_uri = _appender(
        "allow-uri",
        "Authorize client certificates with this URI subject alt name (a SPIFFE ID).",
    )
    opt_allow_spki = _appender(
        "allow-spki",
        "Authorize client certificates whose SHA-256 SPKI pin is this (base64 or hex).",
    )
    opt_sni = _appender(
        "sni",
        "NAME=CERT[:KEY]: serve CERT to clients asking for NAME (exact or *.domain).",
    )
    opt_alpn = _appender(
        "alpn", "Application protocol to offer with ALPN, most preferred first."
    )
    opt_crl = _appender(
        "crl", "Certificate revocation list (PEM or DER) checked for client certificates."
    )

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """
        Parse C{options}; when run by C{twistd} or C{twist}, report an error as
        one line on standard error and exit with status 2.

        twistd would otherwise print the whole usage text before the error, on
        standard output.  Used on its own (in tests, or embedded), this raises
        L{usage.UsageError} as usual.
        """
        #: The arguments as given, for worker processes to get the same.
        self.arguments = list(sys.argv[1:] if options is None else options)
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            if getattr(self, "parent", None) is None:
                raise
            sys.stderr.write(f"tlsecho: {e} (see 'twistd tlsecho --help')\n")
            raise SystemExit(2) from None

    def postOptions(self) -> None:
        """
        Validate every setting; store the result as C{self["configuration"]}.
        """
        values = {
            key: self[key]
            for key in (
                "listen",
                "proxy-trusted",
                "config",
                *SETTINGS_OPTIONS,
                *SERVICE_DEFAULTS,
            )
            if key in self
        }
        self["inherited"] = inherited_sockets(dict(os.environ))
        try:
            configuration = ServerConfiguration.from_options(
                values, check_listen=self["inherited"] is None
            )
            self["configuration"] = configuration
            for name, default in SERVICE_DEFAULTS.items():
                self[name] = configuration.values.get(name, default)
            self["reload-interval"] = seconds(self["reload-interval"], "--reload-interval")
            self["shutdown-timeout"] = seconds(
                self["shutdown-timeout"], "--shutdown-timeout", allow_zero=True
            )
            for name in ("handshake-timeout", "idle-timeout"):
                self[name] = seconds(self[name], f"--{name}")
            self["max-connections"] = count(self["max-connections"], "--max-connections")
            self["workers"] = (
                os.cpu_count() or 1
                if self["workers"] == "auto"
                else count(self["workers"], "--workers")
            )
            if self["log-format"] not in ("text", "json"):
                raise ConfigurationError(
                    "--log-format", f"expected text or json, not {self['log-format']!r}"
                )
            if self["metrics"] is not None:
                from twisted.internet import reactor

                plain_server_endpoint(reactor, self["metrics"], "--metrics")
        except ConfigurationError as e:
            raise usage.UsageError(str(e)) from None
        runner = getattr(self, "parent", None)
        if runner is None:
            return
        if self["inherited"] is not None:
            relay_logs_to_main_process(runner)
        elif self["log-format"] == "json":
            use_json_logs(runner)


def makeService(options: Mapping[str, Any]) -> MultiService:
    """
    The service that serves TLS echo on every configured endpoint: itself, or
    with C{--workers} above 1, from worker processes it keeps running.
    """
    workers = options.get("workers", 1)
    inherited = options.get("inherited")
    if workers > 1 and inherited is None:
        return SupervisorService(
            options["configuration"],
            getattr(options, "arguments", []),
            workers,
            shutdown_timeout=options.get("shutdown-timeout") or 0.0,
            metrics=options.get("metrics"),
        )
    factory = EchoServerFactory(
        handshake_timeout=options.get("handshake-timeout", 10.0),
        idle_timeout=options.get("idle-timeout", 300.0),
        max_connections=options.get("max-connections", 10_000),
    )
    service = PluginService(
        options["configuration"],
        factory=factory,
        reload_interval=options.get("reload-interval"),
        shutdown_timeout=options.get("shutdown-timeout") or 0.0,
        metrics=options.get("metrics"),
        inherited=inherited,
        # A worker counts; its main process serves what all of them counted.
        serve_metrics=inherited is None,
    )
    if inherited is not None:
        MainProcessWatch().setServiceParent(service)
    return service
