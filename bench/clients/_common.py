"""
What the load clients share: argument parsing, the TLS context, the event loop
and the JSON result line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import ssl
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: The name the benchmark's server certificate is issued for.
SERVER_NAME = "localhost"
#: Help for the --go option of the clients the bench starts all at once.
GO_HELP = (
    "print ready once set up, then start at the first line on standard input "
    "(the bench starts every client at once)"
)


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every client takes."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--host", default="127.0.0.1")
    result.add_argument("--port", type=int, required=True)
    result.add_argument("--ca", help="CA file to verify the server with; none: no check")
    result.add_argument(
        "--loop", choices=["asyncio", "uvloop"], default="uvloop", help="event loop"
    )
    return result


def client_context(ca: str | None) -> ssl.SSLContext:
    """
    A TLS client context: verifying against C{ca}, or checking nothing without it
    (which spares the client an ECDSA verification per handshake; the server does
    the same work either way).
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    if ca is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def connect(host: str, port: int, timeout: float = 10.0) -> socket.socket:
    """A connected TCP socket with Nagle's algorithm off."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def run(coroutine: Coroutine[Any, Any, T], loop: str) -> T:
    """Run C{coroutine} on the event loop named C{loop} (uvloop if installed)."""
    if loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def cpu_seconds() -> float:
    """CPU time (user and system) this process has used so far."""
    return time.process_time()


def emit(result: dict[str, Any]) -> None:
    """Print the result line the benchmark reads."""
    print(json.dumps(result), flush=True)
