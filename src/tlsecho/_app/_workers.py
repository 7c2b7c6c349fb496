"""
Several worker processes on one machine (C{--workers N}), the pre-fork
pattern of Twisted's C{adoptStreamPort}.

The main process binds every C{--listen} socket once (systemd's sockets too)
and starts N workers: C{python -m twisted tlsecho} with the same arguments,
each socket handed over as an inherited file descriptor which the worker adopts
(L{AdoptedStreamServerEndpoint}) under the same PROXY and TLS layers.  The
kernel gives each new connection to whichever worker accepts it first.

The main process restarts a worker that dies (at once, or after a pause if it
dies young), forwards SIGHUP to every worker (each reloads), and on SIGTERM
stops accepting, forwards it (each drains) and exits once all have exited.
Workers log through the main process: each writes its log events as JSON to a
pipe, and the main process publishes them as its own, marked with the worker
number (L{LogRelay}), so they go wherever the runner's log goes.  What runs in
the worker itself (adopting the sockets, stopping when the main process is
gone) is L{tlsecho._app._worker_process}.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._net._connlog import format_address
from .._net._endpoints import transport_endpoint
from .._settings._errors import ConfigurationError
from ._configuration import ServerConfiguration, warn_restart_needed
from ._health import Lifecycle
from ._listening import bind_or_explain, listen_now, metrics_service
from ._metrics import MULTIPROCESS_ENVIRONMENT, worker_gone, workers_registry
from ._version import describe
from ._worker_process import WorkerProcess, exit_description, handover

__all__ = ["WorkerSupervisor"]

#: A worker that dies sooner than this after it started is restarted after a
#: pause, so a worker that cannot start does not spin.
YOUNG = 2.0
#: Seconds after the shutdown timeout when a worker still running is killed:
#: it should have stopped by itself (the service stops at most STOP_GRACE
#: after the timeout), and SIGTERM is promised to end within the timeout
#: plus 1 s.
KILL_GRACE = 1.0

_log = Logger()


class _Idle(Protocol):
    """Never used: the main process's copy of a socket does not accept."""


class WorkerSupervisor(MultiService):
    """
    The main process of C{--workers N}: binds the listeners and keeps N
    workers serving on them.

    @ivar workers: The worker processes now running, by number.
    @ivar lifecycle: For C{/readyz} and systemd: ready once the listeners are
        bound and the workers started, while every worker runs.
    """

    def __init__(
        self,
        configuration: ServerConfiguration,
        arguments: Sequence[str],
        count: int,
        shutdown_timeout: float,
        reactor: Any = None,
        directory: str | None = None,
        metrics: str | None = None,
    ):
        """
        @param configuration: What the workers serve (checked already).
        @param arguments: The plugin's own command-line arguments, which every
            worker gets too.
        @param count: How many workers to keep running.
        @param shutdown_timeout: How long a worker may drain; L{KILL_GRACE}
            seconds after that, a worker still running is killed.
        @param reactor: The reactor; the global one by default.
        @param directory: The workers' working directory: the current one by
            default (relative paths in the arguments stay valid).
        @param metrics: Where to serve the workers' metrics, added up
            (C{--metrics}); L{None}: nowhere.
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self.configuration = configuration
        self._arguments = list(arguments)
        self._count = count
        self._shutdown_timeout = shutdown_timeout
        self._directory = directory or os.getcwd()
        self._ports: list[IListeningPort] = []
        self._sockets: list[tuple[int, int]] = []
        self.workers: dict[int, WorkerProcess] = {}
        self._stopping: Deferred[None] | None = None
        self._metrics_directory: str | None = None
        self.lifecycle = Lifecycle(reactor)
        self.lifecycle.conditions.append(self._all_running)
        if metrics is not None:
            self._metrics_directory = tempfile.mkdtemp(prefix="tlsecho-metrics-")
            registry = workers_registry(self._metrics_directory)
            readiness = self.lifecycle.readiness
            metrics_service(reactor, metrics, registry, readiness).setServiceParent(self)

    def _all_running(self) -> str | None:
        running = len(self.workers)
        if running >= self._count:
            return None
        return f"{running} of {self._count} workers running"

    def privilegedStartService(self) -> None:
        """
        Bind every listener (before privileges are shed), but accept nothing.

        @raise ConfigurationError: naming the C{--listen} description, if a
            port cannot be bound.
        """
        self._bind_listeners()
        Service.privilegedStartService(self)
        for child in self:
            bind_or_explain(child, child.privilegedStartService)

    def _bind_listeners(self) -> None:
        if self._ports:
            return  # bound already (twistd binds early; twist does not)
        _log.info(
            "starting {versions} with {count} workers",
            versions=describe(),
            count=self._count,
            event="server.starting",
        )
        for description in self.configuration.listen:
            endpoint = transport_endpoint(self._reactor, description)
            port = listen_now(endpoint, Factory.forProtocol(_Idle), description)
            port.stopReading()  # type: ignore[attr-defined]  # the workers accept
            sock: socket.socket = port.socket  # type: ignore[attr-defined]
            self._ports.append(port)
            self._sockets.append((sock.fileno(), sock.family))
            _log.info(
                "tlsecho listening on {address} ({description}) with {count} workers",
                address=format_address(port.getHost()),
                description=description,
                count=self._count,
                event="server.listening",
            )

    def startService(self) -> None:
        """
        Start the workers (binding the listeners first, if not yet done).

        @raise ConfigurationError: as L{privilegedStartService}.
        """
        self._bind_listeners()
        Service.startService(self)
        self.lifecycle.start_watchdog()
        for child in self:
            bind_or_explain(child, child.startService)
        for number in range(1, self._count + 1):
            self._spawn(number)
        # The bound sockets queue connections until a worker accepts them.
        self.lifecycle.listening(
            f"serving on {len(self._ports)} listener(s) with {self._count} workers"
        )

    def _spawn(self, number: int) -> None:
        if self._stopping is not None:
            return
        worker = WorkerProcess(number, self.worker_ended)
        self.workers[number] = worker
        environment, inherited = handover(number, self._sockets)
        if self._metrics_directory is not None:
            environment[MULTIPROCESS_ENVIRONMENT] = self._metrics_directory
        command = [sys.executable, "-m", "twisted", "tlsecho", *self._arguments]
        self._reactor.spawnProcess(
            worker,
            sys.executable,
            command,
            env=environment,
            path=self._directory,
            # Standard input stays open while we live: its end tells a worker
            # that the main process is gone.
            childFDs={0: "w", 1: "r", 2: "r", **inherited},
        )

    def worker_ended(self, worker: WorkerProcess, reason: Failure) -> None:
        """
        A worker exited: start another in its place, unless stopping.
        """
        if self.workers.get(worker.number) is worker:
            del self.workers[worker.number]
        if self._metrics_directory is not None and worker.pid is not None:
            worker_gone(self._metrics_directory, worker.pid)
        how = exit_description(reason)
        if self._stopping is not None:
            _log.info(
                "worker {worker} (pid {pid}) {how}",
                worker=worker.number,
                pid=worker.pid,
                how=how,
                event="worker.exited",
            )
            if not self.workers and not self._stopping.called:
                self._stopping.callback(None)
            return
        lived = time.monotonic() - worker.started
        delay = 0.0 if lived >= YOUNG else YOUNG
        _log.warn(
            "worker {worker} (pid {pid}) {how} after {lived:.1f}s; starting another{later}",
            worker=worker.number,
            pid=worker.pid,
            how=how,
            lived=lived,
            later=f" in {delay:g}s" if delay else "",
            event="worker.restarting",
        )
        self._reactor.callLater(delay, self._spawn, worker.number)

    def reload(self) -> None:
        """
        Have every worker reload its TLS configuration (SIGHUP); say here, once,
        if the new configuration changes what only a restart applies.
        """
        _log.info(
            "reloading {count} workers", count=len(self.workers), event="reload.started"
        )
        self.lifecycle.reloading()
        with contextlib.suppress(ConfigurationError):  # each worker says why
            warn_restart_needed(self.configuration, self.configuration.reread())
        for worker in list(self.workers.values()):
            worker.signal("HUP")
        self.lifecycle.reloaded(f"reload passed on to {len(self.workers)} workers")

    def stopService(self) -> Deferred[None]:
        """
        Stop accepting, have every worker drain (SIGTERM), and fire once all
        have exited; kill those still running well after the shutdown timeout.
        The metrics listener (C{/readyz}: 503) serves until then.
        """
        self.lifecycle.stopping()
        Service.stopService(self)
        stopping: Deferred[None] = Deferred()
        self._stopping = stopping
        for port in self._ports:
            port.stopListening()
        self._ports = []
        stopping.addBoth(self._stop_children)
        if self._metrics_directory is not None:
            stopping.addBoth(self._forget_metrics)
        if not self.workers:
            stopping.callback(None)
            return stopping
        count = len(self.workers)
        _log.info("stopping {count} workers", count=count, event="server.stopping")
        for worker in list(self.workers.values()):
            worker.signal("TERM")
        # A worker drains for the shutdown timeout, then closes and aborts
        # what is left and exits (EchoService.stopService, within STOP_GRACE);
        # a worker still running at the promised bound is killed.
        deadline = self._reactor.callLater(
            self._shutdown_timeout + KILL_GRACE, self._kill_remaining
        )

        def stopped(result: None) -> None:
            if deadline.active():
                deadline.cancel()

        return stopping.addCallback(stopped)

    def _stop_children(self, result: object) -> object:
        for child in self:
            child.stopService()
        self.lifecycle.stopped()
        return result

    def _forget_metrics(self, result: object) -> object:
        if self._metrics_directory is not None:
            shutil.rmtree(self._metrics_directory, ignore_errors=True)
        return result

    def _kill_remaining(self) -> None:
        for worker in list(self.workers.values()):
            _log.warn(
                "worker {worker} (pid {pid}) still running {grace:g}s after the "
                "shutdown timeout; killing it",
                worker=worker.number,
                pid=worker.pid,
                grace=KILL_GRACE,
                event="worker.killed",
            )
            worker.signal("KILL")
