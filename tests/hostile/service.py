"""
Peers that attack the service around the echo: a client that stalls the
shutdown (it completed the handshake and then never reads and never closes, or
it stopped halfway through its ClientHello), a scanner that sends thousands of
ClientHellos each naming a different server (to make one metric series per
name), and idle HTTP connections that try to use up the descriptors of the
C{--metrics} listener.  tlsecho promises that SIGTERM ends the process within
C{--shutdown-timeout} plus at most 1 s whatever the peers do, that metric
labels come from fixed sets (peer text goes to the log only), and that the
metrics listener holds a bounded number of connections for a short time, so
neither it nor the peers starve the TLS listeners.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from OpenSSL import SSL

__all__ = [
    "client_hello",
    "idle_connections",
    "send_client_hellos",
    "stalled_mid_handshake",
    "stalled_reader",
]


def stalled_reader(port: int, ca: Path, host: str = "127.0.0.1") -> ssl.SSLSocket:
    """
    A TLS client that completes its handshake, then sends until both ends'
    buffers are full, and then neither reads nor closes (the caller keeps the
    socket open).
    """
    context = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection((host, port), timeout=10)
    connection = context.wrap_socket(raw, server_hostname="localhost")
    connection.settimeout(1.0)
    chunk = b"x" * 65536
    # The server echoes until its own send buffer is full (we do not read),
    # then stops reading from us: our sends block.  Bounded: a few hundred
    # MiB at most even with the largest loopback buffers.
    for _ in range(4096):
        try:
            connection.send(chunk)
        except (TimeoutError, ssl.SSLWantWriteError):
            break
    else:
        raise AssertionError("the server read everything without us reading anything")
    return connection


def stalled_mid_handshake(port: int, host: str = "127.0.0.1") -> socket.socket:
    """
    A client that sends the first half of a ClientHello and then nothing,
    without closing.
    """
    hello = client_hello("localhost")
    connection = socket.create_connection((host, port), timeout=10)
    connection.sendall(hello[: len(hello) // 2])
    return connection


def client_hello(server_name: str) -> bytes:
    """
    The first flight of a TLS client (a ClientHello record) naming
    C{server_name} in its SNI extension, made by pyOpenSSL.
    """
    context = SSL.Context(SSL.TLS_METHOD)
    connection = SSL.Connection(context, None)
    connection.set_tlsext_host_name(server_name.encode("ascii"))
    connection.set_connect_state()
    with contextlib.suppress(SSL.WantReadError):
        connection.do_handshake()
    hello = connection.bio_read(65536)
    assert hello[:1] == b"\x16"
    assert server_name.encode("ascii") in hello
    return hello


def _sni_variants(template: bytes, name: bytes, names: Iterable[bytes]) -> Iterator[bytes]:
    """
    The ClientHello C{template}, which names C{name}, once for each of
    C{names} (all as long as C{name}): no cryptography per connection.
    """
    at = template.index(name)
    assert template.count(name) == 1
    for other in names:
        assert len(other) == len(name)
        yield template[:at] + other + template[at + len(name) :]


def send_client_hellos(
    port: int,
    names: Sequence[str],
    threads: int = 4,
    host: str = "127.0.0.1",
    limit: float = 600.0,
) -> int:
    """
    Connect once for each of C{names} (all of the same length), send a
    ClientHello naming it, and read until the server closes; C{threads}
    connections at a time, for at most C{limit} seconds in all.  Return how
    many connections the server answered (with an alert or by closing).
    """
    deadline = time.monotonic() + limit
    template = client_hello(names[0])
    hellos = list(
        _sni_variants(template, names[0].encode(), (n.encode("ascii") for n in names))
    )
    answered = [0] * threads
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            for hello in hellos[index::threads]:
                if time.monotonic() > deadline:
                    raise AssertionError(f"not done after {limit:g}s")
                with socket.create_connection((host, port), timeout=20) as s:
                    # Close with a reset: no TIME_WAIT left on our side.
                    s.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    s.sendall(hello)
                    with contextlib.suppress(ConnectionResetError):
                        while s.recv(4096):
                            pass
                    answered[index] += 1
        except BaseException as e:  # reported by the caller
            errors.append(e)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return sum(answered)


def idle_connections(port: int, count: int, host: str = "127.0.0.1") -> list[socket.socket]:
    """
    C{count} TCP connections that send nothing and never close (the caller
    closes them).
    """
    connections = []
    try:
        for _ in range(count):
            connections.append(socket.create_connection((host, port), timeout=10))
    except BaseException:
        for connection in connections:
            connection.close()
        raise
    return connections
