"""
A worker process of C{--workers N}: how its main process hands it the
listening sockets, how it finds them, and how it stops when that process is
gone.

The main process (L{tlsecho._app._workers}) starts each worker as L{handover}
says: the sockets as inherited descriptors from L{FIRST_SOCKET} on, described
in its environment (L{SOCKETS_ENVIRONMENT}), and its number in
L{WORKER_ENVIRONMENT}; the worker finds them with L{inherited_sockets} and
adopts them (L{tlsecho._app._service}) under the same PROXY and TLS layers.  A
worker's standard input is a pipe its main process never writes to: when it
closes, the main process is gone, however it ended, and L{MainProcessWatch}
stops the worker (draining, as on SIGTERM).  In the main process, each
worker is a L{WorkerProcess}.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from twisted.application.service import Service
from twisted.internet.error import ProcessDone
from twisted.internet.protocol import ProcessProtocol, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._logs import LogRelay

__all__ = [
    "FIRST_SOCKET",
    "SOCKETS_ENVIRONMENT",
    "WORKER_ENVIRONMENT",
    "MainProcessWatch",
    "WorkerProcess",
    "exit_description",
    "handover",
    "inherited_sockets",
]

#: Set in a worker's environment: its number, from 1.
WORKER_ENVIRONMENT = "TLSECHO_WORKER"
#: Set in a worker's environment: "FD:FAMILY,..." for each --listen, in order.
SOCKETS_ENVIRONMENT = "TLSECHO_WORKER_SOCKETS"
#: The first descriptor number of the inherited listening sockets.
FIRST_SOCKET = 3
#: Environment variables of systemd (socket activation, notify, watchdog),
#: meant for the main process only: only it notifies systemd.
_SYSTEMD = (
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
)

_log = Logger()
# The namespace the main process's events about workers had (JSON logs carry it).
_main_log = Logger(namespace="tlsecho._app._workers")


def handover(
    number: int, sockets: Sequence[tuple[int, int]]
) -> tuple[dict[str, str], dict[int, int]]:
    """
    In the main process: the environment (its own, without systemd's socket
    activation) and the inherited descriptors (the worker's number to ours)
    that start worker C{number} with C{sockets}, which it reads back with
    L{inherited_sockets}.

    @param sockets: The listening sockets, as (descriptor, address family),
        one per C{--listen}.
    """
    environment = {k: v for k, v in os.environ.items() if k not in _SYSTEMD}
    environment[WORKER_ENVIRONMENT] = str(number)
    environment[SOCKETS_ENVIRONMENT] = ",".join(
        f"{FIRST_SOCKET + index}:{family}" for index, (_, family) in enumerate(sockets)
    )
    inherited = {
        FIRST_SOCKET + index: descriptor for index, (descriptor, _) in enumerate(sockets)
    }
    return environment, inherited


def inherited_sockets(environment: dict[str, str]) -> list[tuple[int, int]] | None:
    """
    In a worker: the listening sockets the main process handed over, as
    (descriptor, address family), one per C{--listen}; L{None} elsewhere.
    """
    if WORKER_ENVIRONMENT not in environment:
        return None
    described = environment.get(SOCKETS_ENVIRONMENT, "")
    sockets = []
    for entry in filter(None, described.split(",")):
        descriptor, family = entry.split(":")
        sockets.append((int(descriptor), int(family)))
    return sockets


class _Orphaned(Protocol):
    """
    Reads a worker's standard input, which its main process never writes to:
    when it closes, the main process is gone.
    """

    def __init__(self, reactor: Any):
        self._reactor = reactor

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self._reactor.running:
            _log.warn(
                "the main process is gone; stopping this worker", event="worker.orphaned"
            )
            self._reactor.stop()


class MainProcessWatch(Service):
    """
    In a worker: stop (draining, as on SIGTERM) when the main process is gone,
    however it ended.
    """

    def __init__(self, reactor: Any = None):
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor

    def startService(self) -> None:
        from twisted.internet.stdio import StandardIO

        super().startService()
        # StandardIO also wants somewhere to write; not the log's stdout.
        cast(Any, StandardIO)(
            _Orphaned(self._reactor),
            stdin=0,
            stdout=os.open(os.devnull, os.O_WRONLY),
            reactor=self._reactor,
        )


class WorkerProcess(ProcessProtocol):
    """
    In the main process, one worker process: relays its log events and calls
    C{ended} (with itself and why) when it has ended.
    """

    def __init__(self, number: int, ended: Callable[[WorkerProcess, Failure], object]):
        self._ended = ended
        self.number = number
        self.pid: int | None = None
        self.started = time.monotonic()
        self._relay = LogRelay(number)

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.pid = self.transport.pid
        _main_log.info(
            "started worker {worker} (pid {pid})",
            worker=self.number,
            pid=self.pid,
            event="worker.started",
        )

    def outReceived(self, data: bytes) -> None:
        self._relay.events_received(data)

    def errReceived(self, data: bytes) -> None:
        self._relay.errors_received(data)

    def signal(self, name: str) -> None:
        """Send the worker a signal, if it still runs."""
        if self.transport is not None and self.transport.pid is not None:
            self.transport.signalProcess(name)

    def processEnded(self, reason: Failure) -> None:
        self._relay.flush()
        self._ended(self, reason)


def exit_description(reason: Failure) -> str:
    """How a worker process ended, in words."""
    if reason.check(ProcessDone):
        return "exited"
    value: Any = reason.value
    if getattr(value, "signal", None):
        return f"was killed by signal {value.signal}"
    return f"exited with status {getattr(value, 'exitCode', '?')}"
