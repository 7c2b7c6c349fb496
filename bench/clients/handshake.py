"""
Handshakes: full TLS 1.3 handshakes, one after another, for C{--duration}
seconds (from the bench's go, with C{--go}); several of these processes run at
once.

Each connection is new (no session is offered for resumption, and the client
keeps no session cache), completes its handshake, echoes one byte (so the server
has finished its side too) and closes.  The client uses pyOpenSSL with blocking
sockets, the cheapest client measured on this machine (about 0.7 ms of CPU per
handshake, against 1.2 ms for the ssl module), and does not verify the server's
chain (it still checks the handshake signature); the server does the same work
either way.
"""

from __future__ import annotations

import socket
import sys
import time

from OpenSSL import SSL

from bench.clients._common import GO_HELP, SERVER_NAME, connect, cpu_seconds, emit, parser


def _context() -> SSL.Context:
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    context.set_verify(SSL.VERIFY_NONE)
    context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    return context


def _one(context: SSL.Context, host: str, port: int) -> None:
    sock: socket.socket = connect(host, port)
    sock.settimeout(None)  # pyOpenSSL wants a blocking socket
    try:
        connection = SSL.Connection(context, sock)
        connection.set_connect_state()
        connection.set_tlsext_host_name(SERVER_NAME.encode())
        connection.do_handshake()
        connection.sendall(b"x")
        if connection.recv(1) != b"x":
            raise ConnectionError("no echo")
    finally:
        sock.close()


def handshakes(
    host: str, port: int, go: bool, duration: float
) -> dict[str, float | str | list[float]]:
    """
    Make connections for C{duration} seconds and count them; with C{go}, say
    C{ready} and start at the first line on standard input.
    """
    context = _context()
    if go:
        print("ready", flush=True)
        sys.stdin.readline()
    cpu = cpu_seconds()
    began = time.time()
    started = time.perf_counter()
    deadline = started + duration
    count = 0
    errors = 0
    error = ""
    while time.perf_counter() < deadline:
        try:
            _one(context, host, port)
        except (OSError, SSL.Error) as e:
            errors += 1
            error = repr(e)
        else:
            count += 1
    seconds = time.perf_counter() - started
    return {
        # The window the count is from, in epoch seconds: the bench takes the
        # server's CPU over the same one.
        "window": [began, time.time()],
        "count": count,
        "errors": errors,
        "error": error,
        "seconds": seconds,
        "rate": count / seconds,
        "cpu_seconds": cpu_seconds() - cpu,
    }


def main() -> None:
    """Parse the arguments, run, print the result."""
    arguments = parser(__doc__.splitlines()[1])
    arguments.add_argument("--go", action="store_true", help=GO_HELP)
    arguments.add_argument("--duration", type=float, default=5.0)
    options = arguments.parse_args()
    emit(handshakes(options.host, options.port, options.go, options.duration))


if __name__ == "__main__":
    main()
