"""
The progress display: one line per step on standard error, with the step count,
the time spent and an estimate of the time left.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Count steps out of C{total} and report each as it starts and ends."""

    def __init__(self, total: int, stream: TextIO = sys.stderr):
        self.total = total
        self.done = 0
        self.stream = stream
        self.started = time.monotonic()
        self._live = stream.isatty()

    def _prefix(self) -> str:
        elapsed = time.monotonic() - self.started
        left = ""
        if self.done:
            remaining = elapsed / self.done * (self.total - self.done)
            left = f", ~{remaining:.0f}s left"
        return f"[{self.done:>3}/{self.total} {elapsed:>4.0f}s{left}]"

    def start(self, what: str) -> None:
        """Show that C{what} is running (overwritten by L{finish} on a terminal)."""
        if self._live:
            self.stream.write(f"\r\x1b[K{self._prefix()} {what} ...")
            self.stream.flush()

    def finish(self, what: str, outcome: str) -> None:
        """Count a step as done and print its outcome."""
        self.done += 1
        end = "\r\x1b[K" if self._live else ""
        self.stream.write(f"{end}{self._prefix()} {what}: {outcome}\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """Print a line that is not a step."""
        self.stream.write(f"{text}\n")
        self.stream.flush()
