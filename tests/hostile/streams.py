"""
Servers that send more than was asked for: a TLS server, trusted by the client,
that floods it with an endless stream as soon as the handshake completes,
echoes correctly and then keeps going, changes one byte of the echo, or echoes
a little and then stalls, or swallows what it is sent and echoes nothing, tries
to make C{tlsecho client} (and the library's C{echo()}) buffer without limit,
run out of memory, or report a broken echo as intact.  tlsecho promises that
the client compares the echo as it reads it, stops at the first byte that
differs or the first byte past what it sent (exit 1, one line naming the byte
offset), keeps no received bytes beyond what it is still waiting for, stops
reading its input while 1 MiB awaits its echo (memory bounded whatever the
server sends or withholds), and gives up a stalled echo at C{--timeout}.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

__all__ = [
    "Behaviour",
    "StreamServer",
    "altered_echo",
    "echo_then_extra",
    "endless",
    "slow_then_stall",
    "swallow",
]

#: What the server does with one accepted TLS connection, until C{stop} is set.
Behaviour = Callable[[ssl.SSLSocket, threading.Event], None]

#: How often a blocked server thread looks at its stop flag, in seconds.
_POLL = 0.2


def _read_exactly(tls: ssl.SSLSocket, size: int, stop: threading.Event) -> bytes:
    """The next C{size} bytes from C{tls} (fewer if the peer closes or we stop)."""
    received = bytearray()
    while len(received) < size and not stop.is_set():
        try:
            chunk = tls.recv(size - len(received))
        except TimeoutError:
            continue
        if not chunk:
            break
        received += chunk
    return bytes(received)


def _hold_open(tls: ssl.SSLSocket, stop: threading.Event) -> None:
    """Keep the connection open, reading and discarding, until the peer goes."""
    while not stop.is_set():
        try:
            if not tls.recv(65536):
                return
        except TimeoutError:
            continue


def endless(pattern: bytes) -> Behaviour:
    """
    Send C{pattern} over and over from the moment the handshake completes,
    without reading anything, until the client goes away.
    """
    chunk = memoryview(pattern * max(1, 16384 // len(pattern)))

    def behave(tls: ssl.SSLSocket, stop: threading.Event) -> None:
        start = 0
        while not stop.is_set():
            try:
                start = (start + tls.send(chunk[start:])) % len(chunk)
            except TimeoutError:
                continue  # the client is not reading: retry the same bytes

    return behave


def echo_then_extra(size: int, extra: bytes, separately: bool) -> Behaviour:
    """
    Read the C{size}-byte payload, echo it exactly and append C{extra}: in the
    same TLS record, or (C{separately}) in a later one, once the client has
    had time to see its whole echo and start closing.
    """

    def behave(tls: ssl.SSLSocket, stop: threading.Event) -> None:
        payload = _read_exactly(tls, size, stop)
        if separately:
            tls.sendall(payload)
            # Not a timing assumption: the extra bytes go out before this
            # server reads (and answers) the client's close_notify, whenever
            # that arrives, so the client always receives them.
            time.sleep(0.2)
            tls.sendall(extra)
        else:
            tls.sendall(payload + extra)
        _hold_open(tls, stop)

    return behave


def altered_echo(size: int, offset: int) -> Behaviour:
    """
    Read the C{size}-byte payload and echo it with the byte at C{offset}
    changed (its case bit flipped), then wait for the client to go.
    """

    def behave(tls: ssl.SSLSocket, stop: threading.Event) -> None:
        echo = bytearray(_read_exactly(tls, size, stop))
        echo[offset] ^= 0x20
        tls.sendall(bytes(echo))
        _hold_open(tls, stop)

    return behave


def slow_then_stall(size: int, keep: int) -> Behaviour:
    """
    Read the C{size}-byte payload, echo its first C{keep} bytes one TLS record
    per byte, slowly, then stall: read nothing more (not even the client's
    close_notify), send nothing more, never close.
    """

    def behave(tls: ssl.SSLSocket, stop: threading.Event) -> None:
        payload = _read_exactly(tls, size, stop)
        for i in range(keep):
            tls.sendall(payload[i : i + 1])
            time.sleep(0.05)
        stop.wait()

    return behave


def swallow(read: bool) -> Behaviour:
    """
    Echo nothing: read and discard everything the client sends (C{read}), or
    read nothing at all, until the client goes away.  A client that sent all
    it was given would buffer (or send) without end.
    """

    def behave(tls: ssl.SSLSocket, stop: threading.Event) -> None:
        if read:
            _hold_open(tls, stop)
        else:
            stop.wait()

    return behave


class StreamServer:
    """
    A TLS server on 127.0.0.1 (stdlib C{ssl}, in a thread) that treats every
    connection it accepts with one L{Behaviour}.

    Use it as a context manager; leaving stops the thread and closes every
    socket.

    @ivar port: The port it listens on.
    """

    def __init__(self, certificate: Path, key: Path, behaviour: Behaviour):
        """
        @param certificate: The server's PEM chain (the client must trust it).
        @param key: Its private key.
        """
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(certificate, key)
        self._behaviour = behaviour
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """HOST:PORT as C{tlsecho client} takes it."""
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._sockets.append(connection)
            connection.settimeout(_POLL * 25)
            # A client that refuses the handshake or goes away mid-stream is
            # the expected end of most attacks, not an error of this server.
            with contextlib.suppress(OSError):
                tls = self._context.wrap_socket(connection, server_side=True)
                self._sockets.append(tls)
                tls.settimeout(_POLL)
                self._behaviour(tls, self._stop)
                tls.close()

    def close(self) -> None:
        """Stop the thread and close every socket."""
        self._stop.set()
        self._thread.join(10)
        self._listener.close()
        for sock in self._sockets:
            sock.close()

    def __enter__(self) -> StreamServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
