"""
Where the server is in its life — starting, serving, reloading, draining —
as C{/readyz} on the metrics listener and systemd (L{tlsecho._app._notify})
are told it.

The service calls L{Lifecycle.listening} once every listener is up,
L{Lifecycle.reloading} and L{Lifecycle.reloaded} around a reload,
L{Lifecycle.stopping} when it starts to drain and L{Lifecycle.stopped} when
it is done; L{Lifecycle.readiness} answers C{/readyz}.  While
C{$WATCHDOG_USEC} asks for it, C{WATCHDOG=1} goes out every half of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.task import LoopingCall

from ._notify import Notifier, monotonic_usec, watchdog_interval

__all__ = ["Lifecycle"]


class Lifecycle:
    """
    The server's state, for C{/readyz} and systemd.

    @ivar state: C{"starting"}, C{"ready"} or C{"draining"}.
    @ivar notifier: Where systemd notifications go; by default nowhere (the
        runners give the one C{$NOTIFY_SOCKET} names).
    """

    def __init__(self, reactor: Any, notifier: Notifier | None = None):
        self._reactor = reactor
        self.notifier = notifier or Notifier(None)
        self.state = "starting"
        #: More conditions for readiness: each returns L{None} when met, or
        #: why not (C{"1 of 2 workers running"}).
        self.conditions: list[Callable[[], str | None]] = []
        self._watchdog: LoopingCall | None = None

    def readiness(self) -> tuple[bool, str]:
        """Whether the server is ready for traffic, and in words why (not)."""
        if self.state != "ready":
            return False, self.state
        for condition in self.conditions:
            reason = condition()
            if reason is not None:
                return False, reason
        return True, "ready"

    def start_watchdog(self, environment: dict[str, str] | None = None) -> None:
        """
        Send C{WATCHDOG=1} every half of C{$WATCHDOG_USEC}, if it is set for
        this process, from now until L{stopped}.
        """
        interval = watchdog_interval(environment)
        if interval is None or self.notifier.address is None or self._watchdog:
            return
        self._watchdog = LoopingCall(self.notifier.send, "WATCHDOG=1")
        self._watchdog.clock = self._reactor
        self._watchdog.start(interval, now=True)

    def listening(self, status: str) -> None:
        """Every listener is up: ready (C{READY=1}, with C{status})."""
        if self.state == "starting":
            self.state = "ready"
            self.notifier.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        """A reload begins (C{RELOADING=1} with the time it began)."""
        if self.state == "ready":
            self.notifier.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}")

    def reloaded(self, status: str) -> None:
        """The reload is done, applied or not: ready again (C{READY=1})."""
        if self.state == "ready":
            self.notifier.send("READY=1", f"STATUS={status}")

    def stopping(self) -> None:
        """The drain begins: not ready from now on (C{STOPPING=1})."""
        if self.state != "draining":
            self.state = "draining"
            self.notifier.send("STOPPING=1", "STATUS=draining")

    def stopped(self) -> None:
        """Done: no more watchdog keep-alives."""
        if self._watchdog is not None and self._watchdog.running:
            self._watchdog.stop()
        self._watchdog = None
