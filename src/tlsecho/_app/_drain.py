"""
The drain on stop: open connections may finish for the shutdown timeout, then
are closed with close_notify, then aborted; whatever happens, it ends soon
after the timeout, so that SIGTERM ends the process within the timeout plus
1 s.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

__all__ = ["CLOSE_GRACE", "STOP_GRACE", "drain"]

_log = Logger(namespace="tlsecho._app._service")

#: Seconds after the shutdown timeout that connections still open have to take
#: their close_notify; then they are aborted (a peer that does not read would
#: never take it).
CLOSE_GRACE = 0.25
#: Seconds after the shutdown timeout when the service has stopped, whatever
#: is left: SIGTERM ends the process within the shutdown timeout plus 1 s.
STOP_GRACE = 0.5


def drain(connections: Any, clock: Any, timeout: float) -> Deferred[None]:
    """
    Let C{connections} (a live set, emptied as they end) finish for up to
    C{timeout} seconds; then close those left with close_notify, abort those
    still open L{CLOSE_GRACE} seconds later, and fire at the latest
    L{STOP_GRACE} seconds after the timeout.
    """
    if not connections:
        return succeed(None)
    _log.info(
        "stopped listening; waiting up to {timeout:g}s for {count} connection(s) to finish",
        timeout=timeout,
        count=len(connections),
        event="server.stopping",
    )
    done: Deferred[None] = Deferred()
    deadline = clock.seconds() + timeout
    # What has been done to the connections still open: nothing yet, then
    # close_notify, then abort.
    stage: list[str] = []

    def check() -> None:
        if not connections:
            poll.stop()
            done.callback(None)
            return
        late = clock.seconds() - deadline
        if late < 0:
            return
        if not stage:
            stage.append("closing")
            _log.info(
                "closing {count} connection(s) still open after {timeout:g}s",
                count=len(connections),
                timeout=timeout,
                event="server.closing",
            )
            for protocol in list(connections):
                _close_politely(protocol)
        elif late >= CLOSE_GRACE and len(stage) == 1:
            stage.append("aborting")
            _log.info(
                "aborting {count} connection(s) that did not close in {grace:g}s",
                count=len(connections),
                grace=CLOSE_GRACE,
                event="server.aborting",
            )
            for protocol in list(connections):
                _abort(protocol)
        elif late >= STOP_GRACE:
            # Aborted connections end at once; one that did not is a bug
            # in its bookkeeping, which must not keep the process alive.
            _log.warn(
                "stopping with {count} connection(s) not accounted for",
                count=len(connections),
                event="internal.error",
            )
            poll.stop()
            done.callback(None)

    poll = LoopingCall(check)
    poll.clock = clock
    poll.start(0.05)
    return done


def _abort(protocol: Any) -> None:
    """
    Close a connection at once, whatever its peer does (no close_notify).
    """
    try:
        transport = protocol.transport
        if transport is not None:
            transport.abortConnection()
    except Exception:
        # One connection must not keep the others (and the process) alive.
        _log.failure("while aborting a connection on shutdown", event="internal.error")


def _close_politely(protocol: Any) -> None:
    """
    Close a connection with close_notify (TLS sends it only once no producer
    is registered).
    """
    try:
        transport = protocol.transport
        if transport is None:
            return
        transport.unregisterProducer()
        transport.loseConnection()
    except Exception:
        _log.failure("while closing a connection on shutdown", event="internal.error")
