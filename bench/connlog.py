"""
What one connection's log line costs: C{python -m bench.connlog [EVENTS]}.

Each connection that ends logs one event (L{EchoServerProtocol._log_ended}).
This emits C{EVENTS} of them (50,000 by default) through the observers the
runners really install: the runner's own options are parsed with the tlsecho
subcommand, as C{twistd -n tlsecho} and C{twist tlsecho} do, and the observer
they choose is built from them (twist's wrapped in its level filter).  Standard
output is C{/dev/null} meanwhile, so every line is written and flushed for real.
A worker's relay (C{--workers}) is measured too: the observer a worker writes
its events to its main process with.

It prints microseconds of CPU per event (the best of five rounds: the machine
may be shared, and noise only ever adds), the whole path: the protocol's
logger, the global log publisher, the observer, the write.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from twisted.application.twist._options import TwistOptions
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevelFilterPredicate,
    globalLogBeginner,
    globalLogPublisher,
)
from twisted.scripts._twistd_unix import ServerOptions, UnixAppLogger

from tlsecho._app._logs import relay_logs_to_main_process
from tlsecho._net._connlog import Ending, connection_fields
from tlsecho._net._echoserver import EchoServerProtocol

#: A typical connection that ended well.
FIELDS = connection_fields(
    Ending(handshake_done=True),
    peer="203.0.113.7:51234",
    via=None,
    bytes_in=1024,
    bytes_out=1024,
    duration=0.0421,
    handshake_seconds=0.0012,
    alpn=None,
    client=None,
    summary={
        "tls_version": "TLSv1.3",
        "cipher": "TLS_AES_256_GCM_SHA384",
        "group": "X25519",
        "sni": "echo.example",
    },
)


def twistd_observer(log_format: str) -> ILogObserver:
    """
    The observer C{twistd -n tlsecho --log-format FORMAT} logs to.
    """
    config = ServerOptions()
    config.parseOptions(["-n", "--pidfile=", "tlsecho", "--log-format", log_format])
    factory = config["logger"]
    if factory is not None:
        return factory()  # type: ignore[no-any-return]
    return UnixAppLogger(config)._getLogObserver()  # type: ignore[no-any-return]


def twist_observer(log_format: str) -> ILogObserver:
    """
    The observer C{twist --log-format=text tlsecho --log-format FORMAT} logs to.
    """
    options = TwistOptions()
    options.parseOptions(["--log-format=text", "tlsecho", "--log-format", log_format])
    file_observer = options["fileLogObserverFactory"](sys.stdout)
    level = LogLevelFilterPredicate(defaultLogLevel=options["logLevel"])
    return FilteringLogObserver(file_observer, [level])


def worker_observer() -> ILogObserver:
    """
    The observer a worker (C{--workers}) relays its events to its main process with.
    """
    options: dict[str, Any] = {}
    relay_logs_to_main_process(options)
    return options["fileLogObserverFactory"](sys.stdout)  # type: ignore[no-any-return]


#: What is measured: a name and how to build its observer.
OBSERVERS: dict[str, Callable[[], ILogObserver]] = {
    "twistd text": lambda: twistd_observer("text"),
    "twistd json": lambda: twistd_observer("json"),
    "twist text": lambda: twist_observer("text"),
    "twist json": lambda: twist_observer("json"),
    "worker relay": worker_observer,
}

#: Rounds the events are shared in; the best round counts.
ROUNDS = 5


@contextmanager
def stdout_to_null() -> Iterator[None]:
    """
    File descriptor 1 (what C{sys.stdout} writes to) goes to C{/dev/null}.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(null)
        os.close(saved)


def per_event(observer: ILogObserver, events: int, rounds: int = ROUNDS) -> float:
    """
    Microseconds of CPU (this process's) per connection event logged through
    C{observer}: the best of C{rounds} rounds sharing C{events}.
    """
    protocol = EchoServerProtocol()
    each = max(1, events // rounds)
    best = float("inf")
    globalLogPublisher.addObserver(observer)
    try:
        for _ in range(min(each, 1000)):  # warm
            protocol._log_ended(FIELDS)
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(each):
                protocol._log_ended(FIELDS)
            best = min(best, (time.process_time() - started) / each * 1e6)
        return best
    finally:
        globalLogPublisher.removeObserver(observer)


def main(arguments: list[str]) -> None:
    events = int(arguments[0]) if arguments else 50_000
    # As the runners do: the start-up buffer goes; nothing else observes.
    globalLogBeginner.beginLoggingTo([], discardBuffer=True, redirectStandardIO=False)
    results = {}
    with stdout_to_null():
        for name, make in OBSERVERS.items():
            results[name] = per_event(make(), events)
    print(f"{events} connection events, µs of CPU per event (best of {ROUNDS} rounds):")
    for name, micros in results.items():
        print(f"  {name:13} {micros:6.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
