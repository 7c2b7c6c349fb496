"""
The schema of C{--log-format json}: one flat JSON object per line, with the
same message as the text log and, for a connection, its fields.

Every line has L{BASE} (C{time}, C{level}, C{event}, C{message}); each event
name in L{EVENTS} adds the fields L{EVENT_FIELDS} lists for it (L{None} when
unknown); events tlsecho does not name (Twisted's own, other libraries') are
C{"log"} with the C{logger} that sent them.  docs/operations.md documents
the same table, and a test keeps the two equal.

Code logging an event names it with an C{event="..."} keyword; the values of
its fields are what the text log shows (peer-chosen text already escaped and
capped with L{tlsecho._settings._text.printable}).

This module imports nothing from Twisted or OpenSSL.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "BASE",
    "CONNECTION",
    "EVENTS",
    "EVENT_FIELDS",
    "FIELDS",
    "OTHER",
    "json_line",
]

#: Every line's fields, in order.
BASE = ("time", "level", "event", "message")

#: A connection's fields (C{connection.closed}, C{connection.failed}).
CONNECTION = (
    "peer",
    "via",
    "tls_version",
    "cipher",
    "group",
    "sni",
    "alpn",
    "client",
    "bytes_in",
    "bytes_out",
    "duration_s",
    "reason",
)

#: The event of anything tlsecho does not name.
OTHER = "log"

#: Every event name tlsecho logs, and what it means.
EVENTS = {
    "server.starting": "the server starts (its version and libraries' versions)",
    "server.listening": "a TLS listener is open",
    "server.development_certificate": "no --cert: the development certificate is served",
    "server.stopping": "SIGTERM: listeners closed, open connections drain",
    "server.closing": "the drain time is over: closing what is still open",
    "server.aborting": "aborting connections that did not close",
    "config.warning": "something in the configuration will not work as one may think",
    "config.error": (
        "a setting cannot be applied at start (the process exits; logged when the "
        "log goes to a file or syslog, else standard error alone has it)"
    ),
    "reload.started": "--workers: SIGHUP passed on to every worker",
    "reload.ok": "the TLS configuration was reloaded",
    "reload.failed": "a reload failed; the previous configuration still serves",
    "reload.restart_needed": "a reload changed settings only a restart applies",
    "connection.closed": "a connection ended well",
    "connection.failed": "a connection failed (PROXY header, TLS handshake, TLS)",
    "connection.refused": (
        "a connection closed at once: --max-connections (or --max-connections-per-ip "
        "for its address) are open"
    ),
    "metrics.listening": "the --metrics listener is open",
    "metrics.refused": "the metrics listener closed new connections (its limit)",
    "worker.started": "--workers: a worker process started",
    "worker.exited": "--workers: a worker exited while stopping",
    "worker.restarting": "--workers: a worker exited unasked; another starts",
    "worker.killed": "--workers: a worker still running after the shutdown timeout",
    "worker.orphaned": "--workers: a worker's main process is gone; it stops",
    "worker.output": "--workers: a worker wrote something that is not a log event",
    "keylog.error": "the TLS key log (--keylog-file) cannot be written",
    "systemd.error": "a notification to systemd (NOTIFY_SOCKET) could not be sent",
    "internal.error": "an unexpected error (a bug): the line has its traceback",
    OTHER: "anything else (Twisted's own events): the line has its logger",
}

#: The fields each event adds to L{BASE}.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "connection.closed": CONNECTION,
    "connection.failed": CONNECTION,
    "connection.refused": ("peer",),
    "server.listening": ("address", "listen"),
    "metrics.listening": ("address", "listen"),
    OTHER: ("logger",),
}

#: Every field: its JSON type and meaning.  C{worker} and C{traceback} appear
#: on any line that has them.
FIELDS = {
    "time": ("string", "when, ISO 8601 UTC with milliseconds (2026-11-30T11:40:00.123Z)"),
    "level": ("string", "debug, info, warn, error or critical"),
    "event": ("string", "what happened: one of the event names below"),
    "message": ("string", "the text log's message"),
    "peer": ("string", "the client's address (the PROXY header's, behind a proxy)"),
    "via": ("string or null", "the proxy's address, behind a proxy"),
    "tls_version": ("string or null", "TLSv1.3, TLSv1.2"),
    "cipher": ("string or null", "the cipher suite"),
    "group": ("string or null", "the key exchange group"),
    "sni": ("string or null", "the server name the client sent"),
    "alpn": ("string or null", "the protocol ALPN chose"),
    "client": ("string or null", "who the client certificate names"),
    "bytes_in": ("integer", "application bytes received"),
    "bytes_out": ("integer", "application bytes echoed (really sent)"),
    "duration_s": ("number", "seconds the connection was open"),
    "reason": ("string", "why it ended: closed, idle timeout, or the failure"),
    "address": ("string", "the address listened on (127.0.0.1:8443, unix:/path)"),
    "listen": ("string", "the listen description it came from"),
    "logger": ("string or null", "the namespace of an event tlsecho does not name"),
    "worker": ("integer", "--workers: the worker the event comes from or is about"),
    "traceback": ("string", "an unexpected error's traceback"),
}

#: Fields whose value an event carries under another name.
_SOURCES = {"duration_s": "duration", "listen": "description", "logger": "log_namespace"}


#: The last second L{_time} formatted, and its text up to the milliseconds.
_clock: list[Any] = [None, ""]


def _time(seconds: float) -> str:
    if type(seconds) is float and seconds >= 0:
        second = int(seconds)
        # As datetime.fromtimestamp rounds: to the microsecond, half to even.
        microsecond = round((seconds - second) * 1e6)
        if microsecond < 1_000_000:
            if second != _clock[0]:
                when = datetime.datetime.fromtimestamp(second, datetime.UTC)
                _clock[:] = [second, when.strftime("%Y-%m-%dT%H:%M:%S.")]
            return f"{_clock[1]}{microsecond // 1000:03d}Z"
    when = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _value(value: object) -> object:
    if isinstance(value, float):
        return round(value, 6)
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)


def json_line(
    fields: Mapping[str, Any],
    *,
    seconds: float,
    level: str,
    message: str,
    traceback: str | None = None,
) -> str:
    """
    One line of JSON (no newline) for an event with these C{fields} (its
    keywords), logged at C{seconds} (Unix time) at C{level} with C{message}.
    """
    name = fields.get("event")
    if not isinstance(name, str) or name not in EVENTS:
        name = OTHER
    record: dict[str, object] = {
        "time": _time(seconds),
        "level": level,
        "event": name,
        "message": message,
    }
    for field in EVENT_FIELDS.get(name, ()):
        record[field] = _value(fields.get(_SOURCES.get(field, field)))
    worker = fields.get("worker")
    if isinstance(worker, int) and not isinstance(worker, bool):
        record["worker"] = worker
    if traceback is not None:
        record["traceback"] = traceback
    return json.dumps(record, separators=(",", ":"))
