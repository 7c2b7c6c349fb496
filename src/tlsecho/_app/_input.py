"""
Read standard input without blocking the reactor, one chunk at a time.

A thread does the blocking reads, so any kind of input works the same way: a
terminal (a line at a time, as typed), a pipe, a regular file (which epoll
cannot watch, so C{twisted.internet.stdio.StandardIO} cannot read it), or
C{/dev/null}; and the descriptor is left in blocking mode, as the shell that
shares it expects.  The thread reads one chunk only when the reactor has asked
for it and the previous one has been handed over, so at most one chunk is
ever in flight: pausing the reader bounds what it holds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import IO, Protocol

from twisted.internet.interfaces import IPushProducer, IReactorFromThreads
from zope.interface import implementer

__all__ = ["CHUNK", "InputReader", "Sink"]

#: The most one read takes from the input.
CHUNK = 64 * 1024


class Sink(Protocol):
    """Where an L{InputReader} delivers (an L{EchoStreamProtocol})."""

    def send(self, data: bytes) -> None:
        """The next chunk of input."""

    def finish(self) -> None:
        """The input is over."""


@implementer(IPushProducer)
class InputReader:
    """
    Read a file (standard input) in a thread and hand each chunk to C{sink} in
    the reactor thread; a push producer that starts paused.

    The thread is a daemon: if the exchange ends while it waits for input (a
    terminal no one types at), the process exits without it.

    @ivar error: Why reading failed, if it did (then the sink is not finished).
    """

    def __init__(
        self,
        reactor: IReactorFromThreads,
        file: IO[bytes],
        sink: Sink,
        on_error: Callable[[str], None] | None = None,
        chunk: int = CHUNK,
    ):
        """
        @param file: Read through its descriptor if it has one (so no
            buffered object's lock is held by a thread at exit), otherwise
            with C{read}.
        @param on_error: Called in the reactor thread with one line if a read
            fails.
        """
        self._reactor = reactor
        self._file = file
        self._sink = sink
        self._on_error = on_error
        self._chunk = chunk
        self._go = threading.Event()
        self._thread: threading.Thread | None = None
        self._paused = True
        self._waiting = False
        self._stopped = False

    def _read(self) -> bytes:
        try:
            descriptor = self._file.fileno()
        except (OSError, ValueError, AttributeError):
            return self._file.read(self._chunk)
        return os.read(descriptor, self._chunk)

    def _run(self) -> None:
        while True:
            self._go.wait()
            self._go.clear()
            try:
                data = self._read()
            except Exception as e:
                self._reactor.callFromThread(self._failed, f"{type(e).__name__}: {e}")
                return
            self._reactor.callFromThread(self._deliver, data)
            if not data:
                return

    def _ask(self) -> None:
        """Let the thread read one more chunk, if wanted and none is in flight."""
        if self._paused or self._waiting or self._stopped:
            return
        self._waiting = True
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="tlsecho standard input", daemon=True
            )
            self._thread.start()
        self._go.set()

    def _deliver(self, data: bytes) -> None:
        self._waiting = False
        if self._stopped:
            return
        if not data:
            self._stopped = True
            self._sink.finish()
            return
        self._sink.send(data)
        self._ask()

    def _failed(self, reason: str) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._on_error is not None:
            self._on_error(reason)

    def pauseProducing(self) -> None:
        """Read no more chunks (one already asked for may still come)."""
        self._paused = True

    def resumeProducing(self) -> None:
        """Read on (the first call starts the thread)."""
        self._paused = False
        self._ask()

    def stopProducing(self) -> None:
        """Deliver nothing more; the thread ends after its current read."""
        self._stopped = True
