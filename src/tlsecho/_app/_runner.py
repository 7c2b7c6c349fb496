"""
The echo service as the twistd and twist runners run it.

A port that cannot be bound ends the process with one line on standard error
and status 1, not a traceback (logged too when the log goes to a file, never
twice where one person reads both); SIGHUP reloads the TLS configuration;
SIGTERM drains open connections and exits 0.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable
from typing import Any, cast

from twisted.application.service import MultiService
from twisted.internet.error import ReactorNotRunning
from twisted.logger import Logger

from .._settings._errors import ConfigurationError, Surface
from ._notify import Notifier
from ._service import EchoService
from ._workers import WorkerSupervisor

__all__ = ["PluginService", "SupervisorService"]

_log = Logger()


class _AsTheRunnersRunIt(MultiService):
    """
    What a service needs under twistd and twist: a port that cannot be bound
    ends the process with one line on standard error and status 1, not a
    traceback; SIGHUP calls the service's C{reload}; SIGTERM stops it
    (draining) with a clean exit; systemd is notified (C{$NOTIFY_SOCKET}) of
    readiness, reloads and the drain.

    Mixed in before the service class, whose methods it wraps.
    """

    _reactor: Any
    _previous_hangup: Any = None
    #: Whether a start-up error is logged as well as said on standard error:
    #: not when the log goes to standard output or error itself (twistd -n,
    #: twist), where the same line would show twice.
    log_start_errors: bool = True

    def privilegedStartService(self) -> None:
        _exit_on_configuration_error(super().privilegedStartService, self.log_start_errors)

    def startService(self) -> None:
        if not getattr(self, "_worker", False):  # the main process tells systemd
            cast(Any, self).lifecycle.notifier = Notifier.from_environment()
        _exit_on_configuration_error(super().startService, self.log_start_errors)
        reactor = self._reactor
        reload = cast(Any, self).reload
        self._previous_hangup = signal.signal(
            signal.SIGHUP, lambda number, frame: reactor.callFromThread(reload)
        )

        # Twisted's own SIGTERM handler makes the process end by re-raising
        # the signal; a drain that completed is a clean exit, status 0.  Ours
        # is installed once the reactor runs, after Twisted's.
        def stop() -> None:
            # A second SIGTERM while draining changes nothing.
            with contextlib.suppress(ReactorNotRunning):
                reactor.stop()

        reactor.callWhenRunning(
            signal.signal,
            signal.SIGTERM,
            lambda number, frame: reactor.callFromThread(stop),
        )

    def stopService(self) -> Any:
        if self._previous_hangup is not None:
            signal.signal(signal.SIGHUP, self._previous_hangup)
            self._previous_hangup = None
        return super().stopService()


class PluginService(_AsTheRunnersRunIt, EchoService):
    """
    The echo service as twistd and twist run it: SIGHUP reloads the TLS
    configuration; SIGTERM drains connections and exits 0.
    """


class SupervisorService(_AsTheRunnersRunIt, WorkerSupervisor):
    """
    The main process of C{--workers N} as twistd and twist run it: SIGHUP and
    SIGTERM go on to every worker.
    """


def _exit_on_configuration_error(start: Callable[[], None], log: bool = True) -> None:
    """
    Call C{start}; a L{ConfigurationError} ends the process with status 1 and
    one line on standard error (and in the log, if C{log}).
    """
    try:
        start()
    except ConfigurationError as e:
        message = e.for_surface(Surface.COMMAND_LINE)
        if log:
            _log.error("{error}", error=message, event="config.error")
        # twistd has replaced sys.stderr with the log by now; say it on the
        # real standard error, where scripts look.
        if sys.__stderr__ is not None:
            sys.__stderr__.write(f"tlsecho: {message}\n")
            sys.__stderr__.flush()
        raise SystemExit(1) from None
