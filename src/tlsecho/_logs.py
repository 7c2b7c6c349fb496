"""
JSON lines logs (C{--log-format json}) for the twistd and twist runners.

Each log event becomes one JSON object per line, with all its fields: for a
connection, the peer, TLS version, cipher, SNI, ALPN, client identity, byte
counts, duration and the reason it ended.  Twisted's own JSON observer writes
RFC 7464 JSON text sequences (a record separator before each object); these
observers write plain JSON lines, which is what log shippers expect.
"""

from __future__ import annotations

import sys
from typing import IO, Any, cast

from twisted.logger import ILogObserver, LogEvent, formatEvent, jsonFileLogObserver

__all__ = [
    "RELAYED_TEXT",
    "json_lines_observer",
    "json_stdout_observer",
    "relay_logs_to_main_process",
    "use_json_logs",
]


def json_lines_observer(out: IO[Any]) -> ILogObserver:
    """
    An observer writing each event to C{out} as one line of JSON (for C{twist}).
    """
    return jsonFileLogObserver(out, recordSeparator="")


def json_stdout_observer() -> ILogObserver:
    """
    An observer writing JSON lines to standard output (for C{twistd --logger}).
    """
    out = sys.__stdout__
    assert out is not None
    return json_lines_observer(out)


def use_json_logs(runner_options: Any) -> None:
    """
    Make the runner (twistd or twist) whose options these are log JSON lines,
    unless its own logging option already chose an observer.
    """
    if "fileLogObserverFactory" in runner_options or "logFormat" in runner_options:
        # twist: its --log-format has no say over our subcommand's flag, so
        # set the observer factory it uses.
        runner_options["fileLogObserverFactory"] = json_lines_observer
    elif runner_options.get("logger") is None:
        # twistd: an observer factory named like --logger would.
        runner_options["logger"] = f"{__name__}.json_stdout_observer"


#: The field a worker adds to each event: its message, formatted where the
#: values are (a JSON round trip loses format specs such as C{{duration:.3f}}).
RELAYED_TEXT = "tlsecho_text"


def relay_logs_to_main_process(runner_options: Any) -> None:
    """
    In a worker (run by C{twist}): write every event as Twisted's JSON, with
    its formatted message, for the main process to read back and log as its
    own.
    """

    def observer_factory(out: IO[Any]) -> ILogObserver:
        json_observer = jsonFileLogObserver(out)

        def observe(event: LogEvent) -> None:
            json_observer({**event, RELAYED_TEXT: formatEvent(event)})

        return cast(ILogObserver, observe)

    runner_options["fileLogObserverFactory"] = observer_factory
