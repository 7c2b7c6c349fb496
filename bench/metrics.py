"""
The measurements: each drives one running server with load clients in their own
processes and returns one L{Sample}, with the server's and the clients' CPU use
so that a reader can see which side was saturated.  Before each, a warm-up has
the server (every worker of it) complete connections that move data and close,
so that no server is measured cold.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.certs import CertFiles
from bench.procs import BenchError, ClientProcess, ServerProcess

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does; L{FULL} is what the issue asks for."""

    bulk_total: int = 64 * MiB
    bulk_chunk: int = 64 * KiB
    bulk_repeat: int = 5
    handshake_clients: int = 4
    handshake_seconds: float = 5.0
    pingpong_connections: int = 50
    pingpong_clients: int = 2
    pingpong_size: int = 64
    pingpong_warmup: float = 1.0
    pingpong_seconds: float = 5.0
    idle_connections: int = 2000
    flood_total: int = 256 * MiB
    flood_stall: float = 2.0
    warmup_connections: int = 8
    warmup_seconds: float = 0.3
    warmup_bulk: int = 8 * MiB


FULL = Sizes()
QUICK = Sizes(
    bulk_total=4 * MiB,
    bulk_repeat=1,
    handshake_seconds=0.5,
    pingpong_connections=10,
    pingpong_warmup=0.2,
    pingpong_seconds=0.5,
    idle_connections=50,
    flood_total=8 * MiB,
    flood_stall=0.5,
    warmup_seconds=0.1,
    warmup_bulk=2 * MiB,
)
#: How many times a warm-up step is repeated, at most, until every worker of
#: a server has served one of its connections.
WARMUP_ATTEMPTS = 10
#: Seconds to wait after a warm-up, for the server to finish closing its
#: connections (and for a worker's log line to reach its main process).
SETTLE = 0.3


@dataclass
class Sample:
    """
    One measurement of one metric on one server.

    @ivar value: In the metric's unit.
    @ivar server_cpu: CPU the server used in the window, in cores (1.0: one full core).
    @ivar client_cpu: CPU all load clients used in the window, in cores.
    @ivar server_cpu_per_op: CPU the server used per operation counted in the
        same window, in the metric's L{Metric.per_op} unit (microseconds per
        handshake, per round trip, per MB echoed); L{None} for metrics that
        count no operations.
    @ivar detail: Anything else worth keeping (counts, errors, bytes sent).
    @ivar warmup: What the warm-up before it did (L{Metric.warm}): the
        C{connections} made and the C{bytes} echoed, and for a server with
        workers, C{workers_echoed} (worker number -> bytes); L{None} if there
        was none.
    """

    value: float
    server_cpu: float | None = None
    client_cpu: float | None = None
    server_cpu_per_op: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    warmup: dict[str, Any] | None = None


@dataclass(frozen=True)
class Metric:
    """
    What is measured: the name, the unit, which way is better, and how.

    @ivar fresh_server: Whether it needs a server of its own (a server that has
        just been flooded is no baseline for anything).
    @ivar per_op: The unit of the server's CPU per operation
        (L{Sample.server_cpu_per_op}), for metrics that count operations;
        lower is better.  L{None} for the others.
    @ivar warm: Run just before L{measure} on the same server: connections
        that move data and close, until every worker has served one; returns
        what it did (L{Sample.warmup}).
    """

    name: str
    unit: str
    higher_is_better: bool
    measure: Callable[[ServerProcess, CertFiles, Sizes], Sample]
    warm: Callable[[ServerProcess, CertFiles, Sizes], dict[str, Any]]
    fresh_server: bool = False
    per_op: str | None = None


def _microseconds_per(cpu_seconds: float, operations: float) -> float | None:
    """
    Server CPU seconds spread over C{operations}, in microseconds each; L{None}
    if there were none, or if the server's CPU time did not move (the kernel
    counts it in clock ticks, 10 ms here, too coarse for the shortest windows
    of C{--quick}).
    """
    return cpu_seconds * 1e6 / operations if operations > 0 and cpu_seconds > 0 else None


def _client_arguments(server: ServerProcess, certs: CertFiles | None) -> list[str]:
    arguments = ["--port", str(server.port)]
    if certs is not None:
        arguments += ["--ca", str(certs.ca)]
    return arguments


def _warm_every_worker(
    server: ServerProcess, step: Callable[[], Mapping[str, int]]
) -> dict[str, Any]:
    """
    Run the warm-up C{step} (a load client whose connections move data and
    close; it returns their C{connections} and the C{bytes} echoed) once, or,
    for a server with workers, until each worker has echoed data on one of
    them, as their log lines say; then let the server settle.  Return the
    connections and bytes of every step together, and what each worker echoed.

    @raise BenchError: if a worker served none in L{WARMUP_ATTEMPTS} steps.
    """
    since = len(server.output())
    connections = echoed = 0
    answered: dict[int, int] = {}
    for _ in range(WARMUP_ATTEMPTS):
        done = step()
        connections += done["connections"]
        echoed += done["bytes"]
        if server.workers <= 1:
            break
        deadline = time.monotonic() + 1.0
        while True:
            answered = {w: n for w, n in server.workers_echoed(since).items() if n}
            if len(answered) >= server.workers or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if len(answered) >= server.workers:
            break
    else:
        raise BenchError(
            f"warm-up: only workers {sorted(answered)} of {server.workers} served "
            f"a connection in {connections} connections"
        )
    time.sleep(SETTLE)
    record: dict[str, Any] = {"connections": connections, "bytes": echoed}
    if server.workers > 1:
        record["workers_echoed"] = {str(w): n for w, n in sorted(answered.items())}
    return record


def warm_echoes(server: ServerProcess, certs: CertFiles, sizes: Sizes) -> dict[str, Any]:
    """
    Warm-up for handshakes and ping-pong: C{warmup_connections} connections
    (handshake, then ping-pong of C{pingpong_size} messages for
    C{warmup_seconds}, then close), until every worker served one.
    """

    def step() -> dict[str, int]:
        result = ClientProcess(
            "pingpong",
            [
                *_client_arguments(server, certs),
                "--connections",
                str(sizes.warmup_connections),
                "--size",
                str(sizes.pingpong_size),
                "--warmup",
                "0",
                "--duration",
                str(sizes.warmup_seconds),
            ],
        ).result(timeout=120)
        if not result["count"]:
            raise BenchError("warm-up: no echo came back")
        return {
            "connections": sizes.warmup_connections,
            "bytes": result["count"] * sizes.pingpong_size,
        }

    return _warm_every_worker(server, step)


def warm_bulk(server: ServerProcess, certs: CertFiles, sizes: Sizes) -> dict[str, Any]:
    """
    Warm-up for bulk: one connection echoing C{warmup_bulk} bytes in
    C{bulk_chunk} writes (so the large-buffer paths have run), until every
    worker served one.
    """

    def step() -> dict[str, int]:
        result = ClientProcess(
            "bulk",
            [
                *_client_arguments(server, certs),
                "--total",
                str(sizes.warmup_bulk),
                "--chunk",
                str(sizes.bulk_chunk),
            ],
        ).result(timeout=120)
        return {"connections": 1, "bytes": result["bytes"]}

    return _warm_every_worker(server, step)


def warm_idle(
    count: int,
) -> Callable[[ServerProcess, CertFiles, Sizes], dict[str, Any]]:
    """
    Warm-up for the memory figures: C{count} connections that each complete
    the handshake and echo one byte, then close (no more, so as not to grow
    the heap the figure starts from).
    """

    def warm(server: ServerProcess, certs: CertFiles, sizes: Sizes) -> dict[str, Any]:
        def step() -> dict[str, int]:
            held, _ = _hold(server, certs, count)
            _release(held)
            return {"connections": count, "bytes": count}

        return _warm_every_worker(server, step)

    return warm


def bulk(server: ServerProcess, certs: CertFiles, sizes: Sizes) -> Sample:
    """
    One connection echoing C{bulk_total} bytes in C{bulk_chunk} writes: MB/s
    (the median of C{bulk_repeat} connections, one after another).
    """
    cpu = server.cpu_seconds()
    client = ClientProcess(
        "bulk",
        [
            *_client_arguments(server, certs),
            "--total",
            str(sizes.bulk_total),
            "--chunk",
            str(sizes.bulk_chunk),
            "--repeat",
            str(sizes.bulk_repeat),
        ],
    )
    result = client.result(timeout=600)
    cpu = server.cpu_seconds() - cpu
    seconds = result["seconds"]
    # The server's CPU is sampled around all the transfers: divide by their
    # total time (at the median rate) to get cores, and by every byte echoed
    # in them (received and sent back once each) to get CPU per MB.
    echoed = sizes.bulk_total * len(result["rates"])
    busy = echoed / result["rate"]
    return Sample(
        value=result["rate"] / 1e6,
        server_cpu=cpu / busy,
        client_cpu=result["cpu_seconds"] / seconds,
        server_cpu_per_op=_microseconds_per(cpu, echoed / 1e6),
        detail={
            "bytes": result["bytes"],
            "echoed_bytes": echoed,
            "server_cpu_seconds": cpu,
            "seconds": seconds,
            "rates_mb_s": [r / 1e6 for r in result["rates"]],
        },
    )


def _windowed(
    server: ServerProcess, clients: list[ClientProcess], warmup: float, seconds: float
) -> tuple[list[dict[str, Any]], float, float, dict[str, float]]:
    """
    Wait until every client (started with C{--go}) is ready, start them all at
    once, and sample the server's CPU over [C{warmup}, C{warmup} + C{seconds}]
    after the go while they run, which is the window each client counts in.
    Return their results, the server's CPU in cores and in seconds over the
    window, and how far the clients' own windows (as they report them) were
    from the bench's.
    """
    try:
        for client in clients:
            if client.read_line(timeout=120) != "ready":
                raise BenchError(f"client {client.name} did not get ready")
        for client in clients:
            client.send_line("go")
        time.sleep(warmup)
        began = time.time()
        cpu = server.cpu_seconds()
        time.sleep(seconds)
        cpu = server.cpu_seconds() - cpu
        ended = time.time()
        results = [c.result(timeout=120) for c in clients]
    finally:
        for client in clients:
            client.stop()
    skew = max(
        max(abs(r["window"][0] - began), abs(r["window"][1] - ended)) for r in results
    )
    return results, cpu / (ended - began), cpu, {"window_skew_seconds": skew}


def handshakes(server: ServerProcess, certs: CertFiles, sizes: Sizes) -> Sample:
    """
    Full TLS 1.3 handshakes per second (each with a one-byte echo), from
    C{handshake_clients} processes at once.
    """
    clients = [
        ClientProcess(
            "handshake",
            [
                *_client_arguments(server, None),
                "--go",
                "--duration",
                str(sizes.handshake_seconds),
            ],
            interactive=True,
        )
        for _ in range(sizes.handshake_clients)
    ]
    results, server_cpu, cpu_seconds, window = _windowed(
        server, clients, 0.0, sizes.handshake_seconds
    )
    seconds = sizes.handshake_seconds
    errors = sum(r["errors"] for r in results)
    count = sum(r["count"] for r in results)
    if not count:
        raise BenchError(
            f"no handshake completed ({errors} errors, such as {results[0]['error']})"
        )
    return Sample(
        value=sum(r["rate"] for r in results),
        server_cpu=server_cpu,
        client_cpu=sum(r["cpu_seconds"] for r in results) / seconds,
        server_cpu_per_op=_microseconds_per(cpu_seconds, count),
        detail={
            "count": count,
            "server_cpu_seconds": cpu_seconds,
            **window,
            "errors": errors,
            "clients": len(results),
        },
    )


def pingpong(server: ServerProcess, certs: CertFiles, sizes: Sizes) -> Sample:
    """
    C{pingpong_connections} connections, one small message in flight on each:
    round trips per second.
    """
    per_client = [
        sizes.pingpong_connections // sizes.pingpong_clients
        + (1 if i < sizes.pingpong_connections % sizes.pingpong_clients else 0)
        for i in range(sizes.pingpong_clients)
    ]
    clients = [
        ClientProcess(
            "pingpong",
            [
                *_client_arguments(server, certs),
                "--connections",
                str(count),
                "--size",
                str(sizes.pingpong_size),
                "--go",
                "--warmup",
                str(sizes.pingpong_warmup),
                "--duration",
                str(sizes.pingpong_seconds),
            ],
            interactive=True,
        )
        for count in per_client
        if count
    ]
    results, server_cpu, cpu_seconds, window = _windowed(
        server, clients, sizes.pingpong_warmup, sizes.pingpong_seconds
    )
    count = sum(r["count"] for r in results)
    return Sample(
        value=sum(r["rate"] for r in results),
        server_cpu=server_cpu,
        client_cpu=sum(r["cpu_seconds"] / r["seconds"] for r in results),
        server_cpu_per_op=_microseconds_per(cpu_seconds, count),
        detail={"count": count, "server_cpu_seconds": cpu_seconds, **window},
    )


def _hold(
    server: ServerProcess, certs: CertFiles, count: int
) -> tuple[ClientProcess, float]:
    """Open C{count} idle connections; return the client holding them and the time taken."""
    client = ClientProcess(
        "idle",
        [*_client_arguments(server, certs), "--connections", str(count)],
        interactive=True,
    )
    started = time.monotonic()
    if client.read_line(timeout=120) != "ready":
        client.stop()
        raise BenchError("idle client did not get ready")
    return client, time.monotonic() - started


def _release(client: ClientProcess) -> dict[str, Any]:
    """Let the idle client close its connections (its stdin closes) and finish."""
    return client.result(timeout=60)


def memory(server: ServerProcess, certs: CertFiles, sizes: Sizes) -> Sample:
    """
    Server memory per idle established connection, in KiB, with
    C{idle_connections} open (after L{warm_idle}).
    """
    before = server.memory()
    client, _ = _hold(server, certs, sizes.idle_connections)
    time.sleep(1.0)  # let the server settle
    after = server.memory()
    result = _release(client)
    return Sample(
        value=(after - before) / sizes.idle_connections / KiB,
        client_cpu=None,
        detail={
            "connections": sizes.idle_connections,
            "before_bytes": before,
            "after_bytes": after,
            "open_seconds": result["seconds"],
        },
    )


def backpressure(server: ServerProcess, certs: CertFiles, sizes: Sizes) -> Sample:
    """
    Growth of server memory, in MiB, while one client offers C{flood_total}
    bytes and never reads (peak during the flood less the memory before it),
    after L{warm_idle}.
    """
    before = server.memory()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                peak = max(peak, server.memory())
            except Exception:
                return
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu = server.cpu_seconds()
    try:
        result = ClientProcess(
            "flood",
            [
                *_client_arguments(server, certs),
                "--total",
                str(sizes.flood_total),
                "--stall",
                str(sizes.flood_stall),
            ],
        ).result(timeout=300)
    finally:
        done.set()
        sampler.join()
    peak = max(peak, server.memory())
    return Sample(
        value=(peak - before) / MiB,
        server_cpu=(server.cpu_seconds() - cpu) / result["seconds"],
        client_cpu=result["cpu_seconds"] / result["seconds"],
        detail={
            "sent_bytes": result["sent"],
            "stalled": result["stalled"],
            "before_bytes": before,
            "peak_bytes": peak,
        },
    )


#: Every metric, in the order they run on one server.
METRICS: tuple[Metric, ...] = (
    Metric("memory", "KiB/conn", higher_is_better=False, measure=memory, warm=warm_idle(8)),
    Metric(
        "handshakes",
        "hs/s",
        higher_is_better=True,
        measure=handshakes,
        warm=warm_echoes,
        per_op="µs/hs",
    ),
    Metric(
        "pingpong",
        "rt/s",
        higher_is_better=True,
        measure=pingpong,
        warm=warm_echoes,
        per_op="µs/rt",
    ),
    Metric(
        "bulk",
        "MB/s",
        higher_is_better=True,
        measure=bulk,
        warm=warm_bulk,
        per_op="µs/MB",
    ),
    Metric(
        "backpressure",
        "MiB",
        higher_is_better=False,
        measure=backpressure,
        warm=warm_idle(4),
        fresh_server=True,
    ),
)
