"""
Tests for the cheap connection log line (L{tlsecho._app._textlog}, and the
message a connection's event carries): what tlsecho's observers write is, to
the byte, what Twisted's own formatters write for the same event, in text and
in JSON, escaping included, for the twistd and twist runners and through a
worker's relay.  Twisted's rendering is the reference, so these fail if the
shortcut drifts from it.
"""

from __future__ import annotations

import datetime
import io
import random
from pathlib import Path
from typing import Any

import pytest
from twisted.application.twist._options import TwistOptions
from twisted.logger import (
    FileLogObserver,
    LogEvent,
    Logger,
    LogLevel,
    formatEvent,
    formatTime,
    textFileLogObserver,
)
from twisted.python.failure import Failure
from twisted.scripts._twistd_unix import ServerOptions

from tlsecho._app import _log_schema
from tlsecho._app._logs import (
    LogRelay,
    json_event,
    json_stdout_observer,
    logs_to_standard_streams,
    relay_logs_to_main_process,
)
from tlsecho._app._textlog import (
    ClassicText,
    SecondClock,
    text_observer,
    twistd_text_observer,
)
from tlsecho._net._connlog import MESSAGE, Ending, connection_fields
from tlsecho._net._echoserver import EchoServerProtocol
from tlsecho._settings._text import printable

#: What a client chooses, as the connection's description escapes it.
HOSTILE = printable("evil\x1b[31m{peer}\n\r\t\u202e.example\udcff" + "x" * 400)

SUMMARY = {
    "tls_version": "TLSv1.3",
    "cipher": "TLS_AES_256_GCM_SHA384",
    "group": "X25519",
    "sni": "echo.example",
}


def _fields(ending: Ending, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "peer": "203.0.113.7:51234",
        "via": None,
        "bytes_in": 6,
        "bytes_out": 6,
        "duration": 0.04213,
        "handshake_seconds": 0.0012,
        "alpn": None,
        "client": None,
        "summary": SUMMARY,
    }
    values.update(overrides)
    return connection_fields(ending, **values)


#: Connections as they end: well, failing, with unsent bytes, and with
#: whatever a client could put in the fields it chooses.
ENDINGS = {
    "closed": _fields(Ending(handshake_done=True)),
    "unsent": _fields(Ending(handshake_done=True), bytes_out=2),
    "failed": _fields(Ending(handshake_done=False, failure="unknown CA", tls_failure=True)),
    "proxy": _fields(Ending(handshake_done=False, header_error=HOSTILE), via="[::1]:9"),
    "hostile": _fields(
        Ending(handshake_done=True, failure=HOSTILE, tls_failure=True),
        peer=printable("unix:\x07{0}"),
        alpn=HOSTILE,
        client=HOSTILE,
        summary={**SUMMARY, "sni": HOSTILE, "cipher": None},
    ),
}


def _connection_event(fields: dict[str, Any]) -> LogEvent:
    """The event the echo protocol logs for a connection that ended with C{fields}."""
    events: list[LogEvent] = []
    protocol = EchoServerProtocol()
    protocol.log = Logger(
        namespace="tlsecho._net._echoserver.EchoServerProtocol", observer=events.append
    )
    protocol._log_ended(fields)
    (event,) = events
    return event


def _written(make: Any, event: LogEvent) -> str:
    out = io.StringIO()
    make(out)(event)
    return out.getvalue()


@pytest.mark.parametrize("name", ENDINGS)
def test_connection_line_is_twisteds(name: str) -> None:
    """A connection's text line is what Twisted's text observer writes for it,
    which formats the event's format and fields (not the message it carries)."""
    event = _connection_event(ENDINGS[name])
    assert event[MESSAGE] == formatEvent(event)
    ours = _written(text_observer, event)
    assert ours == _written(textFileLogObserver, event)
    assert ours.count("\n") == 1
    assert ours[:-1].isprintable()


@pytest.mark.parametrize("name", ENDINGS)
def test_connection_json_is_formatted_events(name: str) -> None:
    """A connection's JSON line is the one its formatted event makes."""
    event = _connection_event(ENDINGS[name])
    formatted = {key: value for key, value in event.items() if key != MESSAGE}
    assert json_event(event) == json_event(formatted)


def test_hostile_text_stays_escaped() -> None:
    """What a client chose is escaped in both lines: no control character, no
    second line, and braces are text, not fields."""
    event = _connection_event(ENDINGS["hostile"])
    line = _written(text_observer, event)
    for control in ("\x1b", "\r", "\u202e", "\udcff"):
        assert control not in line
    assert "\\x1b[31m{peer}" in line
    assert "{0}" in line
    assert "\n" not in json_event(event)
    assert "\\\\x1b[31m{peer}" in json_event(event)


def _event(**fields: Any) -> LogEvent:
    return {
        "log_time": 1_790_000_000.25,
        "log_level": LogLevel.info,
        "log_namespace": "tlsecho.test",
        **fields,
    }


@pytest.mark.parametrize(
    "event",
    [
        _event(log_format="plain {x}", x=1),
        _event(log_format="two\nlines"),
        _event(log_format=""),
        _event(log_format="{x}", x="", **{MESSAGE: ""}),
        _event(log_format="no time", log_time=None),
        _event(
            log_format="{m}",
            m="from a worker",
            log_system="worker 2",
            **{MESSAGE: "from a worker"},
        ),
        _event(log_format="{m}", m="multi\nline", **{MESSAGE: "multi\nline"}),
        _event(log_format="{m}", m="m", log_level=None, **{MESSAGE: "m"}),
        _event(log_format="{m}", m="m", log_system=7, **{MESSAGE: "m"}),
        _event(
            log_format="oops", log_failure=Failure(ValueError("boom")), **{MESSAGE: "oops"}
        ),
        {"log_format": "bare"},
    ],
)
def test_any_event_is_twisteds_line(event: LogEvent) -> None:
    """Every other event, formatted already or not (worker, traceback, no time,
    no level, no text), is Twisted's line too."""
    assert ClassicText()(event) == textFileLogObserver(io.StringIO()).formatEvent(event)


def test_second_clock_is_format_time() -> None:
    """The timestamp, formatted once a second, is formatTime's at every instant,
    including the very end of a second (which rounds to the next one)."""
    clock = SecondClock()
    base = 1_790_000_000.0
    instants = [base + random.random() * 5 for _ in range(2000)]
    instants += [base + 0.9999996, base + 0.9999994, base + 1.0, base + 0.998, 0.5]
    for when in sorted(instants) + instants:
        assert clock(when) == formatTime(when)
    assert clock(None) == formatTime(None) == "-"
    assert clock(1_790_000_000) == formatTime(1_790_000_000)  # type: ignore[arg-type]


def test_json_time_is_datetimes() -> None:
    """JSON's time, formatted once a second, is datetime's at every instant."""

    def reference(seconds: float) -> str:
        when = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"

    base = 1_790_000_000.0
    instants = [base + random.random() * 5 for _ in range(2000)]
    instants += [base + 0.9999996, base + 0.9999995, base + 0.0009995, base + 0.9995]
    for when in sorted(instants) + instants:
        assert _log_schema._time(when) == reference(when), when
    assert _log_schema._time(1_790_000_000) == reference(1_790_000_000)


def test_relayed_connection_line() -> None:
    """Through a worker's relay, a connection's line is the worker's: its message
    unchanged, marked with the worker."""
    event = _connection_event(ENDINGS["unsent"])
    options: dict[str, Any] = {}
    relay_logs_to_main_process(options)
    out = io.StringIO()
    options["fileLogObserverFactory"](out)(event)
    published: list[LogEvent] = []
    LogRelay(2, published.append).events_received(out.getvalue().encode("utf-8"))
    (relayed,) = published
    assert relayed[MESSAGE] == formatEvent(relayed) == formatEvent(event)
    assert relayed["peer"] == event["peer"]
    line = _written(text_observer, relayed)
    assert line == _written(textFileLogObserver, relayed)
    assert f" [worker 2] {event[MESSAGE]}\n" in line


def test_twist_writes_tlsechos_text() -> None:
    """Under twist, text is tlsecho's observer."""
    options = TwistOptions()
    options.parseOptions(["--log-format=json", "tlsecho", "--log-format", "text"])
    assert options["fileLogObserverFactory"] is text_observer
    assert options["logFormat"] == "text"


def test_twistd_writes_tlsechos_text_where_twistd_would(tmp_path: Path) -> None:
    """Under twistd, text is twistd's own observer (here its --logfile), which
    writes tlsecho's lines."""
    path = tmp_path / "twistd.log"
    config = ServerOptions()
    config.parseOptions(["-n", "--pidfile=", "--logfile", str(path), "tlsecho"])
    assert config["logger"] is twistd_text_observer
    observer = config["logger"]()
    assert isinstance(observer, FileLogObserver)
    assert isinstance(observer.formatEvent, ClassicText)
    event = _connection_event(ENDINGS["closed"])
    observer(event)
    assert path.read_text() == _written(textFileLogObserver, event)


def test_twistd_logger_option_is_kept() -> None:
    """twistd's own --logger still chooses the observer, in either format."""
    for log_format in ("text", "json"):
        config = ServerOptions()
        logger = "tlsecho._app._logs.json_stdout_observer"
        config.parseOptions(
            ["-n", "--pidfile=", "--logger", logger, "tlsecho", "--log-format", log_format]
        )
        assert config["logger"] is json_stdout_observer


@pytest.mark.parametrize(
    ("arguments", "standard"),
    [
        ([], True),
        (["--logfile=-"], True),
        (["--logfile=LOG"], False),
        (["--syslog"], False),
    ],
)
def test_twistd_text_goes_where_twistds_would(
    tmp_path: Path, arguments: list[str], standard: bool
) -> None:
    """With tlsecho's text observer, twistd's log still counts as standard output
    when twistd's own would be (a start-up error is said there once)."""
    arguments = [a.replace("LOG", str(tmp_path / "log")) for a in arguments]
    config = ServerOptions()
    config.parseOptions(["-n", "--pidfile=", *arguments, "tlsecho"])
    assert config["logger"] is twistd_text_observer
    assert logs_to_standard_streams(config) is standard
