"""
Processes the benchmark starts: servers and load clients, each stopped by its PID,
and the CPU time and memory of a server's process tree.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

#: The repository root (parent of this package): load clients and peers run from it.
ROOT = Path(__file__).resolve().parent.parent
#: What servers print once they listen: tlsecho's log line and the peers' line.
LISTENING = re.compile(r"listening on (?:\[[^\]]+\]|[^\s:]+):(\d+)")
#: What a worker of C{tlsecho --workers N} logs (through its main process,
#: marked with its number) once it listens.
WORKER_LISTENING = re.compile(r"\[worker (\d+)\] tlsecho listening on ")
#: tlsecho's line for a connection that ended, from a worker: its number and
#: the bytes it echoed.
WORKER_ECHOED = re.compile(r"\[worker (\d+)\] [^\n]* after (\d+) bytes echoed")


def _last_line(text: str) -> str:
    """The last non-empty line of C{text} (the exception of a traceback)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


class BenchError(Exception):
    """The benchmark itself failed: a server did not start, a client failed."""


def raise_open_files_limit(wanted: int = 65536) -> int:
    """
    Raise this process's soft limit on open files towards C{wanted} (up to the
    hard limit); children inherit it.  Returns the new soft limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def python_env() -> dict[str, str]:
    """The environment for Python children: the bench package importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def free_port() -> int:
    """A loopback TCP port nobody listens on now (for servers that cannot take 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """Stop one process by PID: SIGTERM, then SIGKILL if it has not gone."""
    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout)
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).send_signal(signal.SIGKILL)
    except psutil.NoSuchProcess:
        pass


class ServerProcess:
    """
    A server started by the benchmark, with its output going to a log file.

    @ivar port: The port it listens on, once L{wait_listening} returned.
    @ivar workers: How many worker processes serve its connections (tlsecho
        C{--workers N}); 1 for a server that serves them itself.
    """

    def __init__(
        self,
        command: Sequence[str],
        log: Path,
        cwd: Path,
        env: dict[str, str],
        workers: int = 1,
    ):
        self.log = log
        self.workers = workers
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
            )
        self.port = 0
        self._handle = psutil.Process(self.process.pid)

    @property
    def pid(self) -> int:
        """The server's PID."""
        return self.process.pid

    def wait_listening(self, timeout: float = 30.0, port: int | None = None) -> int:
        """
        Wait until the server prints its listening line (or, given C{port},
        accepts TCP connections there); return the port.

        @raise BenchError: if it exits or does not listen in time.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"server exited:\n{self.output()}")
            if port is None:
                match = LISTENING.search(self.output())
                if match:
                    self.port = int(match.group(1))
                    return self.port
            else:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), timeout=1),
                ):
                    self.port = port
                    return port
            time.sleep(0.05)
        raise BenchError(f"server not listening after {timeout}s:\n{self.output()}")

    def wait_workers(self, timeout: float = 60.0) -> None:
        """
        For a server with L{workers}: wait until every worker has said it
        listens (they start after the main process does, seconds later, and
        until then the connections wait in the backlog).

        @raise BenchError: if it exits or its workers do not all listen in time.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"server exited:\n{self.output()}")
            if len(set(WORKER_LISTENING.findall(self.output()))) >= self.workers:
                return
            time.sleep(0.05)
        raise BenchError(
            f"{self.workers} workers not all listening after {timeout}s:\n{self.output()}"
        )

    def workers_echoed(self, since: int = 0) -> dict[int, int]:
        """
        For a server with L{workers}: the bytes each worker echoed on the
        connections that ended, as its log says from character C{since} on
        (workers that logged none are not there).
        """
        echoed: dict[int, int] = {}
        for worker, count in WORKER_ECHOED.findall(self.output()[since:]):
            echoed[int(worker)] = echoed.get(int(worker), 0) + int(count)
        return echoed

    def output(self) -> str:
        """What the server has logged so far."""
        return self.log.read_text("utf-8", "replace")

    def tree(self) -> list[psutil.Process]:
        """The server process and its live children (socat forks one per connection)."""
        try:
            return [self._handle, *self._handle.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        """CPU time used by the tree, including children that have exited."""
        total = 0.0
        for process in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
                if process is self._handle:
                    total += times.children_user + times.children_system
        return total

    def memory(self) -> int:
        """
        Bytes of memory the server uses: the RSS of a single process; for a tree
        of processes, the sum of their PSS (shared pages counted once).
        """
        tree = self.tree()
        if len(tree) == 1:
            return int(tree[0].memory_info().rss)
        total = 0
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += int(process.memory_full_info().pss)
        return total

    def stop(self) -> None:
        """Stop the server and every child of it, each by its PID."""
        children = self.tree()[1:]
        stop_pid(self.pid)
        for child in children:
            stop_pid(child.pid, timeout=2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


class ClientProcess:
    """A load client (C{python -m bench.clients.NAME ...}) running in its own process."""

    def __init__(self, name: str, arguments: Sequence[str], interactive: bool = False):
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"bench.clients.{name}", *arguments],
            stdin=subprocess.PIPE if interactive else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=python_env(),
            text=True,
        )

    def read_line(self, timeout: float) -> str:
        """
        The next line the client prints (used for C{ready}).

        @raise BenchError: if the client exits first or C{timeout} passes.
        """
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        os.set_blocking(self.process.stdout.fileno(), True)
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=0.1):
                    line = self.process.stdout.readline()
                    if line:
                        return line.strip()
                    break
        self.stop()
        raise BenchError(f"client {self.name} said nothing: {_last_line(self.errors())}")

    def send_line(self, line: str) -> None:
        """Write C{line} to the client's standard input (C{go})."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def result(self, timeout: float) -> dict[str, Any]:
        """
        Wait for the client to finish and return its JSON result line.

        @raise BenchError: if it fails, prints no result or outlives C{timeout}.
        """
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise BenchError(f"client {self.name} still running after {timeout}s") from None
        lines = out.strip().splitlines()
        if self.process.returncode != 0 or not lines:
            raise BenchError(
                f"client {self.name} failed (exit {self.process.returncode}): "
                f"{_last_line(err)}"
            )
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def errors(self) -> str:
        """Standard error, once the client has ended."""
        if self.process.poll() is None:
            return ""
        assert self.process.stderr is not None
        return self.process.stderr.read()[-2000:]

    def stop(self) -> None:
        """Stop the client by its PID."""
        if self.process.poll() is None:
            stop_pid(self.process.pid, timeout=5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
