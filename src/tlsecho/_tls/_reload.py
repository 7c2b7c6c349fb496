"""
Reload the TLS configuration without dropping connections.

A L{ReloadingCreator} is the connection creator every listener uses; it hands
each new connection to the current L{ServerConnectionCreator}.  L{reload} loads
the material again (certificate, key, CAs, CRLs, SNI certificates, OCSP
response, session-ticket keys: see L{Material.load}) and, only if it is valid,
swaps in a new creator in one assignment.  Connections already open keep the
context they were made with; a reload that fails logs one line and leaves the
old configuration serving.

L{FileWatch} notices changed files (size, modification time or content) for
C{--reload-interval}.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

from .._settings._errors import ConfigurationError, Surface
from .._settings._material import Material
from .._settings._options import OPTIONS, Side
from .._settings._tls_settings import TLSSettings
from ._server_creator import ServerConnectionCreator

__all__ = ["FileWatch", "ReloadingCreator", "settings_files"]

_log = Logger()


def settings_files(settings: TLSSettings) -> list[Path]:
    """
    Every file C{settings} was read from.
    """
    files: list[Path | None] = []
    for option in OPTIONS:
        if option.is_file and option.side & Side.BOTH:
            value = getattr(settings, option.field)
            files.extend(value if option.repeatable else [value])
    for entry in settings.sni:
        files += [entry.certificate, entry.private_key]
    return sorted({path for path in files if path is not None})


@implementer(IOpenSSLServerConnectionCreator)
class ReloadingCreator:
    """
    A server connection creator whose TLS configuration can be replaced while
    it serves.

    @ivar current: The creator new connections get.
    @ivar reloads_ok: How many reloads succeeded.
    @ivar reloads_failed: How many reloads failed (and changed nothing).
    """

    def __init__(
        self,
        creator: ServerConnectionCreator,
        load: Callable[[], ServerConnectionCreator] | None = None,
        on_reload: Callable[[Material | None], object] | None = None,
    ):
        """
        @param creator: The creator to start with.
        @param load: Reads the configuration again (the configuration file
            included) into a new creator; by default the material of the
            current settings is loaded again.
        @param on_reload: Told the new material after each reload, or L{None}
            when one failed (for metrics).
        """
        self.current = creator
        self._load = load or (lambda: ServerConnectionCreator(self.current.settings))
        self._on_reload = on_reload or (lambda material: None)
        self.reloads_ok = 0
        self.reloads_failed = 0

    def serverConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        """
        A new OpenSSL connection from the current configuration.
        """
        return self.current.serverConnectionForTLS(tlsProtocol)

    def reload(self) -> bool:
        """
        Read every file again and, if all is valid, serve new handshakes with it.

        @return: Whether the new configuration is now serving.
        """
        try:
            creator = self._load()
        except ConfigurationError as e:
            self.reloads_failed += 1
            self._on_reload(None)
            _log.error(
                "reload failed, still serving the previous configuration: {error}",
                # The server's files came from its flags or configuration file.
                error=e.for_surface(Surface.COMMAND_LINE),
                event="reload.failed",
            )
            return False
        self.current = creator
        material = creator.material
        self.reloads_ok += 1
        self._on_reload(material)
        leaf = material.chain[0]
        _log.info(
            "reloaded the TLS configuration: serving {subject} (valid until {not_after})",
            subject=leaf.subject.rfc4514_string(),
            not_after=f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC",
            event="reload.ok",
        )
        for warning in material.warnings():
            _log.warn("{warning}", warning=warning, event="config.warning")
        return True


class FileWatch:
    """
    Tell whether any of some files changed since the last look.
    """

    def __init__(self, files: list[Path]):
        self._files = files
        self._seen = self._fingerprint()

    def _fingerprint(self) -> tuple[tuple[str, int, int, bytes], ...]:
        prints = []
        for path in self._files:
            try:
                status = path.stat()
                digest = hashlib.sha256(path.read_bytes()).digest()
            except OSError:
                prints.append((str(path), -1, -1, b""))
                continue
            prints.append((str(path), status.st_size, status.st_mtime_ns, digest))
        return tuple(prints)

    def changed(self) -> bool:
        """
        Whether a file changed since the last call (or since creation).
        """
        now = self._fingerprint()
        if now == self._seen:
            return False
        self._seen = now
        return True
