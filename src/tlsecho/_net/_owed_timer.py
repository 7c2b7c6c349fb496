"""
A timer that runs only while something is owed: L{OwedTimer}.

L{tlsecho._net._echostream.EchoStreamProtocol} gives up when an echo is owed and
nothing comes back for too long, but may wait indefinitely while nothing is.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

__all__ = ["OwedTimer"]


class OwedTimer:
    """
    Run while something is owed (restarted on progress), stopped while nothing
    is; when it runs out, call C{on_expiry} with the timeout.  With no C{clock}
    or no C{timeout}, it never runs.
    """

    def __init__(
        self,
        clock: IReactorTime | None,
        timeout: float | None,
        on_expiry: Callable[[float], None],
    ):
        """
        @param clock: For the delayed call.
        @param timeout: Seconds.
        @param on_expiry: Called with C{timeout} when the timer runs out.
        """
        self._clock = clock
        self._timeout = timeout
        self._on_expiry = on_expiry
        self._call: IDelayedCall | None = None

    def arm(self, owed: bool, restart: bool = False) -> None:
        """
        Run the timer while C{owed} (restarting it if C{restart}); stop it
        while nothing is.
        """
        if self._clock is None or self._timeout is None:
            return
        if not owed:
            self.disarm()
        elif self._call is None or restart:
            self.disarm()
            self._call = self._clock.callLater(self._timeout, self._expired)

    def disarm(self) -> None:
        """Stop the timer, if it runs."""
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None

    def _expired(self) -> None:
        self._call = None
        assert self._timeout is not None
        self._on_expiry(self._timeout)
