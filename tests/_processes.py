"""
Run the real programs: the twistd plugin and the tlsecho client, in subprocesses.

The server listens on an ephemeral loopback port; its log line
"tlsecho listening on HOST:PORT" says which.  Every process is stopped by its PID.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
TWISTD = str(BIN / "twistd")
#: The server command: twistd in the foreground, no pid file.
TWISTD_COMMAND = [TWISTD, "-n", "--pidfile="]
#: The other runner, with text logs like twistd's.
TWIST_COMMAND = [str(BIN / "twist"), "--log-format=text"]
TLSECHO = str(BIN / "tlsecho")
LOOPBACK_LISTEN = "tcp:0:interface=127.0.0.1"
_LISTENING = re.compile(
    r"tlsecho listening on (?:\[(?P<v6>[^\]]+)\]|(?P<host>[^\s:]+)):(?P<port>\d+)"
)


class ServerProcess:
    """
    A running ``twistd -n tlsecho`` whose output is collected as it comes.
    """

    def __init__(
        self,
        arguments: list[str],
        env: dict[str, str] | None = None,
        command: list[str] = TWISTD_COMMAND,
        pass_fds: tuple[int, ...] = (),
        plugin: bool = True,
    ):
        """
        Start ``command tlsecho arguments``; with ``command=[sys.executable, "-c"]``
        the arguments are a script and its arguments instead, and with
        ``plugin=False`` any command runs (HAProxy, say).
        """
        self.arguments = arguments
        plugin_name = ["tlsecho"] if plugin and command[-1:] != ["-c"] else []
        self.process = subprocess.Popen(
            [*command, *plugin_name, *arguments],
            pass_fds=pass_fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self.addresses: list[tuple[str, int]] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._changed:
                self.lines.append(line)
                match = _LISTENING.search(line)
                if match:
                    host = match.group("v6") or match.group("host")
                    self.addresses.append((host, int(match.group("port"))))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        """Everything the server has printed so far."""
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """Wait until a line of output matches ``pattern``; return the match."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    match = compiled.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (
                    self.process.poll() is not None and not self._reader.is_alive()
                ):
                    raise AssertionError(
                        f"no line matching {pattern!r} in server output:\n"
                        + "\n".join(self.lines)
                    )
                self._changed.wait(min(remaining, 0.1))

    def wait_listening(
        self, count: int = 1, timeout: float = 20.0
    ) -> list[tuple[str, int]]:
        """Wait until ``count`` listeners are up; return their (host, port)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.addresses) < count:
                if self.process.poll() is not None and not self._reader.is_alive():
                    raise AssertionError("server exited:\n" + "\n".join(self.lines))
                if time.monotonic() > deadline:
                    raise AssertionError("server not listening:\n" + "\n".join(self.lines))
                self._changed.wait(0.1)
            return list(self.addresses)

    @property
    def address(self) -> str:
        """HOST:PORT of the first listener, as ``tlsecho client`` takes it."""
        host, port = self.wait_listening()[0]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def port(self) -> int:
        """Port of the first listener."""
        return self.wait_listening()[0][1]

    def stop(self, timeout: float = 10.0) -> int:
        """Stop the server (SIGTERM, then SIGKILL) by its PID; return its exit status."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        self._reader.join(timeout)
        return self.process.returncode


def start_server(
    servers: list[ServerProcess],
    *arguments: str,
    listen: str | None = LOOPBACK_LISTEN,
    env: dict[str, str] | None = None,
    command: list[str] = TWISTD_COMMAND,
) -> ServerProcess:
    """Start ``twistd -n tlsecho`` (or ``command``) and wait until it listens.

    The server is added to ``servers``, whose fixture stops it by PID.
    """
    extra = ["--listen", listen] if listen else []
    server = ServerProcess([*extra, *arguments], env=env, command=command)
    servers.append(server)
    server.wait_listening()
    return server


def run_twistd(*arguments: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``twistd -n tlsecho`` expecting it to exit by itself (a start-up error)."""
    return subprocess.run(
        [TWISTD, "-n", "--pidfile=", "tlsecho", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def run_client(
    address: str, *arguments: str, payload: bytes = b"hello\n", timeout: float = 60.0
) -> subprocess.CompletedProcess[bytes]:
    """Run ``tlsecho client ADDRESS`` with ``payload`` on standard input."""
    return subprocess.run(
        [TLSECHO, "client", *arguments, address],
        input=payload,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def metrics_of(server: ServerProcess) -> dict[str, float]:
    """Scrape the server's ``--metrics`` endpoint: each sample's value by its name."""
    match = server.wait_for(r"tlsecho metrics on (http://\S+/metrics)")
    with urllib.request.urlopen(match.group(1), timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def identity(files: Any) -> list[str]:
    """``--cert`` and ``--key`` of the ``tls_files`` fixture's server certificate."""
    return ["--cert", str(files.server_cert), "--key", str(files.server_key)]


def start_json_server(
    servers: list[ServerProcess],
    *arguments: str,
    listen: str = LOOPBACK_LISTEN,
    command: list[str] = TWISTD_COMMAND,
) -> tuple[ServerProcess, int]:
    """Start the plugin logging JSON; return it and its port once it listens."""
    server = ServerProcess(
        ["--listen", listen, *arguments, "--log-format", "json"], command=command
    )
    servers.append(server)
    port = server.wait_for(r'"address":"127\.0\.0\.1:(\d+)"').group(1)
    return server, int(port)
