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

from ._app._configuration import ServerConfiguration
from ._app._logs import (
    logs_to_standard_streams,
    relay_logs_to_main_process,
    use_log_format,
)
from ._app._runner import PluginService, SupervisorService
from ._app._worker_process import MainProcessWatch, inherited_sockets
from ._net._echofactory import EchoServerFactory
from ._settings._errors import ConfigurationError, Surface
from ._settings._options import Option, Side, options_for

__all__ = ["Options", "makeService"]

#: The server's rows of the option table: TLS settings and the service's.
_SERVER_OPTIONS = options_for(Side.SERVER)


def _appender(option: Option) -> Callable[[Options, str], None]:
    """
    An C{opt_} method that appends each value of a repeatable option.
    """

    def append(self: Options, value: str) -> None:
        self[option.name].append(value)

    append.__doc__ = f"{option.help} (repeatable)"
    return append


class Options(usage.Options):
    """
    Options of the tlsecho server, derived from the option table
    (L{tlsecho._settings._options.OPTIONS}).
    """

    synopsis = "[--listen DESC ...] [--cert FILE [--key FILE]] [options]"
    longdesc = (
        "TLS echo server. Without --cert it serves a development certificate "
        "for localhost from a local development CA, on loopback only."
    )
    optParameters = [
        *(
            [option.name, None, None, option.help]
            for option in _SERVER_OPTIONS
            if not option.repeatable and not option.is_switch
        ),
        ["config", None, None, "TOML file with the same keys; flags override it."],
    ]
    optFlags = [
        [option.name, None, option.help] for option in _SERVER_OPTIONS if option.is_switch
    ]

    def __init__(self) -> None:
        super().__init__()
        for option in _SERVER_OPTIONS:
            if option.repeatable:
                self[option.name] = []

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
            # usage.Options counts a flag given (1) or not (0).
            option.name: bool(self[option.name]) if option.is_switch else self[option.name]
            for option in _SERVER_OPTIONS
            if option.name in self
        }
        values["config"] = self["config"]
        self["inherited"] = inherited_sockets(dict(os.environ))
        try:
            configuration = ServerConfiguration.from_options(
                values, check_listen=self["inherited"] is None
            )
        except ConfigurationError as e:
            raise usage.UsageError(e.for_surface(Surface.COMMAND_LINE)) from None
        self["configuration"] = configuration
        # The typed values, for whoever reads the options by name.
        service = configuration.service
        for option in _SERVER_OPTIONS:
            if option.side is Side.SERVICE:
                self[option.name] = getattr(service, option.field)
        runner = getattr(self, "parent", None)
        if runner is None:
            return
        if self["inherited"] is not None:
            relay_logs_to_main_process(runner)
        else:
            use_log_format(runner, service.log_format)
        # A start-up error is said once on standard error; logged too only
        # when the log goes elsewhere (a file, syslog).
        self["log-start-errors"] = not logs_to_standard_streams(runner)


def makeService(options: Mapping[str, Any]) -> MultiService:
    """
    The service that serves TLS echo on every configured endpoint: itself, or
    with C{--workers} above 1, from worker processes it keeps running.
    """
    configuration: ServerConfiguration = options["configuration"]
    service = configuration.service
    inherited = options.get("inherited")
    log_start_errors = options.get("log-start-errors", True)
    if service.workers > 1 and inherited is None:
        supervisor = SupervisorService(
            configuration,
            getattr(options, "arguments", []),
            service.workers,
            shutdown_timeout=service.shutdown_timeout,
            metrics=service.metrics,
        )
        supervisor.log_start_errors = log_start_errors
        return supervisor
    factory = EchoServerFactory(
        handshake_timeout=service.handshake_timeout,
        idle_timeout=service.idle_timeout,
        max_connections=service.max_connections,
        max_connections_per_ip=service.max_connections_per_ip,
        max_connection_age=service.max_connection_age,
    )
    plugin = PluginService(
        configuration,
        factory=factory,
        reload_interval=service.reload_interval,
        shutdown_timeout=service.shutdown_timeout,
        metrics=service.metrics,
        inherited=inherited,
        # A worker counts; its main process serves what all of them counted.
        serve_metrics=inherited is None,
    )
    plugin.log_start_errors = log_start_errors
    if inherited is not None:
        MainProcessWatch().setServiceParent(plugin)
    return plugin


# One opt_ method per repeatable option (usage.Options finds them by name).
for _option in _SERVER_OPTIONS:
    if _option.repeatable:
        setattr(Options, "opt_" + _option.name.replace("-", "_"), _appender(_option))
