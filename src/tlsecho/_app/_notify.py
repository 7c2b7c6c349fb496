"""
systemd's notify protocol (C{sd_notify}), with the standard library: one
datagram of C{KEY=VALUE} lines to the Unix socket named by C{$NOTIFY_SOCKET}
(a leading C{@} names one in the abstract namespace).

Sending never raises: a notification that cannot be sent is logged once (the
first time), then dropped quietly, so a broken notify socket cannot stop the
server.  Without C{$NOTIFY_SOCKET} (not under systemd, or in a worker process,
whose environment leaves it out) every send does nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

from twisted.logger import Logger

__all__ = ["Notifier", "monotonic_usec", "watchdog_interval"]

_log = Logger()


class Notifier:
    """
    Send systemd notifications to one socket.

    @ivar address: The socket's address as C{sendto} takes it, or L{None}
        (every send does nothing).
    """

    def __init__(self, address: str | None):
        """
        @param address: C{$NOTIFY_SOCKET}: a path, or C{@NAME} for an abstract
            socket; L{None} or empty: do not notify.
        """
        if address and address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address or None
        self._failed = False

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] | None = None) -> Notifier:
        """The notifier C{$NOTIFY_SOCKET} names (none if unset)."""
        environment = os.environ if environment is None else environment
        return cls(environment.get("NOTIFY_SOCKET"))

    def send(self, *fields: str) -> bool:
        """
        Send C{fields} (C{"READY=1"}, ...) in one datagram; return whether it
        was sent.  Never raises.
        """
        if self.address is None:
            return False
        message = "\n".join(fields).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)  # a full queue must not stall the reactor
                sock.sendto(message, self.address)
        except (OSError, ValueError) as e:
            if not self._failed:
                self._failed = True
                _log.warn(
                    "cannot notify systemd at NOTIFY_SOCKET={address}: {error}; "
                    "further notifications that fail are not logged",
                    address=self.address.replace("\0", "@"),
                    error=getattr(e, "strerror", None) or str(e),
                    event="systemd.error",
                )
            return False
        return True


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as C{MONOTONIC_USEC=} wants it."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def watchdog_interval(
    environment: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """
    Seconds between two C{WATCHDOG=1}: half of C{$WATCHDOG_USEC}, if it is set
    (a positive integer) and C{$WATCHDOG_PID} is unset or this process's;
    L{None} otherwise.
    """
    environment = os.environ if environment is None else environment
    usec = environment.get("WATCHDOG_USEC", "")
    watchdog_pid = environment.get("WATCHDOG_PID")
    if watchdog_pid and watchdog_pid != str(os.getpid() if pid is None else pid):
        return None
    if not usec.isdigit() or int(usec) <= 0:
        return None
    return int(usec) / 2 / 1_000_000
