"""
The text log (C{--log-format text}, the default) for the twistd and twist
runners: Twisted's classic lines (C{TIME [NAMESPACE#LEVEL] MESSAGE}, as
L{twisted.logger.textFileLogObserver} writes them), with two shortcuts for the
line every connection logs.

  - An event carrying its message formatted already (L{MESSAGE}: a
    connection's, or a worker's relayed event) is written as it is, without
    formatting it again through L{twisted.logger.formatEvent} (a
    L{string.Formatter} parse in Python, the most part of the cost).
  - The timestamp (to the second) is formatted once per second, not per line.

Every other event (Twisted's own, a traceback) goes through Twisted's
formatter; either way the line is the same, to the byte.
"""

from __future__ import annotations

from typing import IO, Any

from twisted.logger import (
    FileLogObserver,
    ILogObserver,
    LogEvent,
    formatEventAsClassicLogText,
    formatTime,
    timeFormatRFC3339,
)

from .._net._connlog import MESSAGE

__all__ = [
    "TWISTD_TEXT",
    "ClassicText",
    "SecondClock",
    "classic_text",
    "text_observer",
    "twistd_text_observer",
    "use_twistd_text",
]


class SecondClock:
    """
    L{formatTime} in a format whose finest unit is the second (twistd's and
    twist's), with the last second's text kept: a server logs many lines a
    second.
    """

    def __init__(self, time_format: str = timeFormatRFC3339):
        self._format = time_format
        self._second = -1
        self._text = ""

    def __call__(self, when: float | None) -> str:
        """
        C{when} (Unix time) as L{formatTime} writes it.
        """
        if type(when) is not float:
            return formatTime(when, self._format)
        second = int(when)
        # Away from the second's end, where rounding to microseconds (as
        # formatTime's datetime does) could carry it to the next one.
        if 0.0 <= when - second < 0.999:
            if second != self._second:
                self._text = formatTime(when, self._format)
                self._second = second
            return self._text
        return formatTime(when, self._format)


class ClassicText:
    """
    L{formatEventAsClassicLogText}, with the shortcuts above.
    """

    def __init__(self) -> None:
        self._time = SecondClock()

    def __call__(self, event: LogEvent) -> str | None:
        """
        C{event} as one line of text (with its newline; a multi-line message
        continues on lines that start with a tab), or L{None} if it has no text.
        """
        message = event.get(MESSAGE)
        system = event.get("log_system")
        if (
            type(message) is not str
            or not message
            or "log_failure" in event
            or (system is not None and type(system) is not str)
        ):
            return formatEventAsClassicLogText(event, formatTime=self._time)
        if system is None:
            level = event.get("log_level")
            level_name = "-" if level is None else level.name
            system = f"{event.get('log_namespace', '-')}#{level_name}"
        line = f"{self._time(event.get('log_time'))} [{system}] {message}"
        return line.replace("\n", "\n\t") + "\n"


def classic_text() -> ClassicText:
    """
    A formatter of events as classic text lines, for a L{FileLogObserver}.
    """
    return ClassicText()


def text_observer(out: IO[Any]) -> FileLogObserver:
    """
    An observer writing text lines to C{out}: L{twisted.logger.textFileLogObserver}'s
    lines, written faster (for C{twist}).
    """
    return FileLogObserver(out, classic_text())


#: The options of the twistd run whose text observer tlsecho makes (one run
#: per process).
_twistd_options: list[Any] = []
#: The name twistd imports L{twistd_text_observer} by (C{--logger}).
TWISTD_TEXT = f"{__name__}.twistd_text_observer"


def use_twistd_text(runner_options: Any) -> None:
    """
    Make twistd, whose options these are, log text with L{classic_text}.

    twistd's observer factory (C{--logger}) is a name it imports, called with
    no arguments; the options are kept here for it to read.
    """
    _twistd_options[:] = [runner_options]
    runner_options["logger"] = TWISTD_TEXT


def twistd_text_observer() -> ILogObserver:
    """
    The observer twistd makes when no C{--logger} is given (standard output,
    C{--logfile} with its rotation on SIGUSR1, or C{--syslog}), its text lines
    formatted by L{classic_text}.
    """
    # twistd's own logger class, which reads these options.
    from twisted.scripts._twistd_unix import UnixAppLogger

    observer: ILogObserver = UnixAppLogger(_twistd_options[-1])._getLogObserver()
    if isinstance(observer, FileLogObserver):
        observer.formatEvent = classic_text()
    return observer
