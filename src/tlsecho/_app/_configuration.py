"""
The server's whole configuration: flags merged over the TOML file, validated.

L{ServerConfiguration.from_options} merges the TOML file and the flags (flags
win), applies the development default when no certificate is given, and
validates everything, including each C{--listen} description, before anything
listens; L{ServerConfiguration.reread} reads it all again for a reload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from twisted.logger import Logger

from .._net._endpoints import plain_server_endpoint, require_loopback
from .._net._proxy import TrustedSources, trusted_sources
from .._settings._devcert import DevelopmentCertificate, ensure_development_certificate
from .._settings._errors import ConfigurationError
from .._settings._material import Material
from .._settings._options import Side, option_named, options_for
from .._settings._service_options import ServiceOptions
from .._settings._tls_settings import TLSSettings
from .._tls._reload import settings_files
from .._tls._server_creator import ServerConnectionCreator, server_creator
from ._toml import load_config

__all__ = ["DEFAULT_LISTEN", "ServerConfiguration", "warn_restart_needed"]

_log = Logger()

#: Where the server listens when no --listen is given.
DEFAULT_LISTEN: str = option_named("listen").default[0]  # type: ignore[index]


def _parsed(values: Mapping[str, Any]) -> dict[str, object]:
    """
    Every value typed by its option's row (flags arrive as text; the TOML
    loader has typed its values already, and parsing them again is a no-op).

    @raise ConfigurationError: for an option the server does not take, or a
        value of the wrong type.
    """
    server = {option.name for option in options_for(Side.SERVER)}
    parsed = {}
    for name, value in values.items():
        if name.replace("_", "-") not in server:
            raise ConfigurationError(f"--{name}", "is not a server option")
        option = option_named(name)
        parsed[option.name] = option.parse(value)
    return parsed


@dataclass(frozen=True)
class ServerConfiguration:
    """
    A validated server configuration.

    @ivar settings: The TLS settings.
    @ivar listen: The server endpoint descriptions to listen on.
    @ivar proxy_trusted: Who may send PROXY headers on C{haproxy:} listeners.
    @ivar development: The development certificate in use, if no certificate
        was configured.
    @ivar options: The flags this came from (with C{config}), to read it again.
    @ivar values: The flags merged over the configuration file, every key
        (service options included) typed by its option's row.
    @ivar service: The service options (timeouts, limits, workers, metrics,
        log format, reload interval).
    @ivar creator: The server connection creator for these settings, built
        (and so checked) once, with the material it loaded.

    @raise ConfigurationError: if the settings cannot serve (no certificate,
        client verification without CAs) or the development certificate would
        serve beyond loopback.
    """

    settings: TLSSettings
    listen: tuple[str, ...] = (DEFAULT_LISTEN,)
    development: DevelopmentCertificate | None = None
    proxy_trusted: TrustedSources = field(default_factory=lambda: trusted_sources(None))
    options: Mapping[str, Any] | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    service: ServiceOptions = field(default_factory=ServiceOptions)
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

    @property
    def material(self) -> Material:
        """
        The files of the settings, as loaded for L{creator}.
        """
        return self.creator.material

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
            if key != "config" and value not in (None, [], (), False):
                values[key] = value
        values = _parsed(values)
        development = None
        if values.get("cert") is None and values.get("key") is None:
            development = ensure_development_certificate()
            values["cert"] = str(development.certificate)
            values["key"] = str(development.private_key)
        settings = TLSSettings.from_strings(
            **{  # type: ignore[arg-type]  # each row's type is its field's
                option.field: values[option.name]
                for option in options_for(Side.BOTH)
                if option.name in values
            }
        )
        service = ServiceOptions.from_values(values)
        proxy_trusted = trusted_sources(
            service.proxy_trusted,
            # The file, if that is where the values came from.
            None if options.get("proxy-trusted") else options.get("config"),
        )
        if reactor is None:
            from twisted.internet import reactor
        for description in service.listen if check_listen else ():
            plain_server_endpoint(reactor, description)
        if service.metrics is not None:
            plain_server_endpoint(reactor, service.metrics, "--metrics")
        return cls(
            settings=settings,
            listen=service.listen,
            development=development,
            proxy_trusted=proxy_trusted,
            options=dict(options),
            values=values,
            service=service,
        )

    def reread(self) -> ServerConfiguration:
        """
        The configuration read again: the configuration file (if any) and every
        file it names.  Listeners are not changed by a reload.

        @raise ConfigurationError: if the result is invalid.
        """
        if self.options is None:
            return replace(self)  # the same settings, with their material loaded again
        return ServerConfiguration.from_options(self.options, check_listen=False)

    def restart_needed_for(self, new: ServerConfiguration) -> list[str]:
        """
        The options whose change in C{new} a reload cannot apply: the flags of
        restart-only rows of the option table (C{--listen}, C{--workers},
        C{--metrics}, C{--log-format}, ...) whose values differ.
        """
        return self.service.restart_only_changes(new.service)

    def files(self) -> list[Path]:
        """
        The files this configuration was read from, to watch for changes.
        """
        config = (self.options or {}).get("config")
        return settings_files(self.settings) + ([Path(config)] if config else [])


def warn_restart_needed(running: ServerConfiguration, new: ServerConfiguration) -> None:
    """
    Log one line if C{new} changes options that only a restart applies (the
    reload keeps the running values for them).
    """
    changed = running.restart_needed_for(new)
    if changed:
        _log.warn(
            "reload: {options} changed, which only a restart applies; "
            "still using the running values",
            options=", ".join(changed),
            event="reload.restart_needed",
        )
