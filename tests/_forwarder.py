"""
A TCP forwarder on loopback standing in for a load balancer: its n-th
connection goes to the n-th of its target ports (the last one after that).
Threads and blocking sockets; stopped on leaving the ``with`` block.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class Forwarder:
    """Forward each accepted connection to the next target port on 127.0.0.1."""

    def __init__(self, targets: list[int]):
        self._targets = list(targets)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Forwarder:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(10)

    def _accept(self) -> None:
        count = 0
        while True:
            try:
                accepted, _ = self._listener.accept()
            except OSError:
                return
            target = self._targets[min(count, len(self._targets) - 1)]
            count += 1
            upstream = socket.create_connection(("127.0.0.1", target), timeout=10)
            upstream.settimeout(None)
            self._sockets += [accepted, upstream]
            for source, sink in ((accepted, upstream), (upstream, accepted)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until end of file, then half-close ``sink``."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
