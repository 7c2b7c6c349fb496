"""
JSON lines logs (C{--log-format json}) for the twistd and twist runners, and
the relay of a worker's log events to its main process (C{--workers}).

Each log event becomes one flat JSON object per line, in the schema of
L{tlsecho._app._log_schema}: time, level, event name, message and, for a
connection, its fields.  The text log (the default, under twistd and twist
alike) is Twisted's classic lines, written by L{tlsecho._app._textlog}.

A connection's event carries its message formatted already (L{MESSAGE}), so
neither log formats it again.

A worker writes Twisted's own JSON (every field, with the level and failure
objects) for its main process to read back as events (L{LogRelay}); that is
internal, never what a user reads.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, cast

from twisted.logger import (
    ILogObserver,
    LogEvent,
    Logger,
    eventFromJSON,
    formatEvent,
    globalLogPublisher,
    jsonFileLogObserver,
)

from .._net._connlog import MESSAGE
from .._settings._text import printable
from ._log_schema import json_line
from ._textlog import TWISTD_TEXT, text_observer, twistd_text_observer, use_twistd_text

__all__ = [
    "RELAYED_TEXT",
    "LogRelay",
    "json_event",
    "json_lines_observer",
    "json_stdout_observer",
    "logs_to_standard_streams",
    "relay_logs_to_main_process",
    "use_log_format",
]


def json_event(event: LogEvent) -> str:
    """
    C{event} as one line of JSON in tlsecho's schema (without the newline).
    """
    failure = event.get("log_failure")
    traceback = None
    if failure is not None:
        try:
            traceback = failure.getTraceback()
        except Exception:
            traceback = repr(failure)
    return json_line(
        event,
        seconds=event.get("log_time") or time.time(),
        level=str(getattr(event.get("log_level"), "name", "info")),
        message=_message(event),
        traceback=traceback,
    )


def _message(event: LogEvent) -> str:
    """
    C{event}'s message: what L{formatEvent} makes of it, formatted already or not.
    """
    message = event.get(MESSAGE)
    return message if type(message) is str else formatEvent(event)


def json_lines_observer(out: IO[Any]) -> ILogObserver:
    """
    An observer writing each event to C{out} as one line of JSON (for C{twist}).
    """

    def observe(event: LogEvent) -> None:
        out.write(json_event(event) + "\n")
        out.flush()

    return cast(ILogObserver, observe)


def json_stdout_observer() -> ILogObserver:
    """
    An observer writing JSON lines to standard output (for C{twistd --logger}).
    """
    out = sys.__stdout__
    assert out is not None
    return json_lines_observer(out)


def use_log_format(runner_options: Any, log_format: str) -> None:
    """
    Make the runner (twistd or twist) whose options these are log in
    C{log_format} (C{"text"} or C{"json"}), unless twistd's own C{--logger}
    already chose an observer.  Text is Twisted's classic lines, as the
    runners write them, written by L{tlsecho._app._textlog}.
    """
    if "fileLogObserverFactory" in runner_options or "logFormat" in runner_options:
        # twist: its own --log-format (whose default is JSON when standard
        # output is not a terminal) has no say over our subcommand's flag.
        runner_options["fileLogObserverFactory"] = (
            json_lines_observer if log_format == "json" else text_observer
        )
        runner_options["logFormat"] = log_format
    elif runner_options.get("logger") is None:
        # twistd: an observer factory named like --logger would.
        if log_format == "json":
            runner_options["logger"] = f"{__name__}.json_stdout_observer"
        else:
            use_twistd_text(runner_options)


def logs_to_standard_streams(runner_options: Any) -> bool:
    """
    Whether the runner (twistd or twist) whose options these are writes its
    log to standard output or standard error: C{twistd -n} without
    C{--logfile} or C{--syslog}, C{twist} without C{--log-file FILE}, and
    tlsecho's own JSON observer.  A C{--logger} of one's own may write
    anywhere: not counted.  tlsecho's twistd text observer writes where
    twistd's default would.
    """
    if "logFile" in runner_options:  # twist
        return runner_options["logFile"] in (
            sys.stdout,
            sys.stderr,
            sys.__stdout__,
            sys.__stderr__,
        )
    logger = runner_options.get("logger")
    if logger is not None and logger not in (twistd_text_observer, TWISTD_TEXT):
        return logger in (json_stdout_observer, f"{__name__}.json_stdout_observer")
    if runner_options.get("syslog"):
        return False
    logfile = runner_options.get("logfile")
    return logfile == "-" or (not logfile and bool(runner_options.get("nodaemon")))


#: The most of one unfinished line of a worker's output held in the main
#: process.
MAX_HELD = 1 << 20

#: The field a worker adds to each event: its message, formatted where the
#: values are (a JSON round trip loses format specs such as C{{duration:.3f}}),
#: unless the event has it already (a connection's, L{MESSAGE}).
RELAYED_TEXT = MESSAGE
#: The format of a relayed event: its message, formatted in the worker.
_RELAYED = "{" + RELAYED_TEXT + "}"


def relay_logs_to_main_process(runner_options: Any) -> None:
    """
    In a worker (run by C{twist}): write every event as Twisted's JSON, with
    its formatted message, for the main process to read back and log as its
    own.
    """

    def observer_factory(out: IO[Any]) -> ILogObserver:
        json_observer = jsonFileLogObserver(out)

        def observe(event: LogEvent) -> None:
            # The main process formats the message as "{tlsecho_text}" (and
            # so does Twisted's JSON, flattening the event: cheap that way).
            json_observer({**event, RELAYED_TEXT: _message(event), "log_format": _RELAYED})

        return cast(ILogObserver, observe)

    runner_options["fileLogObserverFactory"] = observer_factory


class LogRelay:
    """
    In the main process: one worker's output, published as the main
    process's own log events, marked with the worker's number.

    The worker writes its events with L{relay_logs_to_main_process} to its
    standard output; anything else (on standard error, or not JSON) is
    logged as an error line naming the worker.
    """

    def __init__(self, number: int, publish: ILogObserver | None = None):
        """
        @param number: The worker's number.
        @param publish: Where the events go; the global log publisher by default.
        """
        self.number = number
        self._publish = publish if publish is not None else globalLogPublisher
        self._log = Logger(observer=self._publish)
        self._events = b""
        self._errors = b""

    def events_received(self, data: bytes) -> None:
        """
        Publish every complete event in C{data} (the worker's standard output).
        """
        # jsonFileLogObserver: a record separator, one JSON object, a newline.
        records, self._events = self._lines(self._events, data)
        for record in records:
            text = record.lstrip(b"\x1e").decode("utf-8", "replace")
            if not text.strip():
                continue
            try:
                event = eventFromJSON(text)
            except ValueError:
                self._error_line(text)
                continue
            if RELAYED_TEXT in event:
                # Formatted in the worker, where the values were.
                event["log_format"] = _RELAYED
                event.pop("log_flattened", None)
            event["worker"] = self.number
            event["log_system"] = f"worker {self.number}"
            self._publish(event)

    def errors_received(self, data: bytes) -> None:
        """
        Log every complete line in C{data} (the worker's standard error).
        """
        lines, self._errors = self._lines(self._errors, data)
        for line in lines:
            self._error_line(line.decode("utf-8", "replace"))

    def flush(self) -> None:
        """
        The worker has ended: log what is left of its output as error lines.
        """
        for line in (self._events, self._errors):
            self._error_line(line.decode("utf-8", "replace"))
        self._events = self._errors = b""

    def _lines(self, held: bytes, data: bytes) -> tuple[list[bytes], bytes]:
        """
        The complete lines of C{held + data}, and what is left to hold; a part
        line held past L{MAX_HELD} bytes is let go as an error line (cut).
        """
        *lines, rest = (held + data).split(b"\n")
        if len(rest) > MAX_HELD:
            self._error_line(rest.decode("utf-8", "replace"))
            rest = b""
        return lines, rest

    def _error_line(self, line: str) -> None:
        if line.strip():
            self._log.error(
                "worker {worker}: {line}",
                worker=self.number,
                line=printable(line, 1000),  # a traceback may quote a peer
                event="worker.output",
            )
