"""
The C{twistd tlsecho} / C{twist tlsecho} plugin: command-line options and the
service they make.

L{Options} turns flags (and the C{--config} file they may name) into a
validated L{ServerConfiguration}, reporting any invalid setting as a one-line
L{usage.UsageError} before anything starts; L{makeService} only assembles.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.logger import Logger
from twisted.python import usage

from ._errors import ConfigurationError
from ._server import EchoService, ServerConfiguration

__all__ = ["Options", "makeService"]

_log = Logger()


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
            "File holding the passphrase of an encrypted --key.",
        ],
        ["verify", None, None, "Client certificates: none, optional or required [none]."],
        [
            "ciphers",
            None,
            None,
            "OpenSSL cipher string for TLS 1.2 [a modern ECDHE+AEAD list].",
        ],
        ["min-tls", None, None, "Lowest TLS version: 1.2 or 1.3 [1.2]."],
        ["max-tls", None, None, "Highest TLS version: 1.2 or 1.3 [1.3]."],
        ["config", None, None, "TOML file with the same keys; flags override it."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["ca"] = []

    def opt_listen(self, description: str) -> None:
        """
        Server endpoint description to listen on, without TLS (repeatable)
        [tcp:8443:interface=127.0.0.1].
        """
        self["listen"].append(description)

    def opt_ca(self, path: str) -> None:
        """
        PEM file of CA certificates that client certificates must chain to
        (repeatable).
        """
        self["ca"].append(path)

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """
        Parse C{options}; when run by C{twistd} or C{twist}, report an error as
        one line on standard error and exit with status 2.

        twistd would otherwise print the whole usage text before the error, on
        standard output.  Used on its own (in tests, or embedded), this raises
        L{usage.UsageError} as usual.
        """
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
                "cert",
                "key",
                "key-passphrase-file",
                "ca",
                "verify",
                "ciphers",
                "min-tls",
                "max-tls",
                "config",
            )
        }
        try:
            self["configuration"] = ServerConfiguration.from_options(values)
        except ConfigurationError as e:
            raise usage.UsageError(str(e)) from None


class _PluginService(EchoService):
    """
    The echo service as twistd runs it: a port that cannot be bound ends the
    process with one line on standard error and status 1, not a traceback.
    """

    def privilegedStartService(self) -> None:
        _exit_on_configuration_error(super().privilegedStartService)

    def startService(self) -> None:
        _exit_on_configuration_error(super().startService)


def _exit_on_configuration_error(start: Callable[[], None]) -> None:
    try:
        start()
    except ConfigurationError as e:
        _log.error("{error}", error=str(e))
        # twistd has replaced sys.stderr with the log by now; say it on the
        # real standard error too, where scripts look.
        if sys.__stderr__ is not None:
            sys.__stderr__.write(f"tlsecho: {e}\n")
        raise SystemExit(1) from None


def makeService(options: Mapping[str, Any]) -> EchoService:
    """
    The service that serves TLS echo on every configured endpoint.
    """
    return _PluginService(options["configuration"])
