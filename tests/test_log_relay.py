"""
Tests for L{tlsecho._app._logs.LogRelay}: a worker's output read back in the main
process, in whatever pieces the pipe delivers it (no processes).
"""

from __future__ import annotations

import io

from twisted.logger import LogEvent, Logger, formatEvent

from tlsecho._app._logs import MAX_HELD, RELAYED_TEXT, LogRelay, relay_logs_to_main_process


def _worker_output(*events: tuple[str, dict[str, object]]) -> bytes:
    """What a worker writes to its standard output for these events."""
    options: dict[str, object] = {}
    relay_logs_to_main_process(options)
    out = io.StringIO()
    observer = options["fileLogObserverFactory"](out)  # type: ignore[operator]
    log = Logger(observer=observer, namespace="tlsecho.test")
    for format, fields in events:
        log.info(format, **fields)
    return out.getvalue().encode("utf-8")


def test_events_relayed_with_worker_number() -> None:
    """Each event is published once complete, marked with the worker, its message
    formatted where the values were."""
    published: list[LogEvent] = []
    relay = LogRelay(3, published.append)
    data = _worker_output(("took {duration:.3f}s", {"duration": 0.12345}))
    relay.events_received(data[:7])
    assert published == []
    relay.events_received(data[7:])
    (event,) = published
    assert event["worker"] == 3
    assert event["log_system"] == "worker 3"
    assert event[RELAYED_TEXT] == "took 0.123s"
    assert formatEvent(event) == "took 0.123s"


def test_other_output_is_an_error_line() -> None:
    """Standard error and output that is not JSON are error lines naming the worker;
    a last line without a newline is logged when the worker ends."""
    published: list[LogEvent] = []
    relay = LogRelay(2, published.append)
    relay.errors_received(b"Traceback (most recent call last):\nValueE")
    relay.events_received(b"not json\n")
    relay.errors_received(b"rror: boom")
    relay.flush()
    assert [formatEvent(event) for event in published] == [
        "worker 2: Traceback (most recent call last):",
        "worker 2: not json",
        "worker 2: ValueError: boom",
    ]


def test_worker_output_is_escaped_and_bounded() -> None:
    """A worker's stray output (a traceback may quote a peer's bytes) is logged on one
    inert line, and a line that never ends is let go once it is too long."""
    published: list[LogEvent] = []
    relay = LogRelay(4, published.append)
    relay.errors_received(b"SNI '\x1b[2Jforged\r' failed\n")
    (line,) = [formatEvent(event) for event in published]
    assert line == "worker 4: SNI '\\x1b[2Jforged\\r' failed"
    published.clear()
    relay.errors_received(b"x" * (MAX_HELD + 1))
    relay.events_received(b"y" * (MAX_HELD + 1))
    assert len(published) == 2
    assert all(len(formatEvent(event)) < 1100 for event in published)
    relay.flush()
    assert len(published) == 2  # nothing was left held
