"""
The servers under test: how to start each one on 127.0.0.1 with the benchmark's
certificate, and whether it is available on this machine.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.certs import CertFiles
from bench.procs import ServerProcess, free_port, python_env
from bench.report import WORKERS

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Server:
    """
    One server under test.

    @ivar name: Short name used in results (C{tlsecho}, C{asyncio} ...).
    @ivar description: What it is, for the report.
    @ivar command: Builds the command line from the certificate files and a
        port (0 when the server announces the port it got).
    @ivar fixed_port: Whether the server needs a port chosen for it (it cannot
        report an ephemeral one).
    @ivar requires: Why it cannot run here, or L{None} if it can.
    @ivar pythonpath: A directory put first on the server's C{PYTHONPATH}
        (for tlsecho variants: a C{src} directory holding another C{tlsecho}).
    @ivar only: The metrics it is measured on; L{None} for all.
    @ivar env: Environment variables set for the server, over the bench's own
        environment, as (name, value) pairs (for tlsecho: which TLS transport).
    @ivar workers: Worker processes serving its connections (tlsecho
        C{--workers N}): L{start} waits until each listens, and the warm-up
        until each has served a connection.
    """

    name: str
    description: str
    command: Callable[[CertFiles, int], list[str]]
    fixed_port: bool = False
    requires: Callable[[], str | None] = lambda: None
    pythonpath: str | None = None
    only: frozenset[str] | None = None
    env: tuple[tuple[str, str], ...] = ()
    workers: int = 1

    def start(self, certs: CertFiles, directory: Path) -> ServerProcess:
        """
        Start the server, logging to C{directory}, and wait until it listens
        (each of its workers too).
        """
        port = free_port() if self.fixed_port else 0
        env = python_env()
        if self.pythonpath is not None:
            env["PYTHONPATH"] = os.pathsep.join([self.pythonpath, env["PYTHONPATH"]])
        env.update(self.env)
        server = ServerProcess(
            self.command(certs, port),
            directory / f"{self.name}.log",
            cwd=directory,
            env=env,
            workers=self.workers,
        )
        try:
            server.wait_listening(port=port if self.fixed_port else None)
            if self.workers > 1:
                server.wait_workers()
        except BaseException:
            server.stop()
            raise
        return server


def _tlsecho(certs: CertFiles, port: int, *extra: str) -> list[str]:
    return [
        str(BIN / "twistd"),
        "-n",
        "--pidfile=",
        "tlsecho",
        "--cert",
        str(certs.chain),
        "--key",
        str(certs.key),
        "--listen",
        f"tcp:{port}:interface=127.0.0.1",
        *extra,
    ]


def _tlsecho_workers(count: int) -> Callable[[CertFiles, int], list[str]]:
    def command(certs: CertFiles, port: int) -> list[str]:
        return _tlsecho(certs, port, "--workers", str(count))

    return command


def _peer(module: str, *extra: str) -> Callable[[CertFiles, int], list[str]]:
    def command(certs: CertFiles, port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            f"bench.peers.{module}",
            "--cert",
            str(certs.chain),
            "--key",
            str(certs.key),
            "--port",
            str(port),
            *extra,
        ]

    return command


def _socat(certs: CertFiles, port: int) -> list[str]:
    # -b 65536: the transfer block size; fork: one process per connection;
    # backlog: the default of 5 would drop SYNs under concurrent connects.
    address = (
        f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=1024,"
        f"cert={certs.chain},key={certs.key},verify=0"
    )
    return [shutil.which("socat") or "socat", "-b", "65536", address, "PIPE"]


#: tlsecho on its previous TLS transport (Twisted's TLSMemoryBIOProtocol over
#: pyOpenSSL): compared with tlsecho like a peer, to show what the lean one gains.
PYOPENSSL = "tlsecho-pyopenssl"
#: Read by tlsecho's server: which TLS transport its connections use.
TRANSPORT = "TLSECHO_TLS_TRANSPORT"
#: tlsecho's own lean transport, the default; set explicitly so that a
#: TLSECHO_TLS_TRANSPORT in the bench's environment cannot change what
#: C{tlsecho} (the subject of every ratio) measures.
LEAN = ((TRANSPORT, "lean"),)


def _needs_module(name: str) -> Callable[[], str | None]:
    def check() -> str | None:
        return None if importlib.util.find_spec(name) else f"python module {name} missing"

    return check


def _needs_program(name: str) -> Callable[[], str | None]:
    def check() -> str | None:
        return None if shutil.which(name) else f"{name} not installed"

    return check


#: Every server, tlsecho first (ratios are tlsecho / each of the others).
SERVERS: tuple[Server, ...] = (
    Server(
        "tlsecho",
        "twistd -n tlsecho (this project, on its lean TLS transport)",
        _tlsecho,
        env=LEAN,
    ),
    # tlsecho on the TLS transport it had before the lean one, to show the gain.
    Server(
        PYOPENSSL,
        f"twistd -n tlsecho with {TRANSPORT}=pyopenssl (Twisted's "
        "TLSMemoryBIOProtocol over pyOpenSSL's API)",
        _tlsecho,
        env=((TRANSPORT, "pyopenssl"),),
    ),
    # Not a peer: tlsecho itself with two worker processes, compared with one.
    Server(
        WORKERS,
        "twistd -n tlsecho --workers 2 (two worker processes)",
        _tlsecho_workers(2),
        only=frozenset({"handshakes", "pingpong", "bulk"}),
        env=LEAN,
        workers=2,
    ),
    Server(
        "asyncio", "asyncio + ssl, Protocol.data_received -> write", _peer("asyncio_echo")
    ),
    Server(
        "uvloop",
        "the same on uvloop",
        _peer("asyncio_echo", "--loop", "uvloop"),
        requires=_needs_module("uvloop"),
    ),
    Server(
        "twisted",
        "textbook Twisted: dataReceived -> transport.write on ssl: endpoint",
        _peer("twisted_echo"),
    ),
    Server(
        "socat",
        "socat -b 65536 OPENSSL-LISTEN:...,fork PIPE",
        _socat,
        fixed_port=True,
        requires=_needs_program("socat"),
    ),
)


def variant(name: str, source: str) -> Server:
    """
    tlsecho run from another source tree, to compare a change with the installed
    version in the same run: C{source} is a directory holding the C{tlsecho}
    package (a checkout's C{src}).
    """
    return Server(
        f"tlsecho-{name}",
        f"twistd -n tlsecho with tlsecho from {source}",
        _tlsecho,
        pythonpath=source,
        env=LEAN,
        requires=lambda: (
            None
            if os.path.isdir(os.path.join(source, "tlsecho"))
            else (f"no tlsecho package in {source}")
        ),
    )
